"""The space hierarchy and device registry in PostgreSQL, and the live view of desks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ikn_core.domain import Site


async def load_site(conn: asyncpg.Connection, site: Site) -> None:
    """Insert or update every building, floor, zone, desk and device of ``site``."""
    async with conn.transaction():
        await conn.executemany(
            """INSERT INTO buildings (id, name, tz) VALUES ($1, $2, $3)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, tz = EXCLUDED.tz""",
            [(b.id, b.name, b.tz) for b in site.buildings],
        )
        await conn.executemany(
            """INSERT INTO floors (id, building_id, name, level) VALUES ($1, $2, $3, $4)
               ON CONFLICT (id) DO UPDATE SET building_id = EXCLUDED.building_id,
                   name = EXCLUDED.name, level = EXCLUDED.level""",
            [(f.id, f.building_id, f.name, f.level) for f in site.floors],
        )
        await conn.executemany(
            """INSERT INTO zones (id, floor_id, name) VALUES ($1, $2, $3)
               ON CONFLICT (id) DO UPDATE SET floor_id = EXCLUDED.floor_id, name = EXCLUDED.name""",
            [(z.id, z.floor_id, z.name) for z in site.zones],
        )
        await conn.executemany(
            """INSERT INTO desks (id, zone_id, name, x, y, equipment)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (id) DO UPDATE SET zone_id = EXCLUDED.zone_id, name = EXCLUDED.name,
                   x = EXCLUDED.x, y = EXCLUDED.y, equipment = EXCLUDED.equipment""",
            [(d.id, d.zone_id, d.name, d.x, d.y, list(d.equipment)) for d in site.desks],
        )
        await conn.executemany(
            """INSERT INTO devices (id, kind, building_id, zone_id, desk_id)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind,
                   building_id = EXCLUDED.building_id, zone_id = EXCLUDED.zone_id,
                   desk_id = EXCLUDED.desk_id""",
            [(d.id, str(d.kind), d.building_id, d.zone_id, d.desk_id) for d in site.devices],
        )


@dataclass(frozen=True, slots=True)
class Place:
    """The building, floor or zone a live-view request names, with its time zone."""

    building_id: str
    tz: str


@dataclass(frozen=True, slots=True)
class DeskOnPlan:
    """A desk where a floor plan shows it: its place in the hierarchy and coordinates."""

    desk_id: str
    name: str
    building_id: str
    floor_id: str
    zone_id: str
    x: float
    y: float
    equipment: tuple[str, ...]
    tz: str


@dataclass(frozen=True, slots=True)
class DeskLive(DeskOnPlan):
    device_id: str | None
    occupied: bool | None
    since: datetime | None
    reported_at: datetime | None


async def find_place(conn: asyncpg.Connection, level: str, place_id: str) -> Place | None:
    """The building of a building, floor or zone id; None when it does not exist."""
    query = {
        "building": "SELECT b.id, b.tz FROM buildings b WHERE b.id = $1",
        "floor": "SELECT b.id, b.tz FROM floors f JOIN buildings b ON b.id = f.building_id "
        "WHERE f.id = $1",
        "zone": "SELECT b.id, b.tz FROM zones z JOIN floors f ON f.id = z.floor_id "
        "JOIN buildings b ON b.id = f.building_id WHERE z.id = $1",
    }[level]
    row = await conn.fetchrow(query, place_id)
    return Place(row["id"], row["tz"]) if row else None


async def live_desks(
    conn: asyncpg.Connection,
    building: str | None = None,
    floor: str | None = None,
    zone: str | None = None,
) -> list[DeskLive]:
    """Every desk under the given places (all given filters apply) with its sensor's state."""
    rows = await conn.fetch(
        """SELECT d.id AS desk_id, d.name, b.id AS building_id, f.id AS floor_id,
                  z.id AS zone_id, d.x, d.y, d.equipment, b.tz,
                  s.device_id, s.occupied, s.since, s.reported_at
           FROM desks d
           JOIN zones z ON z.id = d.zone_id
           JOIN floors f ON f.id = z.floor_id
           JOIN buildings b ON b.id = f.building_id
           LEFT JOIN desk_state s ON s.desk_id = d.id
           WHERE ($1::text IS NULL OR b.id = $1)
             AND ($2::text IS NULL OR f.id = $2)
             AND ($3::text IS NULL OR z.id = $3)
           ORDER BY f.level, z.id, d.id""",
        building,
        floor,
        zone,
    )
    return [DeskLive(**{**dict(r), "equipment": tuple(r["equipment"])}) for r in rows]


@dataclass(frozen=True, slots=True)
class PlanZone:
    """A zone where a floor plan may be shown, with its floor and building (a floor
    without zones comes once, ``zone_id`` None)."""

    building_id: str
    building_name: str
    tz: str
    floor_id: str
    floor_name: str
    zone_id: str | None
    zone_name: str | None


async def plan_zones(conn: asyncpg.Connection) -> list[PlanZone]:
    """Every building's floors and their zones, by building, floor level and zone."""
    rows = await conn.fetch(
        """SELECT b.id AS building_id, b.name AS building_name, b.tz,
                  f.id AS floor_id, f.name AS floor_name, z.id AS zone_id, z.name AS zone_name
           FROM buildings b
           JOIN floors f ON f.building_id = b.id
           LEFT JOIN zones z ON z.floor_id = f.id
           ORDER BY b.id, f.level, f.id, z.id"""
    )
    return [PlanZone(**dict(r)) for r in rows]
