"""Writes what the ingest received, in one transaction per batch of messages.

Readings go through the connection's ``staging_readings`` temp table (COPY),
then into ``readings`` with ``ON CONFLICT DO NOTHING``: the key
``(device_id, stream, seq, ts)`` makes every redelivery a no-op. Desk state,
last-seen and device status are derived in the same transaction, so live state
never runs ahead of or behind what is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from ikn_core.booking import CHECK_IN_OPENS_BEFORE

_READING_COLUMNS = ("device_id", "stream", "seq", "ts", "received_at", "kind", "body")
_DEAD_COLUMNS = ("received_at", "topic", "device_id", "reason", "detail", "payload")

_INSERT_READINGS = """
INSERT INTO readings SELECT * FROM staging_readings ON CONFLICT DO NOTHING
"""

_UPDATE_DESK_STATE = """
INSERT INTO desk_state AS s (desk_id, device_id, occupied, since, reported_at, updated_at)
SELECT d.desk_id, l.device_id, l.occupied, l.ts, l.ts, now()
FROM (SELECT DISTINCT ON (device_id) device_id, ts, (body->>'occupied')::boolean AS occupied
      FROM staging_readings WHERE kind = 'desk_occupancy'
      ORDER BY device_id, ts DESC, seq DESC) l
JOIN devices d ON d.id = l.device_id AND d.desk_id IS NOT NULL
ON CONFLICT (desk_id) DO UPDATE SET
    device_id = EXCLUDED.device_id,
    occupied = EXCLUDED.occupied,
    since = CASE WHEN s.occupied = EXCLUDED.occupied THEN s.since ELSE EXCLUDED.since END,
    reported_at = EXCLUDED.reported_at,
    updated_at = now()
WHERE EXCLUDED.reported_at >= s.reported_at
"""

# A desk's sensor showing occupied inside a booking's check-in window checks it in.
_SENSOR_CHECK_IN = """
UPDATE bookings b
SET status = 'checked_in', checked_in_at = hit.ts, check_in_signal = 'sensor'
FROM (SELECT bk.id, min(s.ts) AS ts
      FROM staging_readings s
      JOIN devices d ON d.id = s.device_id AND d.desk_id IS NOT NULL
      JOIN bookings bk ON bk.desk_id = d.desk_id AND bk.status = 'booked'
           AND s.ts >= lower(bk.period) - $1::interval AND s.ts < upper(bk.period)
      WHERE s.kind = 'desk_occupancy' AND (s.body->>'occupied')::boolean
      GROUP BY bk.id) hit
WHERE b.id = hit.id AND b.status = 'booked'
"""

_UPDATE_LAST_SEEN = """
INSERT INTO device_status AS s (device_id, last_seen)
SELECT device_id, max(received_at) FROM staging_readings GROUP BY device_id
ON CONFLICT (device_id) DO UPDATE SET last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen)
"""

_UPSERT_STATUS = """
INSERT INTO device_status AS s (device_id, online, status, status_at, last_seen)
VALUES ($1, $2, $3, $4, $4)
ON CONFLICT (device_id) DO UPDATE SET
    online = EXCLUDED.online, status = EXCLUDED.status, status_at = EXCLUDED.status_at,
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen)
WHERE s.status_at IS NULL OR EXCLUDED.status_at >= s.status_at
"""


class ReadingRow(NamedTuple):
    """One reading as stored; a tuple in the column order of ``readings``, so COPY takes
    it as it is (the ingest makes a hundred thousand of these a second)."""

    device_id: str
    stream: str
    seq: int
    ts: datetime
    received_at: datetime
    kind: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class UpMessage:
    """The readings of one valid ``up`` message, kept with the raw payload in case
    the device turns out to be unknown (then the whole message is a dead letter)."""

    topic: str
    device_id: str
    payload: bytes
    received_at: datetime
    rows: tuple[ReadingRow, ...]


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    topic: str
    device_id: str
    payload: bytes
    received_at: datetime
    online: bool
    status: dict[str, Any]


@dataclass(slots=True)
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)


async def write(
    conn: asyncpg.Connection,
    messages: Sequence[UpMessage],
    statuses: Sequence[StatusUpdate] = (),
    dead_letters: Sequence[DeadLetter] = (),
) -> WriteResult:
    """Store one batch in one transaction; return what happened to it."""
    async with conn.transaction():
        known = await _enabled_devices(
            conn, {m.device_id for m in messages} | {s.device_id for s in statuses}
        )
        result = WriteResult(dead_letters=list(dead_letters))
        items: list[UpMessage | StatusUpdate] = [*messages, *statuses]
        for item in items:
            if item.device_id not in known:
                result.dead_letters.append(_unknown(item))
        rows = [r for m in messages if m.device_id in known for r in m.rows]
        if rows:
            result.stored = await _insert_readings(conn, rows)
            result.duplicates = len(rows) - result.stored
        await _upsert_statuses(conn, [s for s in statuses if s.device_id in known])
        if result.dead_letters:
            await conn.copy_records_to_table(
                "dead_letters",
                records=[tuple(getattr(d, c) for c in _DEAD_COLUMNS) for d in result.dead_letters],
                columns=_DEAD_COLUMNS,
            )
        return result


async def write_dead_letters(conn: asyncpg.Connection, letters: Sequence[DeadLetter]) -> None:
    await write(conn, (), (), letters)


async def _enabled_devices(conn: asyncpg.Connection, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    rows = await conn.fetch("SELECT id FROM devices WHERE id = ANY($1::text[]) AND enabled", ids)
    return {r["id"] for r in rows}


def _unknown(item: UpMessage | StatusUpdate) -> DeadLetter:
    return DeadLetter(
        item.received_at,
        item.topic,
        item.device_id,
        "unknown_device",
        f"device {item.device_id!r} is not registered or is disabled",
        item.payload,
    )


async def _insert_readings(conn: asyncpg.Connection, rows: list[ReadingRow]) -> int:
    await conn.copy_records_to_table(
        "staging_readings",
        records=rows,
        columns=_READING_COLUMNS,
    )
    status = await conn.execute(_INSERT_READINGS)
    await conn.execute(_UPDATE_DESK_STATE)
    await conn.execute(_SENSOR_CHECK_IN, CHECK_IN_OPENS_BEFORE)
    await conn.execute(_UPDATE_LAST_SEEN)
    return int(status.rsplit(" ", 1)[-1])


async def _upsert_statuses(conn: asyncpg.Connection, statuses: list[StatusUpdate]) -> None:
    if statuses:
        await conn.executemany(
            _UPSERT_STATUS,
            [(s.device_id, s.online, s.status, s.received_at) for s in statuses],
        )


async def stream_counts(conn: asyncpg.Connection, stream: str) -> tuple[int, int]:
    """Readings stored for one outbox stream, and how many distinct seqs among them:
    equal and complete means every reading exactly once."""
    row = await conn.fetchrow(
        "SELECT count(*), count(DISTINCT seq) FROM readings WHERE stream = $1", stream
    )
    assert row is not None
    return int(row[0]), int(row[1])
