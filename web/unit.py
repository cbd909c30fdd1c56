"""My unit (supervisors only; anyone else gets 403): the unit's month per person with
filters and its CSV, the requests waiting for the supervisor's decision (approve or
reject), and those near a PP 94/2021 discipline threshold."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from urllib.parse import urlencode
from uuid import UUID

from aiohttp import web
from babel.dates import format_date

from ikn_core.attendance.disruption import DisruptionError, DisruptionNotFound
from ikn_core.attendance.requests import (
    NotHappenedYet,
    NotYourUnit,
    OwnRequest,
    RequestDecided,
    RequestError,
    RequestNotFound,
)
from ikn_core.domain import Role
from ikn_core.spreadsheet import csv_text
from ikn_service import attendance as service
from ikn_service import disruptions, reports
from ikn_service.privacy import View, Viewer, note_views
from ikn_store.people import Person, unit_people
from web import i18n
from web.labels import (
    ABSENCE_LEVELS,
    DECISION_ERRORS,
    DECISIONS_DONE,
    DISRUPTION_CAUSES,
    REQUEST_KINDS,
)
from web.pages import person_of, render, signed_in
from web.ports import PORTS
from web.unit_view import COLUMNS, Filters, Unit, read_unit, zone_of

routes = web.RouteTableDef()
_STATUS: Mapping[type[RequestError], int] = {
    OwnRequest: 403,
    NotYourUnit: 403,
    RequestDecided: 409,
    NotHappenedYet: 409,
    RequestNotFound: 404,
}
MONTH_ERROR = i18n.gettext_noop("Month: give a month as YYYY-MM, such as 2026-12.")
EXCUSE_ERROR = i18n.gettext_noop("No such disruption touches your unit.")


class BadMonth(Exception):
    """The ``month`` parameter is not ``YYYY-MM``."""


def _supervisor(request: web.Request) -> Person:
    me = person_of(request)
    if me.role is not Role.SUPERVISOR:
        raise web.HTTPForbidden(reason="Not a page of your role")
    return me


def _filters(params: Mapping[str, str], today: date) -> Filters:
    """The table's filters from GET parameters (or a form's fields); month: this one."""
    text = params.get("month", "")
    first = reports.month_start(text) if text else today.replace(day=1)
    if first is None:
        raise BadMonth(text)
    return Filters(first, params.get("q", "").strip()[:100], params.get("flagged") == "1")


async def _today(request: web.Request, me: Person) -> date:
    ports = request.app[PORTS]
    async with ports.pool().acquire() as conn:
        zone = await zone_of(conn, me)
    return ports.now().astimezone(zone).date()


async def _read(request: web.Request, me: Person, filters: Filters, what: str) -> Unit:
    """The unit's month as the filters keep it; the people shown noted in the access
    log as ``what`` (``unit_month``, ``unit_csv``)."""
    ports = request.app[PORTS]
    async with ports.pool().acquire() as conn:
        unit = await read_unit(conn, ports.policies(), me, filters, ports.now())
        view = View(Viewer(me.id, me.name, me.role.value), what, f"{filters.month:%Y-%m}", "web")
        shown = [r.person.id for r in unit.rows]
        if what == "unit_month":  # the page lists those near a discipline level too
            shown += [w.person.id for w in unit.watched]
        await note_views(conn, view, shown, ports.now())
    return unit


async def _page(
    request: web.Request,
    me: Person,
    params: Mapping[str, str],
    *,
    error: str = "",
    status: int = 200,
) -> web.Response:
    """The page with ``params``' filters (this month's when they are wrong: 400)."""
    today = await _today(request, me)
    try:
        filters = _filters(params, today)
    except BadMonth:
        filters, error, status = Filters(today.replace(day=1)), MONTH_ERROR, 400
    lang = i18n.language_of(request)
    return render(
        request,
        "unit.html",
        unit=await _read(request, me, filters, "unit_month"),
        filters=filters,
        month_error=error == MONTH_ERROR,
        month_value=params.get("month", f"{filters.month:%Y-%m}"),
        month_text=format_date(filters.month, "MMMM yyyy", locale=i18n.BABEL_LOCALES[lang]),
        day=lambda d: format_date(d, "medium", locale=i18n.BABEL_LOCALES[lang]),
        clock=lambda moment, zone: i18n.clock_time(moment, zone, lang),
        csv_href="/unit.csv?" + urlencode(filters.query()),
        tpp_href="/unit/tpp.csv?" + urlencode({"month": f"{filters.month:%Y-%m}"}),
        causes=DISRUPTION_CAUSES,
        error=error,
        done=DECISIONS_DONE.get(params.get("done", ""), ""),
        columns=COLUMNS,
        kinds=REQUEST_KINDS,
        levels=ABSENCE_LEVELS,
        status=status,
    )


@routes.get("/unit")
@signed_in
async def unit_page(request: web.Request) -> web.StreamResponse:
    return await _page(request, _supervisor(request), request.query)


@routes.get("/unit.csv")
@signed_in
async def unit_csv(request: web.Request) -> web.StreamResponse:
    """The month's table as CSV: one row per person the filters keep."""
    me = _supervisor(request)
    try:
        filters = _filters(request.query, await _today(request, me))
    except BadMonth:
        raise web.HTTPBadRequest(reason="month: required as YYYY-MM") from None
    unit = await _read(request, me, filters, "unit_csv")
    rows = [[r.person.id, r.person.name, *r.cells()] for r in unit.rows]
    name = f"unit-{me.agency}-{me.unit}-{filters.month:%Y-%m}.csv"
    return _download(csv_text(("person", "name", *COLUMNS), rows), name)


