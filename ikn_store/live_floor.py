"""What the facility managers' live floor map is made of (ikn_service.live_floor): each
desk's sensor, health and the booking in force at a moment (its status only, never
whose it is), and each zone's newest people count against its desks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class DeskRow:
    desk_id: str
    name: str
    zone_id: str
    floor_id: str
    building_id: str
    tz: str
    x: float
    y: float
    disabled: bool
    assigned: bool  # to one person (who, never read here)
    device_id: str | None
    occupied: bool | None
    since: datetime | None
    reported_at: datetime | None
    sensor_online: bool | None
    booking: str | None
    booking_start: datetime | None
    booking_end: datetime | None


@dataclass(frozen=True, slots=True)
class ZoneRow:
    zone_id: str
    name: str
    desks: int  # desks in use (not disabled): the zone's capacity
    people: int | None  # its counter's newest count (None: no counter)
    reported_at: datetime | None


@dataclass(frozen=True, slots=True)
class BookingChange:
    """A desk whose bookings changed (a booking made, checked in, ended): no desk
    event, so no id; placed in its building like a ``DeskEvent``."""

    desk_id: str
    zone_id: str
    floor_id: str
    building_id: str
    tz: str


# A sensor is offline when it said so (its last will) or has been silent longer than
# the interval it promised (the fleet's "offline" alert); unknown without a status.
_DESKS = """
SELECT d.id AS desk_id, d.name, z.id AS zone_id, f.id AS floor_id, b.id AS building_id,
       b.tz, d.x, d.y, d.disabled, d.assigned_to IS NOT NULL AS assigned,
       coalesce(s.device_id, v.id) AS device_id, s.occupied, s.since, s.reported_at,
       CASE WHEN v.id IS NULL OR vs.device_id IS NULL THEN NULL
            ELSE coalesce(vs.online, true)
                 AND (vs.last_seen IS NULL
                      OR vs.last_seen
                         >= $3::timestamptz - make_interval(secs => v.expected_interval_s))
       END AS sensor_online,
       k.status AS booking, lower(k.period) AS booking_start, upper(k.period) AS booking_end
FROM desks d
JOIN zones z ON z.id = d.zone_id
JOIN floors f ON f.id = z.floor_id
JOIN buildings b ON b.id = f.building_id
LEFT JOIN desk_state s ON s.desk_id = d.id
LEFT JOIN LATERAL (
    SELECT dv.id, dv.expected_interval_s FROM devices dv
    WHERE dv.id = s.device_id OR (s.device_id IS NULL AND dv.desk_id = d.id AND dv.enabled)
    ORDER BY dv.id LIMIT 1
) v ON true
LEFT JOIN device_status vs ON vs.device_id = v.id
LEFT JOIN LATERAL (
    SELECT bk.status, bk.period FROM bookings bk
    WHERE bk.desk_id = d.id AND bk.status IN ('booked', 'checked_in')
      AND bk.period @> $3::timestamptz
    ORDER BY lower(bk.period) LIMIT 1
) k ON true
"""
_WHERE = "WHERE ($1::text IS NULL OR f.id = $1) AND ($2::text IS NULL OR d.id = $2)"


async def floor_desks(conn: asyncpg.Connection, floor_id: str, at: datetime) -> list[DeskRow]:
    """Every desk of the floor, as of ``at``."""
    rows = await conn.fetch(_DESKS + _WHERE + " ORDER BY z.id, d.id", floor_id, None, at)
    return [DeskRow(**dict(r)) for r in rows]


async def building_desks(conn: asyncpg.Connection, building_id: str, at: datetime) -> list[DeskRow]:
    """Every desk of the building, as of ``at``, by floor."""
    rows = await conn.fetch(
        _DESKS + _WHERE + " AND b.id = $4 ORDER BY f.level, f.id, d.id", None, None, at, building_id
    )
    return [DeskRow(**dict(r)) for r in rows]


@dataclass(frozen=True, slots=True)
class BuildingFloors:
    """A building's name, zone and floors (id, name), lowest first."""

    building_id: str
    name: str
    tz: str
    floors: list[tuple[str, str]]


