"""The ingest's decoder (ingest/decode.py): each reading's time is checked against the
window, and readings that share a time share one datetime."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson

from ikn_store.fleet.dead_letters import DeadLetter
from ikn_store.readings.rows import UpMessage
from ingest.decode import Received, Window, decode

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
WINDOW = Window(timedelta(days=30))


def _received(*times: datetime) -> Received:
    readings = [
        {"seq": i, "ts": int(t.timestamp() * 1000), "kind": "desk_occupancy", "occupied": True}
        for i, t in enumerate(times)
    ]
    payload = orjson.dumps({"v": 1, "stream": str(uuid.uuid4()), "readings": readings})
    return Received("ikn/v1/dev/desk-d1/up", payload, 1, 1, NOW, 1)


def test_readings_of_one_time_share_one_datetime() -> None:
    earlier = NOW - timedelta(minutes=1)
    decoded = decode(_received(earlier, earlier, NOW, NOW), WINDOW)
    assert isinstance(decoded, UpMessage)
    times = [r.ts for r in decoded.rows]
    assert times == [earlier, earlier, NOW, NOW]
    assert times[0] is times[1] and times[2] is times[3]


def test_a_later_reading_out_of_the_window_makes_the_message_a_dead_letter() -> None:
    future = NOW + timedelta(days=2)
    decoded = decode(_received(NOW, NOW, future), WINDOW)
    assert isinstance(decoded, DeadLetter)
    assert decoded.reason == "bad_ts"
    assert decoded.detail.startswith("readings[2].ts:")
    too_old = decode(_received(NOW - timedelta(days=31), NOW), WINDOW)
    assert isinstance(too_old, DeadLetter)
    assert too_old.detail.startswith("readings[0].ts:")
