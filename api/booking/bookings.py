"""``/api/v1/bookings``: book a desk, list mine, cancel, check in, check out,
facility managers' no-show counts, and my iCalendar feed.

Every broken rule is answered as ``application/problem+json`` with a stable
``type`` (``.../problems/desk-taken``) and a title in English or Indonesian,
chosen by ``Accept-Language`` (``api.booking.http``). Times are ISO 8601 with an
offset; a naive time is refused with a problem naming the field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
from aiohttp import web

from api.auth import PRINCIPAL, requires
from api.booking import series as booking_series
from api.booking.batches import BOOKER
from api.booking.http import (
    ALL_ROLES,
    MANAGERS,
    PLACES,
    body_of,
    booking_json,
    caller,
    desk_of,
    for_whom,
    from_error,
    idempotency_key,
    invalid,
    parse_time,
    path_booking_id,
    problem,
    require_person,
    respond,
    visible,
)
from api.state import POOL
from ikn_core.booking import BookDesk, BookingError
from ikn_core.contract.identifiers import PERSON_ID
from ikn_core.domain import Role
from ikn_service import booking as service
from ikn_service.booking_feed import calendar
from ikn_store.booking import bookings as store
from ikn_store.booking.places import PlaceCache

# caller and require_person are re-exported: api.attendance.handlers imports them from here.
__all__ = ["NO_SHOW_DAYS", "caller", "require_person", "routes", "setup"]

NO_SHOW_DAYS = 90  # the window of GET /bookings/no-shows and of my summary, by default

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    """The recurring-booking routes, and the desk places the booking routes keep in memory."""
    app[PLACES] = PlaceCache()
    app.add_routes(booking_series.routes)


@routes.post("/api/v1/bookings")
@requires(*ALL_ROLES)
async def create(request: web.Request) -> web.Response:
    """Book a desk for [start, end). The same Idempotency-Key never books twice."""
    body = await body_of(request, ("desk", "start", "end", "person"))
    desk = desk_of(request, body)
    start = parse_time(request, "start", body.get("start"))
    end = parse_time(request, "end", body.get("end"))
    key = idempotency_key(request)
    me = require_person(request)
    whom = await for_whom(request, me, body.get("person"))
    manager = request[PRINCIPAL].role in MANAGERS
    cmd = BookDesk(desk, whom.id, whom.agency, whom.unit, start, end, me.id, key, manager=manager)
    try:
        booking, created = await service.book(
            request.app[BOOKER], request.app[PLACES], cmd, datetime.now(UTC)
        )
    except BookingError as exc:
        raise from_error(request, exc) from exc
    location = f"/api/v1/bookings/{booking.id}"
    if created:
        return respond(booking_json(booking), 201, Location=location)
    return respond(booking_json(booking), 200, Location=location, **{"Idempotent-Replayed": "true"})


@routes.get("/api/v1/bookings")
@requires(*ALL_ROLES)
async def mine(request: web.Request) -> web.Response:
    """My bookings that have not ended and my no-shows of the last 90 days;
    facility managers may name ?person=."""
    unknown = sorted(set(request.query) - {"person"})
    if unknown:
        raise invalid(request, unknown[0], "unknown parameter; use person")
    asked = request.query.get("person")
    me = caller(request)
    if asked is not None and (me is None or asked != me.id):
        if request[PRINCIPAL].role not in MANAGERS:
            raise problem(request, "forbidden", "only facility managers list others' bookings", 403)
        if not PERSON_ID.fullmatch(asked):
            raise invalid(request, "person", "must be a person id")
        whom: str | None = asked
    else:
        whom = me.id if me else None
    found: list[store.Booking] = []
    no_shows = 0
    if whom is not None:
        now = datetime.now(UTC)
        async with request.app[POOL].acquire() as conn:
            found = await store.list_bookings(conn, whom, since=now)
            no_shows = await store.no_shows(conn, whom, now - timedelta(days=NO_SHOW_DAYS))
    return respond(
        {"person": whom, "no_shows": no_shows, "bookings": [booking_json(b) for b in found]}
    )


@routes.delete("/api/v1/bookings/{id}")
@requires(*ALL_ROLES)
async def cancel(request: web.Request) -> web.Response:
    """Cancel my booking (or one I made for someone) before the cut-off; facility
    managers cancel any, any time."""
    found = await visible(request, path_booking_id(request))
    cmd = service.CancelBooking(found, manager=request[PRINCIPAL].role in MANAGERS)
    try:
        async with request.app[POOL].acquire() as conn:
            [booking] = await service.cancel(conn, request.app[PLACES], cmd, datetime.now(UTC))
    except BookingError as exc:
        raise from_error(request, exc) from exc
    return respond(booking_json(booking))


UseMine = Callable[[asyncpg.Connection, UUID, str, datetime], Awaitable[store.Booking]]


async def _use_mine(request: web.Request, use: UseMine) -> web.Response:
    """``use`` (check in, check out) my own booking of the path, now."""
    booking_id, me = path_booking_id(request), require_person(request)
    try:
        async with request.app[POOL].acquire() as conn:
            booking = await use(conn, booking_id, me.id, datetime.now(UTC))
    except BookingError as exc:
        raise from_error(request, exc) from exc
    return respond(booking_json(booking))


@routes.post("/api/v1/bookings/{id}/check-in")
@requires(*ALL_ROLES)
async def check_in(request: web.Request) -> web.Response:
    """Check in to my own booking from the app (or the desk's QR code)."""
    return await _use_mine(request, service.check_in)


@routes.post("/api/v1/bookings/{id}/check-out")
@requires(*ALL_ROLES)
async def check_out(request: web.Request) -> web.Response:
    """Leave early: my checked-in booking ends now and the desk is free again."""
    return await _use_mine(request, service.check_out)


@routes.get("/api/v1/bookings/no-shows")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def no_shows(request: web.Request) -> web.Response:
    """People with bookings released unused (no-shows) since ?since= (default: 90
    days ago), most first."""
    unknown = sorted(set(request.query) - {"since"})
    if unknown:
        raise invalid(request, unknown[0], "unknown parameter; use since")
    now = datetime.now(UTC)
    since = now - timedelta(days=NO_SHOW_DAYS)
    if "since" in request.query:
        since = parse_time(request, "since", request.query["since"])
    async with request.app[POOL].acquire() as conn:
        counts = await store.no_show_counts(conn, since)
    people = [{"person": p, "no_shows": n} for p, n in counts]
    return respond({"since": since.isoformat(), "people": people})


@routes.get("/api/v1/bookings.ics")
@requires(*ALL_ROLES)
async def ical(request: web.Request) -> web.Response:
    """My bookings that have not ended, as an iCalendar feed (times in UTC)."""
    if request.query:
        raise invalid(request, sorted(request.query)[0], "this feed takes no parameters")
    me = caller(request)
    now = datetime.now(UTC)
    found: list[store.Booking] = []
    if me is not None:  # a token of no one has an empty calendar, as GET /bookings
        async with request.app[POOL].acquire() as conn:
            found = await store.list_bookings(conn, me.id, since=now)
    return web.Response(
        body=calendar(me.id if me else "nobody", found, now).encode(),
        content_type="text/calendar",
        charset="utf-8",
    )
