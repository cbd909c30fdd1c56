"""The facility managers' live floor map: every desk of a floor in its state
(``ikn_core.live_desk``, the one rule), each zone's people against its desks, and the
age of each fact. People are never named: a booking counts by its status only, and a
desk assigned to one person shows neither its booking nor what its sensor sees, nor
when (that would be the person's presence)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ikn_core.live_desk import DeskFacts, LiveState, live_state
from ikn_store.live_floor import DeskRow, ZoneRow, floor_desks, floor_zones, one_desk

__all__ = ["LiveDesk", "LiveFloor", "LiveState", "ZoneRow", "desk_now", "facts_of", "read_floor"]


@dataclass(frozen=True, slots=True)
class LiveDesk:
    """A desk on the map: its state now, since when its sensor has seen what it sees,
    and when the sensor last reported (None: no reading, or an assigned desk's)."""

    desk_id: str
    name: str
    zone_id: str
    floor_id: str
    x: float
    y: float
    state: LiveState
    since: datetime | None
    reported_at: datetime | None
    sensor: str | None


@dataclass(frozen=True, slots=True)
class LiveFloor:
    tz: str | None  # the building's zone (None: the floor has no desks)
    desks: list[LiveDesk]
    zones: list[ZoneRow]


def facts_of(row: DeskRow) -> DeskFacts:
    """What the rule (``ikn_core.live_desk``) needs of a desk's row."""
    return DeskFacts(
        disabled=row.disabled,
        assigned=row.assigned,
        sensor_online=row.sensor_online,
        occupied=row.occupied,
        since=row.since,
        booking=row.booking,
        booking_start=row.booking_start,
    )


def _live(row: DeskRow, now: datetime) -> LiveDesk:
    return LiveDesk(
        row.desk_id,
        row.name,
        row.zone_id,
        row.floor_id,
        row.x,
        row.y,
        live_state(facts_of(row), now),
        None if row.assigned else row.since,
        None if row.assigned else row.reported_at,
        row.device_id,
    )


async def read_floor(conn: asyncpg.Connection, floor_id: str, now: datetime) -> LiveFloor:
    rows = await floor_desks(conn, floor_id, now)
    zones = await floor_zones(conn, floor_id)
    return LiveFloor(rows[0].tz if rows else None, [_live(r, now) for r in rows], zones)


async def desk_now(
    conn: asyncpg.Connection, desk_id: str, now: datetime
) -> tuple[LiveDesk, ZoneRow] | None:
    """One desk's state now, with its zone's count (after one of its events)."""
    row = await one_desk(conn, desk_id, now)
    if row is None:
        return None
    zone = next(z for z in await floor_zones(conn, row.floor_id) if z.zone_id == row.zone_id)
    return _live(row, now), zone
