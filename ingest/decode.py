"""Turns one received MQTT message into rows to store, or a dead letter saying why not."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from ikn_core.contract import Channel, decode_batch, decode_status, parse_topic
from ikn_core.contract.fast import fast_readings
from ikn_core.errors import ContractError
from ikn_store.fleet.dead_letters import DeadLetter
from ikn_store.readings.rows import ReadingRow, StatusUpdate, UpMessage

log = logging.getLogger(__name__)

# Readings further ahead than this are from a device whose clock is wrong.
MAX_CLOCK_AHEAD = timedelta(days=1)
_MILLISECOND = timedelta(milliseconds=1)

# A topic is parsed once (a fleet has far fewer devices than this; a bad topic raises
# and is not kept).
_parse_topic = lru_cache(maxsize=100_000)(parse_topic)


class Received(NamedTuple):
    """A message as the MQTT source handed it over; ``generation`` names the connection
    it came on (an ack is only valid on that connection). A tuple: one is made per
    message, and a frozen dataclass costs several times as much to build."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    generation: int


@dataclass(frozen=True, slots=True)
class Window:
    """Which device clock times the ingest accepts: inside retention, not in the future."""

    retention: timedelta

    def bounds_ms(self, now: datetime) -> tuple[float, float]:
        """The accepted device clock range around ``now``, in epoch milliseconds."""
        now_ms = now.timestamp() * 1000
        return (
            now_ms - self.retention / _MILLISECOND,
            now_ms + MAX_CLOCK_AHEAD / _MILLISECOND,
        )

    def check(self, ts: datetime, now: datetime) -> str | None:
        if ts > now + MAX_CLOCK_AHEAD:
            return f"ts {ts.isoformat()} is more than {MAX_CLOCK_AHEAD} ahead of the ingest clock"
        if ts < now - self.retention:
            return f"ts {ts.isoformat()} is older than the retention of {self.retention.days} days"
        return None


class Cleared(NamedTuple):
    """A 0-byte message on ``up`` or ``status``: how a device clears the retained message
    of a topic (MQTT). Nothing to store, and no dead letter; it is acknowledged."""

    topic: str
    received_at: datetime


Decoded = UpMessage | StatusUpdate | DeadLetter | Cleared


def decode(msg: Received, window: Window) -> Decoded:
    try:
        topic = _parse_topic(msg.topic)
    except ContractError as exc:
        return _dead(msg, None, exc.reason, str(exc))
    if not msg.payload and topic.channel is not Channel.DOWN:
        log.debug("retained message cleared on %s", msg.topic)
        return Cleared(msg.topic, msg.received_at)
    try:
        if topic.channel is Channel.UP:
            return _up(msg, topic.device_id, window)
        if topic.channel is Channel.STATUS:
            return _status(msg, topic.device_id)
    except ContractError as exc:
        return _dead(msg, topic.device_id, exc.reason, str(exc))
    except Exception as exc:  # a gap in the decoder must not stop the ingest for everyone
        log.exception("decoding a message from %s failed", topic.device_id)
        detail = f"the platform could not decode it: {type(exc).__name__}"
        return _dead(msg, topic.device_id, "store_failed", detail)
    return _dead(msg, topic.device_id, "bad_topic", "the ingest does not consume down topics")


def _up(msg: Received, device_id: str, window: Window) -> UpMessage | DeadLetter:
    fast = fast_readings(msg.payload)
    if fast is None:
        batch = decode_batch(msg.payload)  # raises the precise ContractError
        stream = batch.stream
        items = [(r.seq, r.ts, r.kind, r.body()) for r in batch.readings]
    else:
        stream, items = fast
    stream = sys.intern(stream)  # one object per stream: the COPY encoder converts it once
    rx = msg.received_at
    low, high = window.bounds_ms(rx)
    rows = []
    last_ms: int | None = None
    for i, (seq, ts_ms, kind, body) in enumerate(items):
        if ts_ms != last_ms:  # a message's readings often share their time: one datetime
            if not low <= ts_ms <= high:
                problem = window.check(datetime.fromtimestamp(ts_ms / 1000, UTC), rx)
                return _dead(msg, device_id, "bad_ts", f"readings[{i}].ts: {problem}")
            last_ms, ts = ts_ms, datetime.fromtimestamp(ts_ms / 1000, UTC)
        rows.append(ReadingRow(device_id, stream, seq, ts, rx, kind, body))
    return UpMessage(msg.topic, device_id, msg.payload, rx, tuple(rows))


def _status(msg: Received, device_id: str) -> StatusUpdate:
    status = decode_status(msg.payload)
    return StatusUpdate(
        msg.topic,
        device_id,
        msg.payload,
        msg.received_at,
        status.state == "online",
        status.to_dict(),
    )


def _dead(msg: Received, device_id: str | None, reason: str, detail: str) -> DeadLetter:
    return DeadLetter(msg.received_at, msg.topic, device_id, reason, detail, msg.payload)
