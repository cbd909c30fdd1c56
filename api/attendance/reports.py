"""Attendance reports: my month, a unit's month (JSON or CSV), the year's absences.

A person sees only their own records; a supervisor those of their agency and unit;
an admin any unit. Days up to today (Asia/Makassar) are listed: a day with no
signal at all is computed on the spot (absent, excused or a non-working day).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from api.attendance.handlers import POLICIES, now, today, zone_of, zones_of
from api.auth import PRINCIPAL, requires
from api.booking.bookings import caller, require_person
from api.booking.http import ALL_ROLES, invalid, parse_day, respond
from api.params import digits
from api.privacy import views
from api.problems import Problem
from api.state import POOL
from ikn_core.attendance import DailyRecord, yearly_summary
from ikn_core.domain import Role
from ikn_core.spreadsheet import csv_text
from ikn_service import reports
from ikn_store.attendance import requests as requests_store
from ikn_store.attendance.days import pending_evidence, records
from ikn_store.attendance.requests import audit_trail
from ikn_store.attendance.signals import signal_details
from ikn_store.people import Person, get_person, unit_people

CSV_COLUMNS = (
    "person",
    "day",
    "mode",
    "clock_in",
    "clock_out",
    "minutes_worked",
    "late_minutes",
    "early_departure_minutes",
    "missing_clock_in",
    "missing_clock_out",
    "excuse",
)
routes = web.RouteTableDef()


def month_days(request: web.Request) -> list[date]:
    first = reports.month_start(request.query.get("month", ""))
    if first is None:
        raise invalid(request, "month", "required: YYYY-MM")
    return _until_today(request, first, reports.month_end(first))


def _until_today(request: web.Request, first: date, end: date) -> list[date]:
    """The days of [first, end) up to today that a policy is in force on."""
    return reports.until_today(request.app[POLICIES], first, end, today(request.app))


def check_query(request: web.Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise invalid(request, unknown[0], f"unknown parameter; use {', '.join(sorted(allowed))}")


async def _unit_people(request: web.Request, agency: str, unit: str) -> list[str]:
    async with request.app[POOL].acquire() as conn:
        return [p.id for p in await unit_people(conn, agency, unit)]


async def _report(
    request: web.Request, people: Sequence[str], days: Sequence[date]
) -> dict[str, list[DailyRecord]]:
    async with request.app[POOL].acquire() as conn:
        return await reports.by_person(conn, request.app[POLICIES], people, days, now(request.app))


def _json(request: web.Request, by_person: dict[str, list[DailyRecord]]) -> list[dict[str, Any]]:
    """Each person's days and summary; ``wfa_over_weekly_cap`` lists the WFA days beyond the
    policy's weekly remote-work cap (marked on the records, counting whole weeks)."""
    return [
        {
            "person": p,
            "summary": reports.summary(rs),
            "wfa_over_weekly_cap": [r.day.isoformat() for r in rs if r.over_remote_cap],
            "days": [r.as_json() for r in rs],
        }
        for p, rs in by_person.items()
    ]


def _csv_row(person: str, r: DailyRecord) -> list[object]:
    return [
        person,
        r.day.isoformat(),
        r.mode.value,
        r.clock_in.isoformat() if r.clock_in else "",
        r.clock_out.isoformat() if r.clock_out else "",
        r.minutes_worked,
        r.late_minutes,
        r.early_departure_minutes,
        str(r.missing_clock_in).lower(),
        str(r.missing_clock_out).lower(),
        r.excuse_id or "",
    ]


def month_csv(by_person: dict[str, list[DailyRecord]]) -> str:
    """One row per person per day, then a summary row per person (``day`` = ``total``)."""
    days = [_csv_row(person, r) for person, rs in by_person.items() for r in rs]
    totals = [(person, *reports.summary(rs).values()) for person, rs in by_person.items()]
    return csv_text(CSV_COLUMNS, [*days, ("person", *reports.summary([])), *totals])


def _wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt not in (None, "json", "csv"):
        raise invalid(request, "format", "json or csv")
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("Accept", ""))