async def building_floors(conn: asyncpg.Connection, building_id: str) -> BuildingFloors | None:
    """The building and its floors (None: no such building)."""
    row = await conn.fetchrow("SELECT id, name, tz FROM buildings WHERE id = $1", building_id)
    if row is None:
        return None
    floors = await conn.fetch(
        "SELECT id, name FROM floors WHERE building_id = $1 ORDER BY level, id", building_id
    )
    return BuildingFloors(row["id"], row["name"], row["tz"], [(f["id"], f["name"]) for f in floors])


async def one_desk(conn: asyncpg.Connection, desk_id: str, at: datetime) -> DeskRow | None:
    """One desk, as of ``at`` (None: no such desk)."""
    row = await conn.fetchrow(_DESKS + _WHERE, None, desk_id, at)
    return DeskRow(**dict(row)) if row else None


async def booking_changes(conn: asyncpg.Connection, desk_ids: list[str]) -> list[BookingChange]:
    """The desks of ``desk_ids`` that exist, placed, in the order given."""
    rows = await conn.fetch(
        """SELECT d.id AS desk_id, z.id AS zone_id, f.id AS floor_id, b.id AS building_id, b.tz
           FROM unnest($1::text[]) WITH ORDINALITY AS w(desk_id, n)
           JOIN desks d ON d.id = w.desk_id
           JOIN zones z ON z.id = d.zone_id
           JOIN floors f ON f.id = z.floor_id
           JOIN buildings b ON b.id = f.building_id
           ORDER BY w.n""",
        desk_ids,
    )
    return [BookingChange(**dict(r)) for r in rows]


_ZONES = """
SELECT z.id AS zone_id, z.name,
       (SELECT count(*) FROM desks d WHERE d.zone_id = z.id AND NOT d.disabled)::int AS desks,
       c.people, c.reported_at,
       f.name AS floor_name, b.id AS building_id, b.name AS building_name, b.tz
FROM zones z
JOIN floors f ON f.id = z.floor_id
JOIN buildings b ON b.id = f.building_id
LEFT JOIN zone_counts c ON c.zone_id = z.id
"""
_ZONE_ROW = ("zone_id", "name", "desks", "people", "reported_at")


async def floor_zones(conn: asyncpg.Connection, floor_id: str) -> list[ZoneRow]:
    """The floor's zones with their capacity and newest people count."""
    rows = await conn.fetch(_ZONES + "WHERE z.floor_id = $1 ORDER BY z.id", floor_id)
    return [ZoneRow(*(r[k] for k in _ZONE_ROW)) for r in rows]


@dataclass(frozen=True, slots=True)
class ZonePlace:
    """A zone's count (as on the floor map) and where it is."""

    zone: ZoneRow
    floor_name: str
    building_id: str
    building_name: str
    tz: str


async def one_zone(conn: asyncpg.Connection, zone_id: str) -> ZonePlace | None:
    """The zone with its capacity and newest people count (None: no such zone)."""
    row = await conn.fetchrow(_ZONES + "WHERE z.id = $1", zone_id)
    if row is None:
        return None
    zone = ZoneRow(*(row[k] for k in _ZONE_ROW))
    return ZonePlace(zone, row["floor_name"], row["building_id"], row["building_name"], row["tz"])


async def zone_desks(conn: asyncpg.Connection, zone_id: str, at: datetime) -> list[DeskRow]:
    """Every desk of the zone, as of ``at``."""
    rows = await conn.fetch(
        _DESKS + _WHERE + " AND z.id = $4 ORDER BY d.id", None, None, at, zone_id
    )
    return [DeskRow(**dict(r)) for r in rows]


async def last_desk_event(conn: asyncpg.Connection) -> int:
    """The newest desk event's id (0: none yet): a page read after it resumes there."""
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM desk_events"))
