"""Check-in at the desk (issue 18): each desk's printable QR code
(``/desks/{desk}/qr``, for facility managers and administrators) encodes the address
``/checkin/{desk}``, where the person who scanned it checks in to their booking of the
desk with one tap, or books the free desk until the end of the working day and checks
in at once. A GET only says what can be done; the POST does it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import asyncpg
import segno
from aiohttp import web
from markupsafe import Markup

from ikn_core.attendance.sent import SentTimeRefused, event_time
from ikn_core.booking import (
    BookDesk,
    BookingError,
    BookingStatus,
    DeskAlreadyBooked,
    DeskAssigned,
    DeskDisabled,
    PersonAlreadyBooked,
    ZoneRestricted,
    check_access,
    check_in_opens,
    walk_up_end,
)
from ikn_core.domain import Role
from ikn_service import booking as service
from ikn_store.booking.bookings import Booking, desk_next, list_bookings
from ikn_store.booking.places import PlaceCache, check_desk
from ikn_store.people import Person
from web import i18n, pwa, sessions
from web.bookings import Refusal, refusal
from web.labels import BOOKING_REFUSALS
from web.pages import person_of, render, signed_in
from web.ports import PORTS
from web.today import window_open

routes = web.RouteTableDef()
PRINTERS = frozenset({Role.FACILITY_MANAGER, Role.ADMIN})


class Offer(StrEnum):
    """What the check-in page offers at a desk."""

    CHECK_IN = "check-in"  # the person's booking, its window open
    CHECKED_IN = "checked-in"  # done already
    NOT_YET = "not-yet"  # the person's booking today, its window not open yet
    WALK_UP = "walk-up"  # the desk is free: book it until ``until`` and check in
    REFUSED = "refused"  # nothing: ``kind`` says why


DOABLE = frozenset({Offer.CHECK_IN, Offer.WALK_UP})  # what a POST may do
DAY_OVER = i18n.gettext_noop("The working day is over: the desk cannot be booked from here now.")
CHANGED = i18n.gettext_noop("Nothing was done: the desk's state changed. See what it offers now.")
NOT_PRINTER = i18n.gettext_noop("Only facility managers and administrators print desks' QR codes.")


@dataclass(frozen=True, slots=True)
class AtDesk:
    desk_id: str
    zone: ZoneInfo  # the desk's building's
    offer: Offer
    mine: Booking | None = None  # check-in, checked-in, not-yet: the booking
    until: datetime | None = None  # walk-up: when it would end
    kind: str = ""  # refused: the service error's kind


async def read_desk(
    conn: asyncpg.Connection, places: PlaceCache, person: Person, desk_id: str, now: datetime
) -> AtDesk:
    """What ``person`` can do at the desk ``now`` (``UnknownDesk`` when there is none):
    check in to their booking of it today, else book it walk-up while both the desk
    and they are free."""
    place = await places.fresh(conn, desk_id)
    zone = place.zone_info
    booked = await list_bookings(conn, person.id, since=now)
    tomorrow = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(), zone)
    mine = next((b for b in booked if b.desk_id == desk_id and b.start < tomorrow), None)
    if mine is not None:
        return AtDesk(desk_id, zone, _offer_of(mine, now), mine=mine)
    try:
        check_desk(place, person.id, manager=False)
        check_access(place.allowed, person.agency, person.unit)
    except (DeskDisabled, DeskAssigned, ZoneRestricted) as exc:
        return AtDesk(desk_id, zone, Offer.REFUSED, kind=exc.kind)
    held, elsewhere = await desk_next(conn, desk_id, now), next(iter(booked), None)
    until = walk_up_end(now, zone, min((b.start for b in (held, elsewhere) if b), default=None))
    if until is not None:
        return AtDesk(desk_id, zone, Offer.WALK_UP, until=until)
    return AtDesk(desk_id, zone, Offer.REFUSED, kind=_why_not(held, elsewhere, now))


def _why_not(held: Booking | None, elsewhere: Booking | None, now: datetime) -> str:
    """Why no walk-up: the desk is taken, the person has a booking under way, or
    ("") the working day is over."""
    if held is not None and held.start <= now:
        return DeskAlreadyBooked.kind
    if elsewhere is not None and elsewhere.start <= now:
        return PersonAlreadyBooked.kind
    return ""


def _offer_of(mine: Booking, now: datetime) -> Offer:
    if mine.status is BookingStatus.CHECKED_IN:
        return Offer.CHECKED_IN
    return Offer.CHECK_IN if window_open(mine, now) else Offer.NOT_YET


async def _read(request: web.Request) -> AtDesk:
    ports = request.app[PORTS]
    async with ports.pool().acquire() as conn:
        return await read_desk(
            conn, ports.places(), person_of(request), request.match_info["desk"], ports.now()
        )


@routes.get("/checkin/{desk}")
@signed_in
async def at_desk(request: web.Request) -> web.StreamResponse:
    return await _checkin_page(request)


async def _checkin_page(request: web.Request, refused: Refusal | None = None) -> web.Response:
    try:
        found = await _read(request)
    except BookingError as exc:
        return _refused_page(request, refusal(exc))
    lang = i18n.language_of(request)
    response = render(
        request,
        "checkin.html",
        at=found,
        clock=lambda moment: i18n.clock_time(moment, found.zone, lang),
        opens=check_in_opens(found.mine.start) if found.mine else None,
        reason=BOOKING_REFUSALS.get(found.kind, DAY_OVER),
        done=request.query.get("done") == "checked-in",
        refused=refused.message if refused else None,
    )
    if refused is not None:
        response.set_status(refused.status)
    return response


@routes.post("/checkin/{desk}")
@signed_in
async def check_in_at_desk(request: web.Request) -> web.StreamResponse:
    """Do what the page offered (the form's ``offer``) if the desk still offers it; a
    check-in queued offline at the phone's time (``client_time``), a walk-up (which
    books from now) when it arrives, within the same bounds."""
    asked = (await request.post()).get("offer")
    try:
        sent = await pwa.sent_of(request)
        event_time(sent, request.app[PORTS].now(), pwa.oldest(request))  # refused first
        found = await _read(request)
        if found.offer is not Offer.CHECKED_IN:  # else done already: a second tap
            if asked != found.offer or found.offer not in DOABLE:
                return await _checkin_page(request, Refusal(CHANGED, 409))
            await _do(request, found, sent if found.offer is Offer.CHECK_IN else None)
    except (BookingError, SentTimeRefused) as exc:
        return await _checkin_page(request, refusal(exc))
    raise web.HTTPSeeOther(f"/checkin/{found.desk_id}?done=checked-in")


async def _do(request: web.Request, found: AtDesk, sent: datetime | None) -> None:
    """Check in to my booking (at ``sent``, the phone's time of a check-in queued
    offline), or book the free desk from now until ``found.until`` as the API books
    (its batches) and check in to that."""
    ports, person = request.app[PORTS], person_of(request)
    mine, now = found.mine, ports.now()
    if found.offer is Offer.WALK_UP and found.until is not None:
        cmd = BookDesk(
            found.desk_id, person.id, person.agency, person.unit, now, found.until, person.id
        )
        mine, _ = await service.book(ports.booker(), ports.places(), cmd, now)
    if mine is None:
        raise ValueError("a check-in offer without its booking")
    async with ports.pool().acquire() as conn:
        await service.check_in(conn, mine.id, person.id, now, sent=sent, oldest=pwa.oldest(request))


def _refused_page(request: web.Request, refused: Refusal) -> web.Response:
    return render(request, "checkin_refused.html", reason=refused.message, status=refused.status)


@routes.get("/desks/{desk}/qr")
@signed_in
async def qr(request: web.Request) -> web.StreamResponse:
    """The desk's QR code to print and stick on it (facility managers, administrators)."""
    if person_of(request).role not in PRINTERS:
        return _refused_page(request, Refusal(NOT_PRINTER, 403))
    ports, desk_id = request.app[PORTS], request.match_info["desk"]
    try:
        async with ports.pool().acquire() as conn:
            await ports.places().fresh(conn, desk_id)
    except BookingError as exc:
        return _refused_page(request, refusal(exc))
    url = f"{sessions.own_origin(request)}/checkin/{desk_id}"
    return render(request, "qr.html", desk=desk_id, url=url, svg=qr_svg(url))


def qr_svg(url: str) -> Markup:
    """``url`` as a QR code, an inline SVG that scales to its box (no size, a viewBox)."""
    code = segno.make(url, error="m")
    svg = code.svg_inline(scale=1, border=4, omitsize=True, svgclass="qr-code", lineclass=None)
    return Markup(svg.replace("<svg ", '<svg aria-hidden="true" focusable="false" ', 1))
