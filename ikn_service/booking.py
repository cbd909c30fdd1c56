"""Booking use cases: book a desk (its rules and zone access checked, then booked
atomically), cancel, check in and out, whom a booker may book for, the job that
releases no-shows, and an admin's booking rules and zone access.

The rules are the domain's (``ikn_core.booking``); "never twice" is the database's
(``ikn_store.booking.bookings``). Each use case raises a ``BookingError`` the entry points
turn into their own answer (a problem document, a CLI message).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID, uuid4

import asyncpg

from ikn_core.attendance.policy import LATE_SIGNAL_AFTER
from ikn_core.attendance.sent import event_time
from ikn_core.booking import (
    ACTIVE,
    RELEASE_AFTER,
    BookDesk,
    BookingContended,
    BookingError,
    BookingNotActive,
    BookingNotFound,
    CheckInSignal,
    DeskAssigned,
    DeskDisabled,
    NotYourDelegation,
    Recurrence,
    RuleBroken,
    UnknownPerson,
    UnknownPlace,
    ZoneRestricted,
    check_access,
    check_in_window,
)
from ikn_store.booking import bookings as store
from ikn_store.booking import places as places_store
from ikn_store.booking.availability import DeskAvailability
from ikn_store.booking.bookings import Booked, Booking
from ikn_store.booking.places import DeskPlace, PlaceCache, RuleOverrides, check_desk
from ikn_store.people import Person, get_person
from ikn_store.spaces import find_place

PLACE_ATTEMPTS = 5


class Booker(Protocol):
    """Where ``book`` reads and books: ``ikn_store.booking.bookings.OnConnection``, or the
    API's batches (``api.booking.batches``)."""

    async def fresh_place(self, places: PlaceCache, desk_id: str) -> DeskPlace: ...

    async def replayed(self, cmd: BookDesk) -> Booking | None: ...

    async def insert(self, place: DeskPlace, cmd: BookDesk) -> Booked: ...


async def book(
    booker: Booker, places: PlaceCache, cmd: BookDesk, now: datetime
) -> tuple[Booking, bool]:
    """Check the desk's rules and zone access, then book, in one round trip when the
    desk's place is cached and unchanged. A refusal is always decided on a freshly read
    place; a booking only on a place the INSERT confirmed unchanged. Returns the booking
    and whether it was made now (False: a replay of its idempotency key)."""
    earlier = await booker.replayed(cmd)
    if earlier is not None:
        return earlier, False
    place = places.cached(cmd.desk_id)
    fresh = place is None
    for _ in range(PLACE_ATTEMPTS):
        if place is None or (not fresh and _refused(place, cmd, now)):
            place, fresh = await booker.fresh_place(places, cmd.desk_id), True
        _check(place, cmd, now)
        result = await booker.insert(place, cmd)
        if result is not None:
            return result
        place = None  # the rules changed meanwhile: read them again
    raise BookingContended(f"desk {cmd.desk_id}: its rules keep changing; retry")


@dataclass(frozen=True, slots=True)
class SeriesBooked:
    """What a series booked, and each occurrence refused with why."""

    booked: list[Booking]
    refused: list[tuple[datetime, datetime, BookingError]]


async def book_series(
    conn: asyncpg.Connection,
    places: PlaceCache,
    first: BookDesk,
    recurrence: Recurrence,
    now: datetime,
) -> SeriesBooked:
    """Book every occurrence of ``recurrence`` at ``first``'s desk for its person, one
    by one under the rules of a single booking (not atomic, by choice: a desk taken on
    one Tuesday should not cost the other nine), in one new series. With an idempotency
    key K, occurrence n is booked under ``K#n``, so a retry books nothing twice. An
    unknown desk raises; a refused occurrence is listed."""
    series, booker = uuid4(), store.OnConnection(conn)
    zone = (await places.fresh(conn, first.desk_id)).zone_info
    done = SeriesBooked([], [])
    for n, (start, end) in enumerate(recurrence.occurrences(zone)):
        key = f"{first.idempotency_key}#{n}" if first.idempotency_key is not None else None
        cmd = replace(first, start=start, end=end, idempotency_key=key, series_id=series)
        try:
            booking, _ = await book(booker, places, cmd, now)
        except BookingError as exc:
            done.refused.append((start, end, exc))
        else:
            done.booked.append(booking)
    return done


def _check(place: DeskPlace, cmd: BookDesk, now: datetime) -> None:
    place.rules.check(cmd.start, cmd.end, now, place.zone_info)
    check_access(place.allowed, cmd.agency, cmd.unit)
    check_desk(place, cmd.person_id, cmd.manager)


def _refused(place: DeskPlace, cmd: BookDesk, now: datetime) -> bool:
    try:
        _check(place, cmd, now)
    except (RuleBroken, ZoneRestricted, DeskDisabled, DeskAssigned):
        return True
    return False


DESK_STATES = ("free", "booked", "occupied", "offline", "disabled", "assigned")
BOOKABLE = frozenset({"free", "offline"})  # an offline sensor does not stop a booking


def desk_state(desk: DeskAvailability, covers_now: bool) -> str:
    """A desk's state for a window (``DESK_STATES``): out of use, booked, occupied now
    (``covers_now``: the window includes now and its sensor sees someone), assigned to
    someone, its sensor offline, else free."""
    if desk.disabled:
        return "disabled"
    if desk.booked:
        return "booked"
    if covers_now and desk.occupied:
        return "occupied"
    if desk.assigned_to is not None:
        return "assigned"
    if desk.sensor_online is False:
        return "offline"
    return "free"


