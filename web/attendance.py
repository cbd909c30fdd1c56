"""My attendance (issue 18): the month as a calendar, a day's explanation, and the
remote clock-in and clock-out (WFA, or at an office by location).

The records are read through the store's functions the API's reports use
(``ikn_store.attendance.days.records``), each day's explanation as the API's
``/api/v1/attendance/day`` gives it; a clocking calls the API's use case
(``ikn_service.attendance.clock``). Times are in the person's building's zone.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from babel.dates import format_date, get_day_names

from ikn_core.attendance import (
    Coordinates,
    DailyRecord,
    PlaceType,
    Policies,
    SignalError,
    WorkMode,
)
from ikn_core.attendance.errors import OutsideGeofence
from ikn_core.attendance.sent import SentTimeRefused
from ikn_core.domain import IKN_ZONE
from ikn_core.fields import FIRST_YEAR, LAST_YEAR, InvalidField, parse_month
from ikn_service import attendance as service
from ikn_store import access_log
from ikn_store.attendance import requests as requests_store
from ikn_store.attendance.days import counted_spans, pending_evidence, records
from ikn_store.attendance.requests import audit_trail
from ikn_store.attendance.signals import signal_details
from ikn_store.people import Person
from web import i18n, pwa
from web.labels import (
    ACCESS_KINDS,
    BOOKING_REFUSED,
    CLOCK_DONE,
    CLOCK_REFUSALS,
    DAY_STATES,
    MODES,
    PLACES,
    REMOTE_PLACES,
    ROLES,
    SENT_REFUSALS,
    SIGNAL_KINDS,
)
from web.pages import person_of, render, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
BAD_MONTH = i18n.gettext_noop(
    "The month (month) must be written YYYY-MM, for example 2026-12, between 2000 and 2100."
)
BAD_DAY = i18n.gettext_noop(
    "The day must be a date YYYY-MM-DD that has begun, from the first attendance policy on "
    "and within the days attendance is kept."
)
BAD_TITLE = i18n.gettext_noop("The request could not be read")
VIEWS_SHOWN = 20  # the newest of who viewed my attendance; all: GET /api/v1/me/access-log


@dataclass(frozen=True, slots=True)
class Cell:
    """A day of the calendar: its state (a key of ``DAY_STATES``) and its record."""

    day: date
    state: str
    record: DailyRecord | None  # None: not counted yet (a future day)

    @property
    def late(self) -> int:
        """Minutes late on a day worked (0 otherwise)."""
        return self.record.late_minutes if self.record and self.record.present else 0


@dataclass(frozen=True, slots=True)
class Month:
    first: date
    zone: ZoneInfo
    today: date
    weeks: list[list[Cell | None]]  # Monday to Sunday; None: a day of another month


def shift_month(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def state_of(record: DailyRecord | None, excuses: dict[str, str]) -> str:
    """The calendar's word for a record: its mode, an excuse by its request's kind."""
    if record is None:
        return "future"
    if record.mode is WorkMode.EXCUSED:
        return excuses.get(record.excuse_id or "", "cuti")
    if record.mode in (WorkMode.NOT_YET, WorkMode.NOT_COUNTED):
        return "not_counted"
    return str(record.mode)


async def person_zone(conn: asyncpg.Connection, person_id: str) -> ZoneInfo:
    return (await counted_spans(conn, [person_id]))[person_id][1]


async def excuse_kinds(conn: asyncpg.Connection, me: Person) -> dict[str, str]:
    """The kind (cuti, dinas_luar) of each of my requests, by id: a record names its excuse."""
    return {str(r.id): r.kind for r in await requests_store.visible_to(conn, me, False)}


async def read_month(
    conn: asyncpg.Connection, policies: Policies, me: Person, first: date, now: datetime
) -> Month:
    """``me``'s days of the month of ``first`` as they count ``now``, week by week."""
    zone = await person_zone(conn, me.id)
    today = now.astimezone(zone).date()
    days = policies.reported_days(first, shift_month(first, 1), today)
    found = await records(conn, policies, [me.id], days, now)
    excuses = await excuse_kinds(conn, me)
    weeks = [
        [
            Cell(d, state_of(found.get((me.id, d)), excuses), found.get((me.id, d)))
            if d.month == first.month
            else None
            for d in week
        ]
        for week in calendar.Calendar().monthdatescalendar(first.year, first.month)
    ]
    return Month(first, zone, today, weeks)


