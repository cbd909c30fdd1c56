"""Stored notices: the end-to-end acknowledgement the ingest sends each device.

After a batch committed (``IngestService._acknowledge``) every reading it carried
is in PostgreSQL for good: stored, stored before (a redelivery), or kept in a dead
letter (then a resend could never fare better). :class:`StoredNotices` gathers
their ``(device, stream, seq)`` and publishes, per device and stream, one
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

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import orjson

from ikn_core.contract import Channel, StoredNotice, down_topic, encode_down, parse_topic
from ikn_core.contract.down import STORED_RANGES_MAX
from ikn_core.contract.payload import SEQ_MAX
from ikn_core.errors import ContractError
from ikn_store.readings import DeadLetter, UpMessage
from ingest.decode import Decoded

Publish = Callable[[str, bytes, int], None]  # topic, payload, QoS


class StoredNotices:
    """Collects what a commit made final (``note``) and publishes one notice per device
    and stream (``flush``)."""

    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self._seqs: defaultdict[tuple[str, str], list[int]] = defaultdict(list)

    def note(self, decoded: Iterable[Decoded]) -> None:
        """Remember the readings of a committed batch."""
        for item in decoded:
            if type(item) is UpMessage:
                if item.rows:
                    self._seqs[(item.device_id, item.rows[0].stream)].extend(
                        r.seq for r in item.rows
                    )
            elif type(item) is DeadLetter and item.device_id is not None:
                named = _named_readings(item)
                if named is not None:
                    self._seqs[(item.device_id, named[0])].extend(named[1])

    def flush(self) -> int:
        """Publish what ``note`` gathered, one notice per device and stream (more only
        past ``STORED_RANGES_MAX`` ranges), and forget it; return how many notices."""
        gathered, self._seqs = self._seqs, defaultdict(list)
        sent = 0
        for (device_id, stream), seqs in gathered.items():
            topic = down_topic(device_id)
            ranges = seq_ranges(seqs)
            for start in range(0, len(ranges), STORED_RANGES_MAX):
                notice = StoredNotice(stream, tuple(ranges[start : start + STORED_RANGES_MAX]))
                self._publish(topic, encode_down(notice), 0)
                sent += 1
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
