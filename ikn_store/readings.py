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
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from ikn_core.booking import CHECK_IN_OPENS_BEFORE
from ikn_store.attendance import capture_from_staging
from ikn_store.rollups import mark_dirty_from_staging

_READING_COLUMNS = ("device_id", "stream", "seq", "ts", "received_at", "kind", "body")
_DEAD_COLUMNS = ("received_at", "topic", "device_id", "reason", "detail", "payload")

_INSERT_READINGS = """
INSERT INTO readings SELECT * FROM staging_readings ON CONFLICT DO NOTHING
"""

# Newest reading wins; a vacant desk keeps counting as in use for the grace ($1),
# see desk_debounce() in migration 0010 (EXCLUDED holds the raw reading).
_UPDATE_DESK_STATE = """
INSERT INTO desk_state AS s (desk_id, device_id, occupied, since, reported_at, updated_at)
SELECT d.desk_id, l.device_id, l.occupied, l.ts, l.ts, now()
FROM (SELECT DISTINCT ON (device_id) device_id, ts, (body->>'occupied')::boolean AS occupied
      FROM staging_readings WHERE kind = 'desk_occupancy'
      ORDER BY device_id, ts DESC, seq DESC) l
JOIN devices d ON d.id = l.device_id AND d.desk_id IS NOT NULL
ON CONFLICT (desk_id) DO UPDATE SET
    device_id = EXCLUDED.device_id,
    (occupied, since, vacant_since) = (
        SELECT * FROM desk_debounce(s.occupied, s.since, s.vacant_since,
                                    EXCLUDED.occupied, EXCLUDED.since, now() - $1::interval)),
    reported_at = EXCLUDED.reported_at,
    updated_at = now()
WHERE EXCLUDED.reported_at >= s.reported_at
"""

# Desks whose grace ran out with no newer reading: free since they were left.
_RELEASE_VACANT_DESKS = """
UPDATE desk_state
SET occupied = false, since = vacant_since, vacant_since = NULL, updated_at = now()
WHERE vacant_since IS NOT NULL AND vacant_since <= now() - $1::interval
"""

# The newest people count of each zone.
_UPDATE_ZONE_COUNTS = """
INSERT INTO zone_counts AS z (zone_id, device_id, people, reported_at, updated_at)
SELECT DISTINCT ON (d.zone_id) d.zone_id, s.device_id, (s.body->>'count')::integer, s.ts, now()
FROM staging_readings s JOIN devices d ON d.id = s.device_id AND d.zone_id IS NOT NULL
WHERE s.kind = 'people_count'
ORDER BY d.zone_id, s.ts DESC, s.seq DESC
ON CONFLICT (zone_id) DO UPDATE SET
    device_id = EXCLUDED.device_id,
    people = EXCLUDED.people,
    reported_at = EXCLUDED.reported_at,
    updated_at = now()
WHERE EXCLUDED.reported_at >= z.reported_at
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
    await conn.copy_records_to_table(
        "staging_readings",
        records=rows,
        columns=_READING_COLUMNS,
    )
    status = await conn.execute(_INSERT_READINGS)
    kinds = {r.kind for r in rows}
    if kinds & {"desk_occupancy", "environment"}:
        await mark_dirty_from_staging(conn)  # what the analytics rollups recompute
    if "desk_occupancy" in kinds:
        await conn.execute(_UPDATE_DESK_STATE, vacant_grace)
        await conn.execute(_SENSOR_CHECK_IN, CHECK_IN_OPENS_BEFORE)
    if "people_count" in kinds:
        await conn.execute(_UPDATE_ZONE_COUNTS)
    await capture_from_staging(conn)  # attendance signals from badge taps and desk sensors
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
