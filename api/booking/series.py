"""Recurring bookings: ``POST /api/v1/bookings/series`` books a daily or weekly
series; ``DELETE /api/v1/bookings/{id}/following`` cancels an occurrence and the
later ones of its series (``DELETE /api/v1/bookings/{id}`` cancels one).

Not atomic, by choice: each occurrence is booked on its own, under the same rules
as a single booking, and the answer lists the occurrences booked and those refused
with the problem ``type`` of each (a desk taken on one Tuesday should not cost the
other nine). Nothing booked at all is a 409 ``series-not-booked``. With an
``Idempotency-Key`` K, occurrence n is booked under the key ``K#n``: a retry of the
series replays every occurrence and books nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from api.auth import PRINCIPAL, requires
from api.booking.http import (
    ALL_ROLES,
    MANAGERS,
    PLACES,
    body_of,
    booking_json,
    desk_of,
    for_whom,
    from_error,
    idempotency_key,
    invalid,
    parse_day,
    parse_time,
    path_booking_id,
    problem,
    require_person,
    respond,
    visible,
)
from api.problems import TYPE_BASE
from api.state import POOL
from ikn_core.booking import MAX_OCCURRENCES, BookDesk, BookingError, Recurrence, Repeat
from ikn_service import booking as service
from ikn_store.booking import bookings as store
from ikn_store.people import Person

routes = web.RouteTableDef()
FIELDS = ("desk", "start", "end", "person", "repeat", "count", "skip")


def _recurrence(request: web.Request, body: dict[str, Any]) -> Recurrence:
    start = parse_time(request, "start", body.get("start"))
    end = parse_time(request, "end", body.get("end"))
    repeat = body.get("repeat")
    if repeat not in tuple(Repeat):
        raise invalid(request, "repeat", "required: daily or weekly")
    count = body.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_OCCURRENCES:
        raise invalid(request, "count", f"required: 1 to {MAX_OCCURRENCES} occurrences")
    skip = body.get("skip", [])
    if not isinstance(skip, list) or not all(isinstance(d, str) for d in skip):
        raise invalid(request, "skip", "a list of local dates (YYYY-MM-DD)")
    skipped = frozenset(parse_day(request, "skip", d) for d in skip)
    return Recurrence(start, end, Repeat(repeat), count, skipped)


def _refusal(request: web.Request, start: datetime, end: datetime, exc: BookingError) -> Any:
    """An occurrence refused: its times and the problem a single booking would get."""
    refused = from_error(request, exc)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "type": TYPE_BASE + refused.kind,
        "title": refused.title,
        "status": refused.status,
        "detail": refused.detail,
    }


async def _book_all(
    request: web.Request, desk: str, whom: Person, me: Person, recurrence: Recurrence
) -> tuple[list[store.Booking], list[Any]]:
    first = BookDesk(
        desk,
        whom.id,
        whom.agency,
        whom.unit,
        recurrence.start,
        recurrence.end,
        me.id,
        idempotency_key(request),
        manager=request[PRINCIPAL].role in MANAGERS,
    )
    async with request.app[POOL].acquire() as conn:
        done = await service.book_series(
            conn, request.app[PLACES], first, recurrence, datetime.now(UTC)
        )
    return done.booked, [_refusal(request, s, e, exc) for s, e, exc in done.refused]


@routes.post("/api/v1/bookings/series")
@requires(*ALL_ROLES)
async def create_series(request: web.Request) -> web.Response:
    """Book every occurrence that its rules allow; report the others."""
    body = await body_of(request, FIELDS)
    desk = desk_of(request, body)
    recurrence = _recurrence(request, body)
    key = idempotency_key(request)
    if key is not None and len(key) > 250:
        raise invalid(request, "Idempotency-Key", "at most 250 characters for a series")
    me = require_person(request)
    whom = await for_whom(request, me, body.get("person"))
    try:
        booked, refused = await _book_all(request, desk, whom, me, recurrence)
    except BookingError as exc:  # the desk itself is unknown
        raise from_error(request, exc) from exc
    if not booked:
        detail = "no occurrence could be booked"
        raise problem(request, "series-not-booked", detail, 409, refused=refused)
    series: UUID | None = booked[0].series_id
    return respond(
        {
            "series": str(series),
            "booked": [booking_json(b) for b in booked],
            "refused": refused,
        },
        201,
    )


@routes.delete("/api/v1/bookings/{id}/following")
@requires(*ALL_ROLES)
async def cancel_following(request: web.Request) -> web.Response:
    """Cancel this occurrence and the later ones of its series."""
    found = await visible(request, path_booking_id(request))
    manager = request[PRINCIPAL].role in MANAGERS
    cmd = service.CancelBooking(found, manager, following=True)
    try:
        async with request.app[POOL].acquire() as conn:
            cancelled = await service.cancel(conn, request.app[PLACES], cmd, datetime.now(UTC))
    except BookingError as exc:
        raise from_error(request, exc) from exc
    series = str(found.series_id) if found.series_id else None
    return respond({"series": series, "cancelled": [booking_json(b) for b in cancelled]})
