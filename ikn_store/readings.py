"""Writes what the ingest received, in one transaction per batch of messages.

Readings go through the connection's ``staging_readings`` temp table (COPY, encoded
by ``copy_rows``), then into ``readings`` by the SQL function ``ingest_staged()``
(migration 0014): the key ``(device_id, stream, seq, ts)`` makes every redelivery a
no-op. The same call derives desk state, zone counts, sensor check-ins, analytics
dirty spans, attendance signals and last-seen; device status is upserted alongside.
All in one transaction, so live state never runs ahead of or behind what is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from ikn_core.booking import CHECK_IN_OPENS_BEFORE
from ikn_store import copy_rows

_READING_COLUMNS = ("device_id", "stream", "seq", "ts", "received_at", "kind", "body")
_DEAD_COLUMNS = ("received_at", "topic", "device_id", "reason", "detail", "payload")

# Desks whose grace ran out with no newer reading: free since they were left.
_RELEASE_VACANT_DESKS = """
UPDATE desk_state
SET occupied = false, since = vacant_since, vacant_since = NULL, updated_at = now()
WHERE vacant_since IS NOT NULL AND vacant_since <= now() - $1::interval
"""

# Stores the staged batch and derives desk state, zone counts, sensor check-ins,
# analytics dirty spans, attendance signals and last-seen from it (migration 0014).
_INGEST_STAGED = "SELECT ingest_staged($1::interval, $2::interval, $3)"

_UPSERT_STATUS = """
INSERT INTO device_status AS s (device_id, online, status, status_at, last_seen)
VALUES ($1, $2, $3, $4, $4)
ON CONFLICT (device_id) DO UPDATE SET
    online = EXCLUDED.online, status = EXCLUDED.status, status_at = EXCLUDED.status_at,
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen)
WHERE s.status_at IS NULL OR EXCLUDED.status_at >= s.status_at
"""


class ReadingRow(NamedTuple):
    """One reading as stored; a tuple in the column order of ``readings``, which
    ``copy_rows.encode`` turns into COPY data (the ingest makes a hundred thousand of
    these a second)."""

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


class DevicePlace(NamedTuple):
    """Where an enabled device is (tags for the InfluxDB sink)."""

    building_id: str
    floor_id: str | None
    zone_id: str | None


@dataclass(slots=True)
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # The enabled devices of the batch: their readings were stored (or already were).
    places: dict[str, DevicePlace] = field(default_factory=dict)


async def write(
    conn: asyncpg.Connection,
    messages: Sequence[UpMessage],
    statuses: Sequence[StatusUpdate] = (),
    dead_letters: Sequence[DeadLetter] = (),
    *,
    vacant_grace: timedelta = timedelta(0),
) -> WriteResult:
    """Store one batch in one transaction; return what happened to it. A desk whose
    sensor says vacant counts as in use for ``vacant_grace`` more."""
    async with conn.transaction():
        known = await _enabled_devices(
            conn, {m.device_id for m in messages} | {s.device_id for s in statuses}
        )
        result = WriteResult(dead_letters=list(dead_letters), places=known)
        items: list[UpMessage | StatusUpdate] = [*messages, *statuses]
        for item in items:
            if item.device_id not in known:
                result.dead_letters.append(_unknown(item))
        rows = [r for m in messages if m.device_id in known for r in m.rows]
        if rows:
            result.stored = await _insert_readings(conn, rows, vacant_grace)
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


_ENABLED_DEVICES = """
SELECT d.id, d.building_id, z.floor_id, d.zone_id
FROM devices d LEFT JOIN zones z ON z.id = d.zone_id
WHERE d.id = ANY($1::text[]) AND d.enabled
"""


async def _enabled_devices(conn: asyncpg.Connection, ids: set[str]) -> dict[str, DevicePlace]:
    if not ids:
        return {}
    rows = await conn.fetch(_ENABLED_DEVICES, ids)
    return {r[0]: DevicePlace(r[1], r[2], r[3]) for r in rows}


def _unknown(item: UpMessage | StatusUpdate) -> DeadLetter:
    return DeadLetter(
        item.received_at,
        item.topic,
        item.device_id,
        "unknown_device",
        f"device {item.device_id!r} is not registered or is disabled",
        item.payload,
    )


async def _insert_readings(
    conn: asyncpg.Connection, rows: list[ReadingRow], vacant_grace: timedelta
) -> int:
    await conn.copy_to_table(
        "staging_readings",
        source=copy_rows.chunks(copy_rows.encode(rows)),
        columns=_READING_COLUMNS,
        format="binary",
    )
    has_counts = any(r.kind == "people_count" for r in rows)
    stored = await conn.fetchval(_INGEST_STAGED, vacant_grace, CHECK_IN_OPENS_BEFORE, has_counts)
    return int(stored)


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


async def release_vacant_desks(conn: asyncpg.Connection, vacant_grace: timedelta) -> int:
    """Turn free the desks left more than ``vacant_grace`` ago with no newer reading
    (the ingest runs this every second); how many."""
    status = await conn.execute(_RELEASE_VACANT_DESKS, vacant_grace)
    return int(status.rsplit(" ", 1)[-1])


@dataclass(frozen=True, slots=True)
class ZoneCount:
    zone_id: str
    floor_id: str
    building_id: str
    tz: str
    people: int
    reported_at: datetime
    device_id: str


async def zone_counts(
    conn: asyncpg.Connection,
    building: str | None = None,
    floor: str | None = None,
    zone: str | None = None,
) -> list[ZoneCount]:
    """The newest people count of each zone under the given places (zones with one)."""
    rows = await conn.fetch(
        """SELECT z.id AS zone_id, f.id AS floor_id, b.id AS building_id, b.tz,
                  c.people, c.reported_at, c.device_id
           FROM zone_counts c
           JOIN zones z ON z.id = c.zone_id
           JOIN floors f ON f.id = z.floor_id
           JOIN buildings b ON b.id = f.building_id
           WHERE ($1::text IS NULL OR b.id = $1)
             AND ($2::text IS NULL OR f.id = $2)
             AND ($3::text IS NULL OR z.id = $3)
           ORDER BY f.level, z.id""",
        building,
        floor,
        zone,
    )
    return [ZoneCount(**dict(r)) for r in rows]
