"""What the lobby kiosk and a desk's or a zone's display show (issue 19): a building's
free desks per floor now, one desk's sign (free, booked until, occupied), and a zone's
desks by their sign with its people count against its capacity, all from the live
floor map's one rule (``ikn_core.live_desk``) and its zone count. Nothing here names
a person: a booking counts by its status and its times only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from ikn_core.access import TokenError
from ikn_core.live_desk import DeskSign, LiveState, desk_sign, live_state
from ikn_service.live_floor import facts_of
from ikn_store.booking.bookings import desk_next
from ikn_store.displays import create_display_token
from ikn_store.live_floor import (
    ZoneRow,
    building_desks,
    building_floors,
    one_desk,
    one_zone,
    zone_desks,
)

__all__ = [
    "DeskDisplay",
    "FloorCount",
    "Kiosk",
    "ZoneDisplay",
    "create_display",
    "desk_display",
    "kiosk",
    "zone_display",
]


NAME_MAX = 100  # the characters of a display's name (display_tokens.name)


async def create_display(conn: asyncpg.Connection, name: str, building_id: str) -> str:
    """A new display token named ``name`` for the displays of ``building_id``, to be
    shown once (``ikn display create``, ``/console/displays``). A name is 1 to
    ``NAME_MAX`` printable characters, no space first or last."""
    if not 1 <= len(name) <= NAME_MAX or not name.isprintable() or name != name.strip():
        raise TokenError("bad-name", f"a display's name has 1 to {NAME_MAX} printable characters")
    return await create_display_token(conn, name, building_id)


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


@dataclass(frozen=True, slots=True)
class ZoneDisplay:
    zone_id: str
    name: str
    floor_name: str
    building_id: str
    building_name: str
    zone: ZoneInfo  # the building's
    signs: dict[DeskSign, int]  # the zone's desks by their sign now (every sign, 0 too)
    count: ZoneRow  # its people (None: no counter) against its desks in use, as on the map

    @property
    def over(self) -> bool:
        """More people counted than the zone has desks in use."""
        return self.count.people is not None and self.count.people > self.count.desks


async def zone_display(conn: asyncpg.Connection, zone_id: str, now: datetime) -> ZoneDisplay | None:
    """The zone's desks by sign and its people count now (None: no such zone)."""
    place = await one_zone(conn, zone_id)
    if place is None:
        return None
    signs = dict.fromkeys(DeskSign, 0)
    for row in await zone_desks(conn, zone_id, now):
        signs[desk_sign(facts_of(row), now)] += 1
    return ZoneDisplay(
        zone_id,
        place.zone.name,
        place.floor_name,
        place.building_id,
        place.building_name,
        ZoneInfo(place.tz),
        signs,
        place.zone,
    )
