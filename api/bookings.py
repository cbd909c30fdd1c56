"""``/api/v1/bookings``: book a desk, list mine, cancel, check in.

Every broken rule is answered as ``application/problem+json`` with a stable
``type`` (``.../problems/desk-taken``) and a title in English or Indonesian,
chosen by ``Accept-Language``. Times are ISO 8601 with an offset; a naive time
is refused with a problem naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from api.auth import PRINCIPAL, requires
from api.problems import Problem, invalid_parameter
from api.state import POOL
from ikn_core.booking import BookingError, BookingNotFound, RuleBroken, check_in_window
from ikn_core.booking import CheckInSignal as Signal
from ikn_core.domain import Role
from ikn_store import bookings as store
from ikn_store.people import Person, get_person, token_person

ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
PERSON_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
ALL_ROLES = tuple(Role)
MANAGERS = frozenset({Role.FACILITY_MANAGER, Role.ADMIN})

# Problem titles: (English, Indonesian), by the problem's stable type.
TITLES: dict[str, tuple[str, str]] = {
    "desk-taken": ("The desk is already booked for this time", "Meja sudah dipesan pada waktu ini"),
    "person-already-booked": (
        "You already have a booking at this time",
        "Anda sudah memiliki pemesanan pada waktu ini",
    ),
    "outside-allowed-hours": (
        "Outside the hours when desks can be booked",
        "Di luar jam pemesanan meja",
    ),
    "too-far-ahead": ("Too far ahead to book", "Terlalu jauh ke depan untuk dipesan"),
    "in-the-past": ("The booking starts in the past", "Waktu mulai pemesanan sudah lewat"),
    "too-short": ("The booking is too short", "Durasi pemesanan terlalu singkat"),
    "too-long": ("The booking is too long", "Durasi pemesanan terlalu lama"),
    "end-before-start": ("The end is not after the start", "Waktu selesai harus setelah mulai"),
    "idempotency-key-reused": (
        "The Idempotency-Key was used for a different booking",
        "Idempotency-Key sudah dipakai untuk pemesanan lain",
    ),
    "unknown-desk": ("No such desk", "Meja tidak ditemukan"),
    "unknown-person": ("No such person", "Orang tidak ditemukan"),
    "booking-not-found": ("No such booking", "Pemesanan tidak ditemukan"),
    "booking-not-active": (
        "The booking was cancelled or released",
        "Pemesanan sudah dibatalkan atau dilepas",
    ),
    "outside-check-in-window": (
        "Check-in is not open for this booking now",
        "Check-in untuk pemesanan ini belum atau tidak lagi dibuka",
    ),
    "not-a-person": (
        "This token does not belong to a person",
        "Token ini tidak terhubung dengan seorang pegawai",
    ),
    "not-your-delegation": (
        "You may not book for this person",
        "Anda tidak boleh memesan untuk orang ini",
    ),
    "booking-contended": (
        "Too many people are booking this desk right now; try again",
        "Terlalu banyak pemesanan serentak untuk meja ini; coba lagi",
    ),
    "unknown-place": ("No such place", "Tempat tidak ditemukan"),
    "forbidden": ("Your role may not do this", "Peran Anda tidak mengizinkan tindakan ini"),
    "invalid-parameter": ("A request parameter is invalid", "Parameter permintaan tidak valid"),
}
STATUS = {
    "desk-taken": 409,
    "person-already-booked": 409,
    "idempotency-key-reused": 422,
    "unknown-desk": 404,
    "unknown-person": 404,
    "booking-not-found": 404,
    "booking-not-active": 409,
    "outside-check-in-window": 409,
    "booking-contended": 503,
}

routes = web.RouteTableDef()


def language(request: web.Request) -> str:
    """'id' or 'en', whichever Accept-Language prefers (English when it names neither)."""
    best, best_q = "en", 0.0
    for part in request.headers.get("Accept-Language", "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("id", "en"):
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q > best_q:
            best, best_q = primary, q
    return best


def problem(request: web.Request, kind: str, detail: str, status: int, **extra: Any) -> Problem:
    english, indonesian = TITLES.get(kind, (kind, kind))
    title = indonesian if language(request) == "id" else english
    return Problem(status, kind, title, detail, **extra)


def invalid(request: web.Request, name: str, reason: str) -> Problem:
    base = invalid_parameter(name, reason)
    return problem(request, "invalid-parameter", base.detail, 400, **base.extra)


def from_error(request: web.Request, error: BookingError) -> Problem:
    if isinstance(error, RuleBroken):
        return problem(
            request,
            error.kind,
            error.detail,
            422,
            invalid_params=[{"name": error.field, "reason": error.detail}],
        )
    return problem(request, error.kind, error.detail, STATUS.get(error.kind, 409))


def parse_time(request: web.Request, name: str, value: object) -> datetime:
    if not isinstance(value, str):
        raise invalid(request, name, "required: an ISO 8601 date-time with an offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(request, name, "not an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise invalid(request, name, "needs a UTC offset (Z or +08:00); naive times are refused")
    return parsed


def booking_json(b: store.Booking) -> dict[str, Any]:
    tz = ZoneInfo(b.tz)
    return {
        "id": str(b.id),
        "desk": b.desk_id,
        "person": b.person_id,
        "start": b.start.astimezone(tz).isoformat(),
        "end": b.end.astimezone(tz).isoformat(),
        "time_zone": b.tz,
        "status": b.status,
        "checked_in_at": b.checked_in_at.astimezone(tz).isoformat() if b.checked_in_at else None,
        "check_in_signal": b.check_in_signal,
        "created_by": b.created_by,
    }


def respond(body: object, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _token(request: web.Request) -> str:
    return request.headers.get("Authorization", "").partition(" ")[2].strip()


async def caller(request: web.Request) -> Person | None:
    async with request.app[POOL].acquire() as conn:
        return await token_person(conn, _token(request))


async def require_person(request: web.Request) -> Person:
    person = await caller(request)
    if person is None:
        raise problem(request, "not-a-person", "link the token to a person to book", 403)
    return person


def _booking_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError:
        raise invalid(request, "id", "not a booking id (a UUID)") from None


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise invalid(request, "body", "a JSON object is required") from None
    if not isinstance(body, dict):
        raise invalid(request, "body", "a JSON object is required")
    unknown = sorted(set(body) - {"desk", "start", "end", "person"})
    if unknown:
        raise invalid(request, unknown[0], "unknown field; use desk, start, end, person")
    return body


async def _for_whom(request: web.Request, me: Person, person_id: object) -> str:
    if person_id is None or person_id == me.id:
        return me.id
    if not isinstance(person_id, str) or not PERSON_ID.fullmatch(person_id):
        raise invalid(request, "person", "must be a person id")
    role = request[PRINCIPAL].role
    if role in MANAGERS:
        return person_id
    if role is Role.DELEGATE:
        async with request.app[POOL].acquire() as conn:
            other = await get_person(conn, person_id)
        if other is not None and (other.agency, other.unit) == (me.agency, me.unit):
            return person_id
    raise problem(
        request,
        "not-your-delegation",
        "a delegate books for people of their own unit; facility managers for anyone",
        403,
    )


@routes.post("/api/v1/bookings")
@requires(*ALL_ROLES)
async def create(request: web.Request) -> web.Response:
    """Book a desk for [start, end). The same Idempotency-Key never books twice."""
    body = await _body(request)
    desk = body.get("desk")
    if not isinstance(desk, str) or not ID.fullmatch(desk):
        raise invalid(request, "desk", "required: 1-64 letters, digits, '-' or '_'")
    start = parse_time(request, "start", body.get("start"))
    end = parse_time(request, "end", body.get("end"))
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.fullmatch(key):
        raise invalid(request, "Idempotency-Key", "1-255 visible ASCII characters")
    me = await require_person(request)
    person_id = await _for_whom(request, me, body.get("person"))
    try:
        async with request.app[POOL].acquire() as conn:
            place = await store.desk_place(conn, desk)
            place.rules.check(start, end, datetime.now(UTC), ZoneInfo(place.tz))
            booking, created = await store.book(
                conn,
                desk_id=desk,
                person_id=person_id,
                start=start,
                end=end,
                created_by=me.id,
                idempotency_key=key,
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
    """My bookings that have not ended; facility managers may name ?person=."""
    unknown = sorted(set(request.query) - {"person"})
    if unknown:
        raise invalid(request, unknown[0], "unknown parameter; use person")
    asked = request.query.get("person")
    me = await caller(request)
    if asked is not None and (me is None or asked != me.id):
        if request[PRINCIPAL].role not in MANAGERS:
            raise problem(request, "forbidden", "only facility managers list others' bookings", 403)
        if not PERSON_ID.fullmatch(asked):
            raise invalid(request, "person", "must be a person id")
        whom: str | None = asked
    else:
        whom = me.id if me else None
    found: list[store.Booking] = []
    if whom is not None:
        async with request.app[POOL].acquire() as conn:
            found = await store.list_bookings(conn, whom, since=datetime.now(UTC))
    return respond({"person": whom, "bookings": [booking_json(b) for b in found]})


async def _visible(request: web.Request, booking_id: UUID, me: Person | None) -> store.Booking:
    """The booking, when the caller may act on it; others' bookings look absent."""
    try:
        async with request.app[POOL].acquire() as conn:
            booking = await store.get_booking(conn, booking_id)
    except BookingError as exc:
        raise from_error(request, exc) from exc
    mine_ = me is not None and me.id in (booking.person_id, booking.created_by)
    if not mine_ and request[PRINCIPAL].role not in MANAGERS:
        raise from_error(request, BookingNotFound(f"no booking {booking_id}"))
    return booking


