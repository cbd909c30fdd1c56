"""What the Today page shows, read through the store's own queries (the API's reports
read the same): the person's zone and day, their bookings that day, and the day's
attendance record as it counts now. Plain functions, so that they can call the service
layer (ikn_service) once it exists without the page changing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from ikn_core.attendance import DailyRecord, Policies
from ikn_core.booking import BookingStatus, OutsideCheckInWindow, check_in_window
from ikn_store.attendance.days import counted_spans, records
from ikn_store.booking.bookings import Booking, list_bookings


@dataclass(frozen=True, slots=True)
class Today:
    day: date
    zone: ZoneInfo  # the person's building's (IKN's when they have none)
    bookings: tuple[Booking, ...]  # active ones (booked, checked in) that overlap the day
    record: DailyRecord | None  # None: the person's days are not counted


async def read_today(
    conn: asyncpg.Connection, policies: Policies, person_id: str, now: datetime
) -> Today:
    zone = (await counted_spans(conn, [person_id]))[person_id][1]
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(), zone)
    end = start + timedelta(days=1)
    booked = await list_bookings(conn, person_id, since=start)
    found = await records(conn, policies, [person_id], [day], now)
    return Today(
        day=day,
        zone=zone,
        bookings=tuple(b for b in booked if b.start < end),
        record=found.get((person_id, day)),
    )


def window_open(booking: Booking, now: datetime) -> bool:
    """Whether ``booking`` may be checked in to ``now`` (``ikn_core.booking``)."""
    try:
        check_in_window(booking.start, booking.end, now)
    except OutsideCheckInWindow:
        return False
    return booking.status is BookingStatus.BOOKED