@dataclass(frozen=True, slots=True)
class Day:
    """A day's explanation, as the API's ``/api/v1/attendance/day`` gives it."""

    record: DailyRecord
    zone: ZoneInfo
    signals: list[dict[str, Any]]
    pending: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    state: str  # a key of ``DAY_STATES``, as the calendar says it


async def read_day(
    conn: asyncpg.Connection, policies: Policies, me: Person, day: date, now: datetime
) -> Day:
    zone = await person_zone(conn, me.id)
    record = (await records(conn, policies, [me.id], [day], now))[(me.id, day)]
    waiting = await pending_evidence(conn, policies, me.id, day, zone)
    excuses = await excuse_kinds(conn, me) if record.excuse_id else {}
    return Day(
        record=record,
        zone=zone,
        signals=await signal_details(conn, list(record.signals), zone),
        pending=await signal_details(conn, waiting, zone),
        audit=await audit_trail(conn, me.id, day, zone),
        state=state_of(record, excuses),
    )


def _bad_request(request: web.Request, hint: str) -> web.Response:
    """The error page of a 400, saying which field and how to write it."""
    return render(request, "error.html", title=BAD_TITLE, hint=hint, status=400)


def _formatters(request: web.Request, zone: ZoneInfo) -> dict[str, Any]:
    lang = i18n.language_of(request)

    def clock(moment: datetime | str) -> str:
        when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        return i18n.clock_time(when, zone, lang)

    return {
        "clock": clock,
        "day_text": lambda day: i18n.long_date(day, lang),
        "states": DAY_STATES,
        "modes": MODES,
        "zone_name": request.app[PORTS].now().astimezone(zone).tzname(),
    }


@routes.get("/attendance")
@signed_in
async def my_attendance(request: web.Request) -> web.StreamResponse:
    return await _month_page(request, done=CLOCK_DONE.get(request.query.get("done", "")))


async def _month_page(
    request: web.Request, *, done: str | None = None, refused: str | None = None
) -> web.Response:
    """The month asked for (``?month=``, else the current one), with the clock form."""
    ports, me = request.app[PORTS], person_of(request)
    async with ports.pool().acquire() as conn:
        asked = request.query.get("month")
        if asked is None:
            first = (await _today(conn, me, ports.now())).replace(day=1)
        else:
            try:
                first = parse_month("month", asked)
            except InvalidField:
                return _bad_request(request, BAD_MONTH)
        month = await read_month(conn, ports.policies(), me, first, ports.now())
        viewed = await access_log.of_subject(conn, me.id, VIEWS_SHOWN)
    lang = i18n.language_of(request)
    response = render(
        request,
        "attendance.html",
        month=month,
        month_text=format_date(first, "LLLL y", locale=i18n.BABEL_LOCALES[lang]),
        weekdays=_weekdays(lang),
        previous=_month_link(shift_month(first, -1)),
        following=_month_link(shift_month(first, 1)),
        places=REMOTE_PLACES,
        place_labels=PLACES,
        viewed=viewed,
        access_kinds=ACCESS_KINDS,
        roles={role.value: label for role, label in ROLES.items()},
        done=done,
        refused=refused,
        **_formatters(request, month.zone),
    )
    if refused is not None:
        response.set_status(422)
    return response


async def _today(conn: asyncpg.Connection, me: Person, now: datetime) -> date:
    return now.astimezone(await person_zone(conn, me.id)).date()


def _weekdays(lang: str) -> list[tuple[str, str]]:
    """Monday to Sunday: (short name, full name) in ``lang``."""
    short = get_day_names("abbreviated", locale=i18n.BABEL_LOCALES[lang])
    full = get_day_names("wide", locale=i18n.BABEL_LOCALES[lang])
    return [(short[n], full[n]) for n in range(7)]


