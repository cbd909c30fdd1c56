"""What every booking route shares: problem+json in English or Indonesian (by
``Accept-Language``) with a stable ``type`` per broken rule, time parsing, and the
JSON of a booking.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from api import params
from api.auth import PRINCIPAL
from api.problems import Problem, invalid_parameter, json_object_body
from api.state import POOL
from ikn_core.booking import BookingError, RuleBroken
from ikn_core.contract.identifiers import ID, PERSON_ID
from ikn_core.domain import Role
from ikn_service import booking as service
from ikn_store.booking import bookings as store
from ikn_store.booking.places import PlaceCache
from ikn_store.people import Person

KEY = re.compile(r"[\x21-\x7e]{1,255}")
ALL_ROLES = tuple(Role)
MANAGERS = frozenset({Role.FACILITY_MANAGER, Role.ADMIN})

PLACES = web.AppKey("booking_places", PlaceCache)

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
    "not-checked-in": (
        "The booking is not checked in; cancel it instead",
        "Pemesanan belum check-in; batalkan saja",
    ),
    "zone-restricted": (
        "This zone is reserved for other agencies or units",
        "Zona ini khusus untuk instansi atau unit lain",
    ),
    "desk-disabled": (
        "This desk is out of use and cannot be booked",
        "Meja ini tidak digunakan dan tidak dapat dipesan",
    ),
    "desk-assigned": (
        "This desk is assigned permanently to someone else",
        "Meja ini ditetapkan secara tetap untuk orang lain",
    ),
    "cancel-cut-off": (
        "Too late to cancel this booking",
        "Sudah terlambat untuk membatalkan pemesanan ini",
    ),
    "series-not-booked": (
        "No occurrence of the series could be booked",
        "Tidak ada jadwal dalam rangkaian ini yang dapat dipesan",
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
    "unsupported-media-type": (
        "The body must be sent as application/json",
        "Isi permintaan harus dikirim sebagai application/json",
    ),
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
    "not-checked-in": 409,
    "zone-restricted": 403,
    "desk-disabled": 409,
    "desk-assigned": 403,
    "cancel-cut-off": 409,
    "not-your-delegation": 403,
    "booking-contended": 503,
}


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


def localised(request: web.Request, exc: Problem) -> Problem:
    """The problem with its title in the caller's language."""
    return problem(request, exc.kind, exc.detail, exc.status, **exc.extra)


def parse_time(request: web.Request, name: str, value: object) -> datetime:
    try:
        return params.parse_time(name, value)
    except Problem as exc:
        raise localised(request, exc) from None


def parse_day(request: web.Request, name: str, value: object) -> date:
    try:
        return params.parse_day(name, value)
    except Problem as exc:
        raise localised(request, exc) from None


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
        "series": str(b.series_id) if b.series_id else None,
    }


def respond(body: object, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def caller(request: web.Request) -> Person | None:
    return request[PRINCIPAL].person


def require_person(request: web.Request) -> Person:
    person = caller(request)
    if person is None:
        raise problem(request, "not-a-person", "link the token to a person to book", 403)
    return person


def path_booking_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError:
        raise invalid(request, "id", "not a booking id (a UUID)") from None


async def body_of(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The body (``api.problems.json_object_body``) with no field but those ``allowed``."""
    try:
        body = await json_object_body(request)
    except Problem as exc:
        raise localised(request, exc) from None
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        use = f"use {', '.join(allowed)}" if allowed else "this route takes no field"
        raise invalid(request, unknown[0], f"unknown field; {use}")
    return body


async def for_whom(request: web.Request, me: Person, person_id: object) -> Person:
    """Me, or the person named (``ikn_service.booking.for_whom``)."""
    if person_id is None or person_id == me.id:
        return me
    if not isinstance(person_id, str) or not PERSON_ID.fullmatch(person_id):
        raise invalid(request, "person", "must be a person id")
    role = request[PRINCIPAL].role
    try:
        async with request.app[POOL].acquire() as conn:
            return await service.for_whom(
                conn, me, person_id, manager=role in MANAGERS, delegate=role is Role.DELEGATE
            )
    except BookingError as exc:
        raise from_error(request, exc) from exc


def desk_of(request: web.Request, body: dict[str, Any]) -> str:
    desk = body.get("desk")
    if not isinstance(desk, str) or not ID.fullmatch(desk):
        raise invalid(request, "desk", "required: 1-64 letters, digits, '-' or '_'")
    return desk


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not KEY.fullmatch(key):
        raise invalid(request, "Idempotency-Key", "1-255 visible ASCII characters")
    return key


async def visible(request: web.Request, booking_id: UUID) -> store.Booking:
    """The booking, when the caller may act on it; others' bookings look absent."""
    me = caller(request)
    manager = request[PRINCIPAL].role in MANAGERS
    try:
        async with request.app[POOL].acquire() as conn:
            return await service.visible(conn, booking_id, me.id if me else None, manager)
    except BookingError as exc:
        raise from_error(request, exc) from exc