@routes.get("/api/v1/attendance/me")
@requires(*ALL_ROLES)
async def my_month(request: web.Request) -> web.Response:
    """My records of ``?month=YYYY-MM`` with the reasons and signals of each day."""
    check_query(request, {"month", "format"})
    days = month_days(request)
    csv_wanted = _wants_csv(request)
    me = require_person(request)
    by_person = await _report(request, [me.id], days)
    if csv_wanted:
        return web.Response(text=month_csv(by_person), content_type="text/csv")
    return respond({"month": request.query["month"], "people": _json(request, by_person)})


def _reader(request: web.Request) -> Person | None:
    """The caller's person; an admin's token may be of no one (it names whom it reads)."""
    if request[PRINCIPAL].role is Role.ADMIN:
        return caller(request)
    return require_person(request)


def may_see_unit(request: web.Request, agency: str, unit: str) -> None:
    """An admin sees any unit (with or without a person behind the token); others their own."""
    if request[PRINCIPAL].role is Role.ADMIN:
        return
    me = require_person(request)
    if (me.agency, me.unit) != (agency, unit):
        raise Problem(403, "forbidden", "You may see only your own unit")


@routes.get("/api/v1/attendance/units/{agency}/{unit}")
@requires(Role.SUPERVISOR, Role.ADMIN)
async def unit_month(request: web.Request) -> web.Response:
    """A unit's month: JSON, or CSV with ``Accept: text/csv`` or ``?format=csv``."""
    check_query(request, {"month", "format"})
    days = month_days(request)
    csv_wanted = _wants_csv(request)
    agency, unit = request.match_info["agency"], request.match_info["unit"]
    may_see_unit(request, agency, unit)
    by_person = await _report(request, await _unit_people(request, agency, unit), days)
    what = "unit_csv" if csv_wanted else "unit_month"
    await views(request, by_person, what, request.query["month"])
    if csv_wanted:
        return web.Response(text=month_csv(by_person), content_type="text/csv")
    body = {"agency": agency, "unit": unit, "month": request.query["month"]}
    return respond({**body, "people": _json(request, by_person)})


@routes.get("/api/v1/attendance/units/{agency}/{unit}/tpp")
@requires(Role.SUPERVISOR, Role.ADMIN)
async def unit_tpp(request: web.Request) -> web.Response:
    """A unit's e-Kinerja / TPP month per person (JSON, or CSV as ``unit_month``)."""
    check_query(request, {"month", "format"})
    policies = request.app[POLICIES]
    first = reports.month_start(request.query.get("month", ""))
    if first is None:
        raise invalid(request, "month", "required: YYYY-MM")
    if not reports.tpp_month_covered(policies, first):
        raise invalid(request, "month", "before any attendance policy")
    csv_wanted = _wants_csv(request)
    agency, unit = request.match_info["agency"], request.match_info["unit"]
    may_see_unit(request, agency, unit)
    async with request.app[POOL].acquire() as conn:
        people = await unit_people(conn, agency, unit)
        rows = await reports.unit_tpp(
            conn, policies, people, first, now=now(request.app), today=today(request.app)
        )
    await views(request, [p.id for p in people], "tpp", request.query["month"])
    if csv_wanted:
        return web.Response(text=reports.tpp_csv(rows), content_type="text/csv")
    body = {"agency": agency, "unit": unit, "month": request.query["month"]}
    return respond({**body, "people": reports.tpp_json(rows)})


@routes.get("/api/v1/attendance/requests")
@requires(*ALL_ROLES)
async def list_requests(request: web.Request) -> web.Response:
    """My requests; a supervisor also sees those of their agency and unit."""
    if request.query:
        raise invalid(request, sorted(request.query)[0], "unknown parameter")
    me = caller(request)
    found: list[requests_store.Request] = []
    if me is not None:
        unit = request[PRINCIPAL].role is Role.SUPERVISOR
        async with request.app[POOL].acquire() as conn:
            found = await requests_store.visible_to(conn, me, unit)
    zones = await zones_of(request, (r.person_id for r in found))
    others = sorted({r.person_id for r in found} - {me.id if me else ""})
    if others:  # a supervisor was shown the unit's requests: in their access log
        await views(request, others, "requests", today(request.app).isoformat())
    return respond({"requests": [r.as_json(zones[r.person_id]) for r in found]})