@routes.delete("/api/v1/bookings/{id}")
@requires(*ALL_ROLES)
async def cancel(request: web.Request) -> web.Response:
    """Cancel my booking (or one I made for someone); facility managers cancel any."""
    booking_id = _booking_id(request)
    await _visible(request, booking_id, await caller(request))
    try:
        async with request.app[POOL].acquire() as conn:
            booking = await store.cancel(conn, booking_id)
    except BookingError as exc:
        raise from_error(request, exc) from exc
    return respond(booking_json(booking))


@routes.post("/api/v1/bookings/{id}/check-in")
@requires(*ALL_ROLES)
async def check_in(request: web.Request) -> web.Response:
    """Check in to my own booking from the app (or the desk's QR code)."""
    booking_id = _booking_id(request)
    me = await require_person(request)
    try:
        async with request.app[POOL].acquire() as conn:
            booking = await store.get_booking(conn, booking_id)
            if booking.person_id != me.id:
                raise BookingNotFound(f"no booking {booking_id}")
            now = datetime.now(UTC)
            check_in_window(booking.start, booking.end, now)
            booking = await store.check_in(conn, booking_id, Signal.APP, now)
    except BookingError as exc:
        raise from_error(request, exc) from exc
    return respond(booking_json(booking))


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _ics_fold(line: str) -> str:
    """RFC 5545 §3.1: lines of at most 75 octets, continued after CRLF and a space."""
    data = line.encode()
    if len(data) <= 75:
        return line
    parts: list[str] = []
    current = b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not parts else 74):
            parts.append(current.decode())
            current = b""
        current += encoded
    parts.append(current.decode())
    return "\r\n ".join(parts)


def _ics_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar(person_id: str, found: list[store.Booking], now: datetime) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//IKN Workspace//Desk bookings//EN",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{_ics_text('Desk bookings of ' + person_id)}",
    ]
    for b in found:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{b.id}@ikn-workspace",
            f"DTSTAMP:{_ics_time(now)}",
            f"DTSTART:{_ics_time(b.start)}",
            f"DTEND:{_ics_time(b.end)}",
            f"SUMMARY:{_ics_text('Desk ' + b.desk_id)}",
            f"LOCATION:{_ics_text(b.desk_id)}",
            "STATUS:CONFIRMED",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(_ics_fold(line) + "\r\n" for line in lines)


@routes.get("/api/v1/bookings.ics")
@requires(*ALL_ROLES)
async def ical(request: web.Request) -> web.Response:
    """My bookings that have not ended, as an iCalendar feed (times in UTC)."""
    if request.query:
        raise invalid(request, sorted(request.query)[0], "this feed takes no parameters")
    me = await caller(request)
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
