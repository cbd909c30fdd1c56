"""Stored notices: the end-to-end acknowledgement the ingest sends each device.

After a batch committed (``IngestService._acknowledge``) every reading it carried
is in PostgreSQL for good: stored, stored before (a redelivery), or kept in a dead
letter (then a resend could never fare better). :class:`StoredNotices` gathers
their ``(device, stream, seq)`` and publishes, per device and stream, at most
every ``IKN_INGEST_STORED_INTERVAL_MS``, one
``{"v":1,"cmd":"stored","stream":...,"seqs":[[first,last],...]}`` on the device's
``down`` topic (contract: ``ikn_core.contract.down.StoredNotice``), so the edge
agent may forget them (``AgentConfig.await_stored``).

QoS 0: a lost notice costs one resend after the agent's timeout, which the
database drops as a duplicate and which brings a new notice; QoS 1 would add a
PUBACK per notice, paho's in-flight window (20) in front of the commit path, and a
broker queue of notices for devices that are offline (their readings are resent on
reconnect anyway). A dead letter whose payload names no stream and seqs (not JSON,
say) is not a reading any agent of ours sent: nothing to confirm.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

import orjson

from ikn_core.contract import Channel, StoredNotice, down_topic, parse_topic
from ikn_core.contract.down import STORED_RANGES_MAX, encode_stored
from ikn_core.contract.payload import SEQ_MAX
from ikn_core.errors import ContractError
from ikn_store.fleet.dead_letters import DeadLetter
from ikn_store.readings.rows import UpMessage
from ingest.decode import Decoded

Publish = Callable[[str, bytes, int], None]  # topic, payload, QoS
_down_topic = lru_cache(maxsize=100_000)(down_topic)  # (as decode's _parse_topic)


class StoredNotices:
    """Collects what commits made final (``note``) and publishes, ``interval_s`` after
    the first of them (0: at once), one notice per device and stream (``flush``).

    Coalescing over an interval, not per commit: at one reading a message a commit
    holds a few messages of each device, and a notice per device per commit was about
    one notice per two messages, 20 % of the ingest's messages/s in ``ikn bench
    ingest --batch 1``; and a second rather than 250 ms: an agent receiving four
    notices a second spent 20-40 % more idle CPU than on PUBACKs (docs/edge-agent.md).
    ``close()`` publishes what is left."""

    def __init__(
        self, publish: Publish, interval_s: float = 0.0, sent: Callable[[int], object] = int
    ) -> None:
        self._publish = publish
        self._interval_s = interval_s
        self._sent = sent  # told how many notices each flush published (a metric)
        self._seqs: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
        self._timer: asyncio.TimerHandle | None = None

    def note(self, decoded: Iterable[Decoded]) -> None:
        """Remember the readings of a committed batch; publish them soon."""
        self._gather(decoded)
        if not self._seqs:
            return
        if self._interval_s <= 0:
            self.flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._interval_s, self.flush)

    def close(self) -> None:
        """Publish what waits now (the ingest is stopping)."""
        self.flush()

    def _gather(self, decoded: Iterable[Decoded]) -> None:
        seqs = self._seqs
        for item in decoded:
            if type(item) is UpMessage:
                rows = item.rows
                if len(rows) == 1:  # (one reading a message: the costly case, per message)
                    seqs[(item.device_id, rows[0].stream)].append(rows[0].seq)
                elif rows:
                    seqs[(item.device_id, rows[0].stream)].extend([r.seq for r in rows])
            elif type(item) is DeadLetter and item.device_id is not None:
                named = _named_readings(item)
                if named is not None:
                    self._seqs[(item.device_id, named[0])].extend(named[1])

    def flush(self) -> int:
        """Publish what ``note`` gathered, one notice per device and stream (more only
        past ``STORED_RANGES_MAX`` ranges), and forget it; return how many notices."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        gathered, self._seqs = self._seqs, defaultdict(list)
        sent = 0
        for (device_id, stream), seqs in gathered.items():
            topic = _down_topic(device_id)
            ranges = seq_ranges(seqs)
            for start in range(0, len(ranges), STORED_RANGES_MAX):
                payload = encode_stored(stream, ranges[start : start + STORED_RANGES_MAX])
                self._publish(topic, payload, 0)
                sent += 1
        self._sent(sent)
        return sent


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """``seqs`` as sorted inclusive ranges: ``[3, 1, 2, 7]`` -> ``[(1, 3), (7, 7)]``."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def _named_readings(letter: DeadLetter) -> tuple[str, Sequence[int]] | None:
    """The stream and seqs a dead-lettered ``up`` payload names, when it names them
    plainly (the rest of it may be what was wrong)."""
    try:
        if parse_topic(letter.topic).channel is not Channel.UP:
            return None
        doc = orjson.loads(letter.payload)
    except (ContractError, orjson.JSONDecodeError):
        return None
    if type(doc) is not dict:
        return None
    stream, readings = doc.get("stream"), doc.get("readings")
    if type(stream) is not str or type(readings) is not list:
        return None
    seqs: list[int] = []
    for reading in readings:
        seq = reading.get("seq") if type(reading) is dict else None
        if type(seq) is not int or not 0 <= seq <= SEQ_MAX:
            return None
        seqs.append(seq)
    try:
        StoredNotice(stream, ((0, 0),))  # the stream is one a notice can name
    except ContractError:
        return None
    return stream, seqs
