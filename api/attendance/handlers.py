"""``/api/v1/attendance``: remote check-in/check-out, leave and correction requests,
and the job that recomputes dirty days (reports: ``api/attendance/reports.py``).

An ``office`` check-in by app is accepted only inside a building's geofence (the
policy's radius, with a fix at least that precise); coordinates are stored only as
far as the policy's location retention says, and purged by the retention job
(api/privacy.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from aiohttp import web

from api.auth import requires
from api.booking.bookings import require_person
from api.booking.http import ALL_ROLES, body_of, invalid, respond
from api.problems import Problem
from api.state import POOL
from ikn_core.attendance import Coordinates, PlaceType, Policies, SignalError
from ikn_core.attendance.errors import OutsideGeofence
from ikn_core.attendance.requests import (
    NotHappenedYet,
    NotYourUnit,
    RequestError,
    UnknownEvidence,
)
from ikn_core.domain import IKN_ZONE, Role
from ikn_core.fields import InvalidField
from ikn_core.periodic import periodic
from ikn_service import attendance as service
from ikn_store.attendance.days import counted_spans

log = logging.getLogger(__name__)

POLICIES = web.AppKey("attendance_policies", Policies)
# The clock of check-ins and of "today" in reports (tests set a fixed one).
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("attendance_clock")
SUPERVISORS = (Role.SUPERVISOR,)
_STATUS = {"request-not-found": 404, "request-decided": 409, "own-request": 403}
routes = web.RouteTableDef()


def now(app: web.Application) -> datetime:
    return app[CLOCK]()


def today(app: web.Application) -> date:
    """Today in IKN (``Asia/Makassar``), by the app's clock."""
    return now(app).astimezone(IKN_ZONE).date()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _number(request: web.Request, body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(request, name, "must be a number")
    return float(value)


def _coordinates(request: web.Request, body: dict[str, Any]) -> Coordinates | None:
    lat, lon = _number(request, body, "lat"), _number(request, body, "lon")
    accuracy = _number(request, body, "accuracy_m")
    if lat is None and lon is None:
        if accuracy is not None:
            raise invalid(request, "accuracy_m", "only with lat and lon")
        return None
    if lat is None or lon is None:
        raise invalid(request, "lon" if lon is None else "lat", "lat and lon go together")
    try:
        return Coordinates(lat, lon, accuracy)
    except SignalError as exc:
        raise invalid(request, exc.key, exc.detail) from None


async def zones_of(request: web.Request, person_ids: Iterable[str]) -> dict[str, ZoneInfo]:
    """The zone of each person's days (their home building's), for their answers' times."""
    async with request.app[POOL].acquire() as conn:
        spans = await counted_spans(conn, sorted(set(person_ids)))
    return {person: zone for person, (_, zone) in spans.items()}


async def zone_of(request: web.Request, person_id: str) -> ZoneInfo:
    return (await zones_of(request, [person_id]))[person_id]


async def _remote(request: web.Request, kind: str) -> web.Response:
    body = await body_of(request, ("place_type", "lat", "lon", "accuracy_m"))
    place = body.get("place_type")
    if place not in tuple(PlaceType):
        raise invalid(request, "place_type", "required: office, other_office, home or field")
    point = _coordinates(request, body)
    me = require_person(request)
    if place == PlaceType.OFFICE and point is None:
        raise invalid(request, "lat", "an office check-in needs lat and lon")
    policy = request.app[POLICIES].in_force(today(request.app))
    cmd = service.Clock(me.id, kind, now(request.app), PlaceType(place), point, f"api:{uuid4()}")
    try:
        async with request.app[POOL].acquire() as conn:
            stored = await service.clock(conn, cmd, policy)
    except OutsideGeofence as exc:
        raise Problem(
            422,
            "outside-geofence",
            "Not inside any building's geofence",
            exc.detail,
            invalid_params=[{"name": "lat", "reason": "not within any building's geofence"}],
        ) from exc
    zone = await zone_of(request, me.id)
    answer: dict[str, Any] = {
        "signal": f"s{stored.id}",
        "kind": kind,
        "at": stored.at.astimezone(zone).isoformat(),
        "place_type": place,
        "building": stored.building_id,
        "also_within": list(stored.also_within),
        "coordinates_stored": stored.coordinates_stored,
    }
    if kind == "app_check_in" and place in (PlaceType.HOME, PlaceType.FIELD):
        async with request.app[POOL].acquire() as conn:
            day = stored.at.astimezone(zone).date()
            cap = await service.remote_cap(conn, request.app[POLICIES], me.id, day, zone)
        answer["remote_week"] = {"wfa_day": cap.rank, "cap": cap.cap, "over_cap": cap.over}
    # 200: the same check-in within a minute, already kept
    return respond(answer, 201 if stored.new else 200)


@routes.post("/api/v1/attendance/check-in")
@requires(*ALL_ROLES)
async def check_in(request: web.Request) -> web.Response:
    """Clock in from the app: declared place type, optional lat/lon/accuracy_m."""
    return await _remote(request, "app_check_in")


@routes.post("/api/v1/attendance/check-out")
@requires(*ALL_ROLES)
async def check_out(request: web.Request) -> web.Response:
    """Clock out from the app."""
    return await _remote(request, "app_check_out")


@routes.post("/api/v1/attendance/requests")
@requires(*ALL_ROLES)
async def create_request(request: web.Request) -> web.Response:
    """Ask for leave (cuti), official travel (dinas_luar) or a correction of one day."""
    fields = ("kind", "from", "to", "reason", "clock_in", "clock_out", "evidence")
    body = await body_of(request, fields)
    me = require_person(request)
    zone = await zone_of(request, me.id)
    try:
        new = service.new_request(me.id, body, now(request.app), zone)
    except InvalidField as exc:
        raise invalid(request, exc.name, exc.reason) from None
    try:
        async with request.app[POOL].acquire() as conn:
            created = await service.file_request(conn, new, me.id)
    except UnknownEvidence as exc:
        raise invalid(request, "evidence", str(exc)) from exc
    location = f"/api/v1/attendance/requests/{created.id}"
    return respond(created.as_json(zone), 201, Location=location)


async def _decide(request: web.Request, approve: bool) -> web.Response:
    try:
        request_id = UUID(request.match_info["id"])
    except ValueError:
        raise invalid(request, "id", "not a request id (a UUID)") from None
    me = require_person(request)
    try:
        async with request.app[POOL].acquire() as conn:
            cmd = service.DecideRequest(request_id, me, approve)
            decided = await service.decide(conn, cmd, request.app[POLICIES], now=now(request.app))
    except NotYourUnit as exc:
        # another unit's requests look absent, as if they did not exist
        raise Problem(404, "request-not-found", "No such request", str(exc)) from exc
    except NotHappenedYet as exc:
        invalid_params = [{"name": "from", "reason": str(exc)}]
        raise Problem(
            422, exc.kind, "Not happened yet", str(exc), invalid_params=invalid_params
        ) from exc
    except RequestError as exc:
        raise Problem(_STATUS.get(exc.kind, 409), exc.kind, str(exc)) from exc
    zone = await zone_of(request, decided.person_id)
    return respond(decided.as_json(zone))


@routes.post("/api/v1/attendance/requests/{id}/approve")
@requires(*SUPERVISORS)
async def approve(request: web.Request) -> web.Response:
    """Approve: the days are recomputed at once; never by the requester."""
    return await _decide(request, True)


@routes.post("/api/v1/attendance/requests/{id}/reject")
@requires(*SUPERVISORS)
async def reject(request: web.Request) -> web.Response:
    return await _decide(request, False)


async def _recompute_round(app: web.Application) -> int:
    async with app[POOL].acquire() as conn:
        return await service.recompute_round(conn, app[POLICIES])


async def _recompute_and_log(app: web.Application) -> None:
    done = await _recompute_round(app)
    if done:
        log.info("recomputed %d attendance day(s)", done)


def setup(
    app: web.Application, policy_path: str, interval_s: float, kept_days: int | None = None
) -> None:
    """Routes, the policies (reporting the last ``kept_days``), and the recompute job
    (after the pool's cleanup context)."""
    app[POLICIES] = service.load_policies(policy_path, kept_days)
    app[CLOCK] = _utc_now

    async def recomputer(app: web.Application) -> AsyncIterator[None]:
        async with periodic(
            interval_s, lambda: _recompute_and_log(app), what="attendance recompute"
        ):
            yield

    app.cleanup_ctx.append(recomputer)
    app.add_routes(routes)
