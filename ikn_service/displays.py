"""What the lobby kiosk and a desk's display show (issue 19): a building's free desks
per floor now, and one desk's sign (free, booked until, occupied), both from the live
floor map's one rule (``ikn_core.live_desk``). Nothing here names a person: a booking
counts by its status and its times only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from ikn_core.live_desk import DeskSign, LiveState, desk_sign, live_state
from ikn_service.live_floor import facts_of
from ikn_store.booking.bookings import desk_next
from ikn_store.live_floor import building_desks, building_floors, one_desk

__all__ = ["DeskDisplay", "FloorCount", "Kiosk", "desk_display", "kiosk"]


@dataclass(frozen=True, slots=True)
class FloorCount:
    floor_id: str
    name: str
    free: int  # desks free now (the live state ``free``)
    desks: int  # desks anyone may book (not out of use, not assigned to one person)


@dataclass(frozen=True, slots=True)
class Kiosk:
    building_id: str
    name: str
    zone: ZoneInfo
    floors: list[FloorCount]

    @property
    def free(self) -> int:
        return sum(f.free for f in self.floors)


async def kiosk(conn: asyncpg.Connection, building_id: str, now: datetime) -> Kiosk | None:
    """The building's floors with their free desks now (None: no such building)."""
    found = await building_floors(conn, building_id)
    if found is None:
        return None
    free = dict.fromkeys((f for f, _ in found.floors), 0)
    desks = dict(free)
    for row in await building_desks(conn, building_id, now):
        state = live_state(facts_of(row), now)
        desks[row.floor_id] += state not in (LiveState.DISABLED, LiveState.ASSIGNED)
        free[row.floor_id] += state is LiveState.FREE
    floors = [FloorCount(f, name, free[f], desks[f]) for f, name in found.floors]
    return Kiosk(found.building_id, found.name, ZoneInfo(found.tz), floors)


@dataclass(frozen=True, slots=True)
class DeskDisplay:
    desk_id: str
    name: str
    building_id: str
    floor_id: str
    zone_id: str
    zone: ZoneInfo  # the building's
    sign: DeskSign
    until: datetime | None  # booked/occupied: the booking's end; free: the next's start


async def desk_display(conn: asyncpg.Connection, desk_id: str, now: datetime) -> DeskDisplay | None:
    """The desk's sign now (None: no such desk). ``until`` is a time of today in the
    building's zone, or None (free all day, occupied without a booking)."""
    row = await one_desk(conn, desk_id, now)
    if row is None:
        return None
    zone = ZoneInfo(row.tz)
    sign = desk_sign(facts_of(row), now)
    until = row.booking_end if sign in (DeskSign.BOOKED, DeskSign.OCCUPIED) else None
    if sign is DeskSign.FREE:
        tomorrow = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(), zone)
        held = await desk_next(conn, desk_id, now)
        until = held.start if held is not None and now < held.start < tomorrow else None
    return DeskDisplay(
        row.desk_id, row.name, row.building_id, row.floor_id, row.zone_id, zone, sign, until
    )
