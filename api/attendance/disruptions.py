"""Outage grace (docs/attendance.md, "System disruption"): the API's own degradation
recorded (its answers' error rate, its heartbeat), the windows touching a unit, a
supervisor's bulk excuse of one for the unit, and an administrator's declaration.

Routes: ``GET /api/v1/attendance/units/{agency}/{unit}/disruptions?month=YYYY-MM``
(the unit's supervisor, an admin), ``POST .../disruptions/{id}/excuse`` (the unit's
supervisor), ``POST /api/v1/attendance/disruptions`` (an admin).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Middleware

from api.attendance.handlers import POLICIES, now
from api.attendance.reports import check_query, may_see_unit, month_days
from api.auth import PRINCIPAL, requires
from api.booking.http import body_of, invalid, require_person, respond
from api.params import digits
from api.problems import Handler, Problem
from api.state import POOL
from ikn_core.attendance.disruption import DisruptionNotFound, NotTheUnitsSupervisor
from ikn_core.domain import Role
from ikn_core.fields import InvalidField
from ikn_core.periodic import periodic
from ikn_service import disruptions as service
from ikn_store.attendance import disruptions as store

RECORDER = web.AppKey("disruption_recorder", service.Recorder)
ERRORS = web.AppKey("disruption_errors", service.ErrorCount)
routes = web.RouteTableDef()


def _real_now() -> datetime:
    """The platform's own time (its outages are real, whatever the attendance clock)."""
    return datetime.now(UTC)


def middleware(errors: service.ErrorCount) -> Middleware:
    """Counts every answer, and the server errors (5xx) among them, for ``api_errors``."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            errors.count(_real_now(), exc.status >= 500)
            raise
        except BaseException:
            errors.count(_real_now(), True)
            raise
        errors.count(_real_now(), response.status >= 500)
        return response

    return count


def _id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not (digits(text) and len(text) <= 18):
        raise invalid(request, "id", "not a disruption id (a whole number)")
    return int(text)


@routes.get("/api/v1/attendance/units/{agency}/{unit}/disruptions")
@requires(Role.SUPERVISOR, Role.ADMIN)
async def unit_disruptions(request: web.Request) -> web.Response:
    """The windows touching the unit in ``?month=YYYY-MM`` (up to today), each with how
    many of the unit's people it marks and whether the unit excused it."""
    check_query(request, {"month"})
    days = month_days(request)
    agency, unit = request.match_info["agency"], request.match_info["unit"]
    may_see_unit(request, agency, unit)
    async with request.app[POOL].acquire() as conn:
        found = await service.of_unit(
            conn, request.app[POLICIES], agency, unit, days, now=now(request.app)
        )
    body = {"agency": agency, "unit": unit, "month": request.query["month"]}
    return respond({**body, "disruptions": [t.as_json() for t in found]})


@routes.post("/api/v1/attendance/units/{agency}/{unit}/disruptions/{id}/excuse")
@requires(Role.SUPERVISOR)
async def excuse(request: web.Request) -> web.Response:
    """Excuse the window for the unit: every lateness and early departure of its people
    it overlaps stops counting (the days recomputed and audited at once)."""
    if request.body_exists:
        await body_of(request, ())
    disruption_id = _id(request)
    agency, unit = request.match_info["agency"], request.match_info["unit"]
    me = require_person(request)
    try:
        async with request.app[POOL].acquire() as conn:
            cmd = service.ExcuseDisruption(disruption_id, me, agency, unit)
            done = await service.excuse(conn, cmd, request.app[POLICIES], now=now(request.app))
    except NotTheUnitsSupervisor as exc:
        raise Problem(403, "forbidden", "You may excuse only for your own unit", str(exc)) from exc
    except DisruptionNotFound as exc:
        raise Problem(404, exc.kind, "No such disruption", str(exc)) from exc
    return respond(
        {
            "disruption": done.window.as_json(),
            "agency": done.agency,
            "unit": done.unit,
            "excused_by": done.excused_by,
            "excused_at": done.excused_at.isoformat(),
            "new": done.new,
            "days_changed": done.days_changed,
        },
        200,
    )


@routes.get("/api/v1/attendance/disruptions")
@requires(Role.ADMIN)
async def all_disruptions(request: web.Request) -> web.Response:
    """Every window of ``?month=YYYY-MM`` (up to today), of any building."""
    check_query(request, {"month"})
    days = month_days(request)
    found = []
    if days:
        async with request.app[POOL].acquire() as conn:
            found = await store.overlapping(conn, *service.local_bounds(days))
    return respond({"month": request.query["month"], "disruptions": [w.as_json() for w in found]})


@routes.post("/api/v1/attendance/disruptions")
@requires(Role.ADMIN)
async def declare(request: web.Request) -> web.Response:
    """Declare an outage the platform could not see (``building``: null for all)."""
    body = await body_of(request, ("building", "start", "end", "detail"))
    by = request[PRINCIPAL].name
    try:
        cmd = service.declaration(body, now(request.app))
        async with request.app[POOL].acquire() as conn:
            window = await service.declare(conn, cmd, by)
    except InvalidField as exc:
        raise invalid(request, exc.name, exc.reason) from None
    return respond(window.as_json(), 201)


def setup(app: web.Application, errors: service.ErrorCount) -> None:
    """The routes, and the heartbeat that writes what the process noticed (after the
    pool's cleanup context); ``errors``: the counter ``middleware`` feeds."""
    recorder = app[RECORDER] = errors.recorder
    app[ERRORS] = errors
    settings = recorder.settings

    async def heartbeat(app: web.Application) -> AsyncIterator[None]:
        async def beat() -> None:
            at = _real_now()
            errors.tick(at)
            await recorder.round(app[POOL], at)

        async with periodic(settings.heartbeat_s, beat, what="disruption heartbeat"):
            yield

    app.cleanup_ctx.append(heartbeat)
    app.add_routes(routes)