def _download(text: str, name: str) -> web.Response:
    """``text`` as a CSV file named ``name``."""
    return web.Response(
        text=text,
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@routes.post("/unit/requests/{id}")
@signed_in
async def decide(request: web.Request) -> web.StreamResponse:
    """Approve or reject a request (``decision``); back to the page with the filters."""
    me = _supervisor(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    if form.get("decision") not in ("approve", "reject"):
        raise web.HTTPBadRequest(reason="decision: approve or reject")
    ports = request.app[PORTS]
    try:
        cmd = service.DecideRequest(_request_id(request), me, form["decision"] == "approve")
        async with ports.pool().acquire() as conn:
            await service.decide(conn, cmd, ports.policies(), now=ports.now())
    except RequestError as exc:
        error = DECISION_ERRORS.get(type(exc), DECISION_ERRORS[RequestError])
        return await _page(request, me, form, error=error, status=_STATUS.get(type(exc), 409))
    back = {k: form[k] for k in ("month", "q", "flagged") if form.get(k)}
    done = "approved" if cmd.approve else "rejected"
    raise web.HTTPSeeOther("/unit?" + urlencode({**back, "done": done}))


@routes.get("/unit/tpp.csv")
@signed_in
async def unit_tpp_csv(request: web.Request) -> web.StreamResponse:
    """The unit's e-Kinerja / TPP month as the API's CSV export (noted as ``tpp``)."""
    me = _supervisor(request)
    ports = request.app[PORTS]
    first = reports.month_start(request.query.get("month", ""))
    if first is None or not reports.tpp_month_covered(ports.policies(), first):
        raise web.HTTPBadRequest(reason="month: required as YYYY-MM, after the first policy")
    today = await _today(request, me)
    async with ports.pool().acquire() as conn:
        people = await unit_people(conn, me.agency, me.unit)
        rows = await reports.unit_tpp(
            conn, ports.policies(), people, first, now=ports.now(), today=today
        )
        view = View(Viewer(me.id, me.name, me.role.value), "tpp", f"{first:%Y-%m}", "web")
        await note_views(conn, view, [p.id for p in people], ports.now())
    return _download(reports.tpp_csv(rows), f"tpp-{me.agency}-{me.unit}-{first:%Y-%m}.csv")


@routes.post("/unit/disruptions/{id}/excuse")
@signed_in
async def excuse_disruption(request: web.Request) -> web.StreamResponse:
    """Excuse a disruption window for the supervisor's unit; back to the page."""
    me = _supervisor(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    ports = request.app[PORTS]
    text = request.match_info["id"]
    try:
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise DisruptionNotFound(text)
        cmd = disruptions.ExcuseDisruption(int(text), me, me.agency, me.unit)
        async with ports.pool().acquire() as conn:
            await disruptions.excuse(conn, cmd, ports.policies(), now=ports.now())
    except DisruptionError:
        return await _page(request, me, form, error=EXCUSE_ERROR, status=404)
    back = {k: form[k] for k in ("month", "q", "flagged") if form.get(k)}
    raise web.HTTPSeeOther("/unit?" + urlencode({**back, "done": "excused"}))


def _request_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError:
        raise RequestNotFound(request.match_info["id"]) from None
