"""My bookings (issue 18): the person's upcoming bookings by day, in each desk's
building's zone, with what each allows now (check in, check out, cancel it or, in a
series, it and the later ones), and their bookings as an iCalendar file.

Each action is a form POST calling the same service as the API
(``ikn_service.booking``), answered 303 back to the page with what was done
(``?done=``), or with the page again and the reason it was refused (4xx).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from ikn_core.attendance.sent import SentTimeRefused
from ikn_core.booking import (
    BookingError,
    BookingNotFound,
    BookingStatus,
    RuleBroken,
    check_in_opens,
)
from ikn_service import booking as service
from ikn_service.booking_feed import feed_of
from ikn_store.attendance.days import counted_spans
from ikn_store.booking.bookings import Booking, list_bookings
from ikn_store.booking.feeds import feed_created, replace_feed
from web import feeds, i18n, pwa, sessions
from web.labels import (
    BOOKING_DONE,
    BOOKING_REFUSALS,
    BOOKING_REFUSED,
    BOOKING_STATUSES,
    FEED_MADE,
    SENT_REFUSALS,
)
from web.pages import person_of, render, signed_in
from web.ports import PORTS
from web.today import window_open

routes = web.RouteTableDef()

NOT_FOUND = frozenset({"booking-not-found", "unknown-desk"})
NOT_ALLOWED = frozenset({"zone-restricted", "desk-assigned", "not-your-delegation"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action was refused (a message of ``BOOKING_REFUSALS``) and the status."""

    message: str
    status: int


def refusal(error: BookingError | SentTimeRefused) -> Refusal:
    """The page's answer to a service error: its reason, and 404, 403, 422 or 409 (a
    check-in queued offline whose phone's time is out of bounds: 422)."""
    if isinstance(error, SentTimeRefused):
        return Refusal(SENT_REFUSALS.get(error.kind, BOOKING_REFUSED), 422)
    message = BOOKING_REFUSALS.get(error.kind, BOOKING_REFUSED)
    if error.kind in NOT_FOUND:
        return Refusal(message, 404)
    if error.kind in NOT_ALLOWED:
        return Refusal(message, 403)
    return Refusal(message, 422 if isinstance(error, RuleBroken) else 409)


@dataclass(frozen=True, slots=True)
class Row:
    """A booking of the list and what it allows now."""

    booking: Booking
    zone: ZoneInfo  # its desk's building's
    check_in: bool
    check_out: bool
    cancel: bool
    opens: datetime | None  # booked, check-in not open yet: when it opens


def row_of(booking: Booking, now: datetime) -> Row:
    booked = booking.status is BookingStatus.BOOKED
    opens = check_in_opens(booking.start)
    return Row(
        booking=booking,
        zone=ZoneInfo(booking.tz),
        check_in=window_open(booking, now),
        check_out=booking.status is BookingStatus.CHECKED_IN,
        cancel=booked,
        opens=opens if booked and now < opens else None,
    )


def _day(row: Row) -> date:
    return row.booking.start.astimezone(row.zone).date()


async def read_mine(
    conn: asyncpg.Connection, person_id: str, now: datetime
) -> list[tuple[date, list[Row]]]:
    """The person's active bookings that have not ended, by day (their desk's zone's)."""
    rows = [row_of(b, now) for b in await list_bookings(conn, person_id, since=now)]
    return [(day, list(group)) for day, group in groupby(rows, key=_day)]


@routes.get("/bookings")
@signed_in
async def my_bookings(request: web.Request) -> web.StreamResponse:
    return await _page(request, done=BOOKING_DONE.get(request.query.get("done", "")))