def free_for(desk: DeskAvailability, state: str, person_id: str | None) -> bool:
    """Whether ``person_id`` may book the desk in ``state`` for themself: free, offline,
    or assigned to them."""
    return state in BOOKABLE or (state == "assigned" and desk.assigned_to == person_id)


async def for_whom(
    conn: asyncpg.Connection, me: Person, person_id: str, *, manager: bool, delegate: bool
) -> Person:
    """Whom ``me`` books for when naming ``person_id``: a delegate books for people of
    their own agency and unit, a facility manager (``manager``) for anyone."""
    if person_id == me.id:
        return me
    if manager or delegate:
        other = await get_person(conn, person_id)
        if other is not None and manager:
            return other
        if other is not None and (other.agency, other.unit) == (me.agency, me.unit):
            return other
        if other is None and manager:
            raise UnknownPerson(f"no person {person_id!r}")
    raise NotYourDelegation(
        "a delegate books for people of their own unit; facility managers for anyone"
    )


def may_see(booking: Booking, caller_id: str | None, manager: bool) -> bool:
    """A booking is the caller's to act on when it is theirs or they made it; a
    facility manager acts on any."""
    return manager or (
        caller_id is not None and caller_id in (booking.person_id, booking.created_by)
    )


async def visible(
    conn: asyncpg.Connection, booking_id: UUID, caller_id: str | None, manager: bool
) -> Booking:
    """The booking, when the caller may act on it; others' bookings look absent."""
    booking = await store.get_booking(conn, booking_id)
    if not may_see(booking, caller_id, manager):
        raise BookingNotFound(f"no booking {booking_id}")
    return booking


@dataclass(frozen=True, slots=True)
class CancelBooking:
    """Cancel ``booking`` (one the caller may see), with ``following``: also the later
    occurrences of its series; ``manager``: a facility manager, past any cut-off."""

    booking: Booking
    manager: bool
    following: bool = False


async def cancel(
    conn: asyncpg.Connection, places: PlaceCache, cmd: CancelBooking, now: datetime
) -> list[Booking]:
    """Cancel before the cut-off of the desk's rules (a facility manager any time); the
    bookings cancelled."""
    booking = cmd.booking
    if cmd.following and booking.status not in ACTIVE:
        raise BookingNotActive(f"booking {booking.id} is {booking.status}")
    if not cmd.manager:
        place = await places.fresh(conn, booking.desk_id)
        place.rules.check_cancel(booking.start, now)
    if cmd.following:
        return await store.cancel_following(conn, booking)
    return [await store.cancel(conn, booking.id)]


async def _mine(conn: asyncpg.Connection, booking_id: UUID, person_id: str) -> Booking:
    booking = await store.get_booking(conn, booking_id)
    if booking.person_id != person_id:
        raise BookingNotFound(f"no booking {booking_id}")
    return booking


async def check_in(
    conn: asyncpg.Connection,
    booking_id: UUID,
    person_id: str,
    now: datetime,
    *,
    sent: datetime | None = None,
    oldest: timedelta = LATE_SIGNAL_AFTER,
) -> Booking:
    """Check in to my own booking from the app, inside its check-in window; ``sent``:
    the phone's time of a check-in queued offline, the check-in's time inside the bounds
    (``ikn_core.attendance.sent.event_time``, ``oldest``: the policy's late-signal
    bound), stored with ``now``, its receipt."""
    booking = await _mine(conn, booking_id, person_id)
    at = event_time(sent, now, oldest)
    check_in_window(booking.start, booking.end, at)
    received = None if sent is None else now
    return await store.check_in(conn, booking.id, CheckInSignal.APP, at, received)


async def check_out(
    conn: asyncpg.Connection, booking_id: UUID, person_id: str, now: datetime
) -> Booking:
    """Leave early: my checked-in booking ends ``now`` and the desk is free again."""
    booking = await _mine(conn, booking_id, person_id)
    return await store.check_out(conn, booking.id, now)


async def release_no_shows(conn: asyncpg.Connection, now: datetime) -> int:
    """The release job's round: every booking not checked in ``RELEASE_AFTER`` its
    start is released (how many)."""
    return await store.release_no_shows(conn, now, RELEASE_AFTER)


Level = Literal["site", "building", "zone"]


async def _check_place(conn: asyncpg.Connection, level: Level, place_id: str) -> None:
    if level == "site":
        found = await places_store.site_rules(conn, place_id) is not None
    elif level == "building":
        found = await places_store.building_rules(conn, place_id) is not None
    else:
        found = await find_place(conn, "zone", place_id) is not None
    if not found:
        raise UnknownPlace(level, place_id)


async def set_rules(
    conn: asyncpg.Connection, level: Level, place_id: str, overrides: RuleOverrides
) -> None:
    """Replace the booking rules a site, building or zone sets (``UnknownPlace``)."""
    await _check_place(conn, level, place_id)
    write = {
        "site": places_store.set_site_rules,
        "building": places_store.set_building_rules,
        "zone": places_store.set_zone_rules,
    }[level]
    await write(conn, place_id, overrides)


async def zone_access(conn: asyncpg.Connection, zone_id: str) -> list[tuple[str, str | None]]:
    """Who may book in the zone (empty: everyone)."""
    await _check_place(conn, "zone", zone_id)
    return await places_store.zone_access(conn, zone_id)


async def restrict_zone(
    conn: asyncpg.Connection, zone_id: str, allowed: list[tuple[str, str | None]]
) -> list[tuple[str, str | None]]:
    """Only ``allowed`` (agency, unit or None) may book in the zone; empty: everyone.
    Returns the access now stored."""
    await _check_place(conn, "zone", zone_id)
    await places_store.restrict_zone(conn, zone_id, allowed)
    return await places_store.zone_access(conn, zone_id)