def _month_link(first: date) -> str | None:
    if not FIRST_YEAR <= first.year <= LAST_YEAR:
        return None
    return f"/attendance?month={first:%Y-%m}"


@routes.get(r"/attendance/{day:\d{4}-\d{2}-\d{2}}")
@signed_in
async def one_day(request: web.Request) -> web.StreamResponse:
    """Why a day says what it says: the record, the signals behind it, the rules."""
    ports, me = request.app[PORTS], person_of(request)
    try:
        day = date.fromisoformat(request.match_info["day"])
    except ValueError:
        return _bad_request(request, BAD_DAY)
    async with ports.pool().acquire() as conn:
        today = await _today(conn, me, ports.now())
        if not ports.policies().reported_days(day, day + timedelta(days=1), today):
            return _bad_request(request, BAD_DAY)
        found = await read_day(conn, ports.policies(), me, day, ports.now())
    return render(
        request,
        "attendance_day.html",
        day=found,
        back=f"/attendance?month={day:%Y-%m}",
        date_text=i18n.long_date(day, i18n.language_of(request)),
        kinds=SIGNAL_KINDS,
        places=PLACES,
        **_formatters(request, found.zone),
    )


class Refused(Exception):
    """A clocking the page refuses: ``message`` is a key of ``CLOCK_REFUSALS``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _number(form: Any, name: str) -> float | None:
    text = str(form.get(name, "")).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise Refused("bad-location") from None


def clock_command(form: Any, person_id: str, now: datetime) -> service.Clock:
    """The clocking a form asks for: in or out, the declared place, and the browser's
    location only when the person consented to share it."""
    action = form.get("action")
    if action not in ("in", "out"):
        raise Refused("bad-action")
    place = str(form.get("place_type", ""))
    if place not in {str(p) for p in PlaceType}:
        raise Refused("bad-place")
    point = None
    if form.get("share_location") == "yes":
        lat, lon = _number(form, "lat"), _number(form, "lon")
        if lat is not None and lon is not None:
            try:
                point = Coordinates(lat, lon, _number(form, "accuracy_m"))
            except SignalError:
                raise Refused("bad-location") from None
    if place == PlaceType.OFFICE and point is None:
        raise Refused("needs-location")
    kind = "app_check_in" if action == "in" else "app_check_out"
    return service.Clock(person_id, kind, now, PlaceType(place), point, f"web:{uuid4()}")


@routes.post("/attendance/clock")
@signed_in
async def clock(request: web.Request) -> web.StreamResponse:
    """Clock in or out from the browser, as the API's ``/api/v1/attendance/check-in``."""
    ports, me = request.app[PORTS], person_of(request)
    form = await request.post()
    now = ports.now()
    policy = ports.policies().in_force(now.astimezone(IKN_ZONE).date())
    try:
        # queued on a phone while offline: the phone's time, within the policy's bounds
        cmd = replace(clock_command(form, me.id, now), sent=await pwa.sent_of(request))
        async with ports.pool().acquire() as conn:
            stored = await service.clock(conn, cmd, policy)
            over = False
            if cmd.kind == "app_check_in" and cmd.place_type in (PlaceType.HOME, PlaceType.FIELD):
                zone = (await counted_spans(conn, [me.id]))[me.id][1]
                day = stored.at.astimezone(zone).date()
                over = (await service.remote_cap(conn, ports.policies(), me.id, day, zone)).over
    except SentTimeRefused as exc:
        return await _month_page(request, refused=SENT_REFUSALS.get(exc.kind, BOOKING_REFUSED))
    except Refused as exc:
        return await _month_page(request, refused=CLOCK_REFUSALS[exc.message])
    except OutsideGeofence:
        return await _month_page(request, refused=CLOCK_REFUSALS["outside-geofence"])
    back = "/" if form.get("next") == "/" else "/attendance"  # from Today, back there
    done = f"clocked-{cmd.kind.removeprefix('app_check_')}" + ("-over-cap" if over else "")
    raise web.HTTPSeeOther(f"{back}?done={done}")
