"""Import and export of the space hierarchy and people in PostgreSQL.

An import reads what is stored, checks the whole file against it
(``ikn_core.io``), and writes it in the same transaction: either every row or,
on any problem, nothing. Rows are upserted by id and only written when they
differ, so importing the same file again changes nothing. Rows the file does
not name are left alone (an import never deletes).
"""

from __future__ import annotations

import asyncio
from dataclasses import astuple, dataclass
from typing import Any

import asyncpg

from ikn_core.io import (
    BuildingRecord,
    DeskRecord,
    FloorRecord,
    PersonRecord,
    SiteRecord,
    Spaces,
    ZoneRecord,
    parse_people,
    parse_spaces,
)


@dataclass(frozen=True, slots=True)
class Written:
    """What an import did to one table."""

    table: str
    inserted: int
    updated: int
    unchanged: int


_EXISTING = {
    "site": "SELECT id FROM sites",
    "building": "SELECT id FROM buildings",
    "floor": "SELECT id FROM floors",
    "zone": "SELECT id FROM zones",
    "desk": "SELECT id FROM desks",
    "person": "SELECT id FROM people",
}

_PERSON_COLUMNS = (
    "id", "name", "agency", "unit", "role", "home_building_id",
    "employment_start", "employment_end", "duty_station_tz",
)  # fmt: skip
# table, columns (id first): the upsert writes a row only when a column differs.
_TABLES = {
    "site": ("sites", ("id", "name")),
    "building": (
        "buildings",
        ("id", "site_id", "name", "tz", "lat", "lon", "agency", "live_from"),
    ),
    "floor": ("floors", ("id", "building_id", "name", "level")),
    "zone": ("zones", ("id", "floor_id", "name", "agency")),
    "desk": (
        "desks",
        ("id", "zone_id", "name", "x", "y", "equipment", "disabled", "assigned_to"),
    ),
    "person": ("people", _PERSON_COLUMNS),
}


def _upsert_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(columns)
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    rest = columns[1:]
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)
    mine = ", ".join(f"t.{c}" for c in rest)
    theirs = ", ".join(f"EXCLUDED.{c}" for c in rest)
    return (
        f"INSERT INTO {table} AS t ({names}) VALUES ({params}) "
        f"ON CONFLICT (id) DO UPDATE SET {sets} WHERE ({mine}) IS DISTINCT FROM ({theirs}) "
        "RETURNING (xmax = 0) AS inserted"
    )


async def existing_ids(conn: asyncpg.Connection) -> dict[str, set[str]]:
    return {kind: {r["id"] for r in await conn.fetch(q)} for kind, q in _EXISTING.items()}


async def _write(conn: asyncpg.Connection, kind: str, rows: list[tuple[Any, ...]]) -> Written:
    table, columns = _TABLES[kind]
    statement = await conn.prepare(_upsert_sql(table, columns))
    inserted = updated = 0
    for row in rows:
        result = await statement.fetchrow(*row)
        if result is not None:
            inserted += result["inserted"]
            updated += not result["inserted"]
    return Written(table, inserted, updated, len(rows) - inserted - updated)


def _space_rows(spaces: Spaces) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "site": [(s.id, s.name) for s in spaces.sites],
        "building": [
            (b.id, b.parent, b.name, b.tz, b.lat, b.lon, b.agency, b.live_from)
            for b in spaces.buildings
        ],
        "floor": [(f.id, f.parent, f.name, f.level) for f in spaces.floors],
        "zone": [(z.id, z.parent, z.name, z.agency) for z in spaces.zones],
        "desk": [
            (d.id, d.parent, d.name, d.x, d.y, list(d.equipment), d.disabled, d.assigned_to)
            for d in spaces.desks
        ],
    }


async def import_spaces(conn: asyncpg.Connection, text: str, fmt: str) -> list[Written]:
    """Check the whole file, then write it in one transaction (parents first).

    Raises ``ImportRejectedError`` with every problem, and writes nothing, when any."""
    async with conn.transaction():
        existing = await existing_ids(conn)
        # A file of 100,000 lines takes seconds to check: not on the event loop, which
        # serves every other request (the console's import page runs in the API).
        spaces = await asyncio.to_thread(parse_spaces, text, fmt, existing)
        rows = _space_rows(spaces)
        return [await _write(conn, kind, rows[kind]) for kind in rows]


async def import_people(conn: asyncpg.Connection, text: str, fmt: str) -> list[Written]:
    """As ``import_spaces``, for people (their home buildings must exist)."""
    async with conn.transaction():
        existing = await existing_ids(conn)
        people = await asyncio.to_thread(parse_people, text, fmt, existing)  # as above
        rows = [astuple(p) for p in people]  # the fields in the table's column order
        return [await _write(conn, "person", rows)]


def _real(value: float) -> float:
    """Floor-plan coordinates are stored as ``real``: give back what was written (1.1, not
    1.100000023841858)."""
    return float(f"{value:.7g}")


async def export_spaces(conn: asyncpg.Connection) -> Spaces:
    sites = await conn.fetch("SELECT id, name FROM sites ORDER BY id")
    buildings = await conn.fetch(
        "SELECT id, site_id, name, tz, lat, lon, agency, live_from FROM buildings ORDER BY id"
    )
    floors = await conn.fetch(
        "SELECT id, building_id, name, level FROM floors ORDER BY building_id, level, id"
    )
    zones = await conn.fetch("SELECT id, floor_id, name, agency FROM zones ORDER BY floor_id, id")
    desks = await conn.fetch(
        """SELECT id, zone_id, name, x, y, equipment, disabled, assigned_to
           FROM desks ORDER BY zone_id, id"""
    )
    return Spaces(
        tuple(SiteRecord(*r) for r in sites),
        tuple(BuildingRecord(*r) for r in buildings),
        tuple(FloorRecord(*r) for r in floors),
        tuple(ZoneRecord(*r) for r in zones),
        tuple(
            DeskRecord(
                r["id"],
                r["zone_id"],
                r["name"],
                _real(r["x"]),
                _real(r["y"]),
                tuple(sorted(r["equipment"])),
                r["disabled"],
                r["assigned_to"],
            )
            for r in desks
        ),
    )


async def export_people(conn: asyncpg.Connection) -> tuple[PersonRecord, ...]:
    rows = await conn.fetch(
        """SELECT id, name, agency, unit, role, home_building_id, employment_start,
                  employment_end, duty_station_tz FROM people ORDER BY id"""
    )
    return tuple(PersonRecord(*r) for r in rows)