async def _page(
    request: web.Request,
    *,
    done: str | None = None,
    refused: Refusal | None = None,
    feed_secret: str | None = None,
) -> web.Response:
    """The list, with what was just done or why it was refused (then its status);
    ``feed_secret``: the calendar address just made, shown this once."""
    ports, person = request.app[PORTS], person_of(request)
    async with ports.pool().acquire() as conn:
        days = await read_mine(conn, person.id, ports.now())
        feed_made = await feed_created(conn, person.id)
        zone = (await counted_spans(conn, [person.id]))[person.id][1]  # the person's building's
    lang = i18n.language_of(request)
    feed_url = None
    if feed_secret is not None:
        feed_url = feeds.address(sessions.own_origin(request), feed_secret)
    response = render(
        request,
        "bookings.html",
        days=days,
        day_text=lambda day: i18n.long_date(day, lang),
        clock=lambda moment, zone: i18n.clock_time(moment, zone, lang),
        statuses=BOOKING_STATUSES,
        done=done,
        refused=refused.message if refused else None,
        feed_made=feed_made and i18n.long_date(feed_made.astimezone(zone).date(), lang),
        feed_url=feed_url,
        webcal_url=feed_url and "webcal://" + feed_url.split("://", 1)[1],
        here="/bookings",  # an action's answer too (its address takes no GET)
    )
    if refused is not None:
        response.set_status(refused.status)
    if feed_url is not None:  # the secret: kept by no cache, the browser's neither
        response.headers["Cache-Control"] = "no-store"
    return response


Action = Callable[[asyncpg.Connection, UUID, str, datetime], Awaitable[Any]]


async def _act(request: web.Request, action: Action, done: str) -> web.StreamResponse:
    """``action`` on the path's booking, as the signed-in person, now; back to the list."""
    ports = request.app[PORTS]
    try:
        booking_id = _booking_id(request)
        async with ports.pool().acquire() as conn:
            await action(conn, booking_id, person_of(request).id, ports.now())
    except (BookingError, SentTimeRefused) as exc:
        return await _page(request, refused=refusal(exc))
    raise web.HTTPSeeOther(f"/bookings?done={done}")


def _booking_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError:
        raise BookingNotFound("not a booking id") from None


@routes.post("/bookings/{id}/cancel")
@signed_in
async def cancel(request: web.Request) -> web.StreamResponse:
    """Cancel my booking (``following=true``: and the later ones of its series)."""
    following = (await request.post()).get("following") == "true"
    places = request.app[PORTS].places()

    async def cancel_mine(
        conn: asyncpg.Connection, booking_id: UUID, person_id: str, now: datetime
    ) -> None:
        found = await service.visible(conn, booking_id, person_id, False)
        cmd = service.CancelBooking(found, manager=False, following=following)
        await service.cancel(conn, places, cmd, now)

    return await _act(request, cancel_mine, "cancelled-following" if following else "cancelled")


@routes.post("/bookings/{id}/check-in")
@signed_in
async def check_in(request: web.Request) -> web.StreamResponse:
    """Check in now, or at the phone's time of a check-in queued offline (``client_time``)."""
    try:
        sent = await pwa.sent_of(request)
    except SentTimeRefused as exc:
        return await _page(request, refused=refusal(exc))
    oldest = pwa.oldest(request)

    async def check_in_mine(
        conn: asyncpg.Connection, booking_id: UUID, person_id: str, now: datetime
    ) -> Booking:
        return await service.check_in(conn, booking_id, person_id, now, sent=sent, oldest=oldest)

    return await _act(request, check_in_mine, "checked-in")


@routes.post("/bookings/{id}/check-out")
@signed_in
async def check_out(request: web.Request) -> web.StreamResponse:
    return await _act(request, service.check_out, "checked-out")


@routes.post("/bookings/feed")
@signed_in
async def new_feed(request: web.Request) -> web.StreamResponse:
    """A new secret calendar address for me, shown on the page this once; the one I had
    stops working."""
    ports = request.app[PORTS]
    async with ports.pool().acquire() as conn:
        secret = await replace_feed(conn, person_of(request).id, ports.now())
    return await _page(request, done=FEED_MADE, feed_secret=secret)


@routes.get("/bookings.ics")
@signed_in
async def feed(request: web.Request) -> web.StreamResponse:
    """My bookings that have not ended, as an iCalendar file to import (a calendar app
    subscribes to the secret address instead, ``web.feeds``)."""
    ports, person = request.app[PORTS], person_of(request)
    async with ports.pool().acquire() as conn:
        body = await feed_of(conn, person.id, ports.now())
    return web.Response(
        body=body.encode(),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="bookings.ics"'},
    )