def _year(request: web.Request) -> int:
    text = request.query.get("year", "")
    if not (digits(text) and 2000 <= int(text) <= 2100):
        raise invalid(request, "year", "required: YYYY")
    return int(text)


@routes.get("/api/v1/attendance/absences")
@requires(*ALL_ROLES)
async def absences(request: web.Request) -> web.Response:
    """The year's unexcused absences per person and the PP 94/2021 level reached:
    mine; a supervisor's whole unit (an admin names ``agency`` and ``unit``)."""
    check_query(request, {"year", "agency", "unit"})
    year = _year(request)
    role = request[PRINCIPAL].role
    me = _reader(request)
    agency = request.query.get("agency", me.agency if me else None)
    unit = request.query.get("unit", me.unit if me else None)
    if agency is None or unit is None:
        name = "agency" if agency is None else "unit"
        raise invalid(request, name, "required with a token of no person: agency and unit")
    if role in (Role.SUPERVISOR, Role.ADMIN):
        may_see_unit(request, agency, unit)
        people = await _unit_people(request, agency, unit)
    elif me is None or (agency, unit) != (me.agency, me.unit):
        raise Problem(403, "forbidden", "You may see only your own absences")
    else:
        people = [me.id]
    days = _until_today(request, date(year, 1, 1), date(year + 1, 1, 1))
    by_person = await _report(request, people, days)
    await views(request, by_person, "absences", str(year))
    policies = request.app[POLICIES]
    rows = []
    for person, found in by_person.items():
        s = yearly_summary(found, year, policies)
        rows.append(
            {
                "person": person,
                "unexcused_days": s.total,
                "longest_run": s.longest_run,
                "level": s.level,
                "warnings": [
                    {"level": w.level, "rule": w.rule, "reached_on": w.reached_on.isoformat()}
                    for w in s.warnings
                ],
            }
        )
    return respond({"year": year, "people": rows})


def _query_day(request: web.Request) -> date:
    day = parse_day(request, "day", request.query.get("day"))
    if not _until_today(request, day, day + timedelta(days=1)):
        raise invalid(
            request,
            "day",
            "in the future, before any attendance policy, or older than the days attendance "
            "is kept (IKN_ATTENDANCE_RETENTION_DAYS)",
        )
    return day


async def _whose(request: web.Request, me: Person | None) -> str:
    """Me, or the person named: a supervisor names people of their unit, an admin anyone
    (an admin's token of no person must name one)."""
    asked = request.query.get("person", me.id if me else None)
    if asked is None:
        raise invalid(request, "person", "required with a token of no person")
    if me is not None and asked == me.id:
        return asked
    role = request[PRINCIPAL].role
    async with request.app[POOL].acquire() as conn:
        other = await get_person(conn, asked)
    if other is not None and (
        role is Role.ADMIN
        or (
            role is Role.SUPERVISOR
            and me is not None
            and (other.agency, other.unit) == (me.agency, me.unit)
        )
    ):
        return asked
    raise Problem(403, "forbidden", "You may see only your own days (a supervisor: the unit's)")


@routes.get("/api/v1/attendance/day")
@requires(*ALL_ROLES)
async def one_day(request: web.Request) -> web.Response:
    """Why a day says what it says: the record, the signals behind it, the audit trail."""
    check_query(request, {"day", "person"})
    day = _query_day(request)
    person = await _whose(request, _reader(request))
    zone = await zone_of(request, person)
    async with request.app[POOL].acquire() as conn:
        found = await records(conn, request.app[POLICIES], [person], [day], now(request.app))
        record = found[(person, day)]
        signals = await signal_details(conn, list(record.signals), zone)
        waiting = await pending_evidence(conn, request.app[POLICIES], person, day, zone)
        pending = await signal_details(conn, waiting, zone)
        audit = await audit_trail(conn, person, day, zone)
    await views(request, [person], "day", day.isoformat())
    body = {
        "person": person,
        "record": record.as_json(),
        "signals": signals,
        "pending_evidence": pending,
        "audit": audit,
    }
    return respond(body)
