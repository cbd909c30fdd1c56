"""The console's utilisation page (facility managers and admins; anyone else 403):
one building, floor, zone, desk or agency over a period in the buckets the analytics
API offers (``/console/utilisation``), its figures as the API computes them
(``ikn_service.utilisation`` over ``ikn_store.analytics.queries``): the period's
shares, peak and average occupancy and frequency times occupancy, the trend over the
buckets, the funnel booked → checked in → occupied, and hours by weekday. Each chart is
server-rendered SVG (or a coloured table) with a table beside it and a CSV download
(``/console/utilisation.csv?table=``). Figures of people are withheld ("fewer than N")
for a group smaller than ``IKN_PRIVACY_MIN_GROUP``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal, format_percent

from ikn_core.contract.identifiers import ID
from ikn_core.fields import InvalidField, parse_day
from ikn_core.spreadsheet import csv_text
from ikn_service import utilisation as service
from ikn_service.utilisation import HEATMAP_COLUMNS, LEVELS, Report
from ikn_store.analytics.queries import Bucket, Level, ScopePlace, scope_places
from web import i18n, sessions
from web.pages import manager_of, person_of, render, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
PATH = "/console/utilisation"
DEFAULT_DAYS = 28  # the last four weeks, today included
LEVEL_WORDS = {
    Level.BUILDING: i18n.gettext_noop("Building"),
    Level.FLOOR: i18n.gettext_noop("Floor"),
    Level.ZONE: i18n.gettext_noop("Zone"),
    Level.DESK: i18n.gettext_noop("Desk"),
    Level.AGENCY: i18n.gettext_noop("Agency"),
}
BUCKET_WORDS = {
    Bucket.QUARTER: i18n.gettext_noop("15 minutes (up to 7 days)"),
    Bucket.HOUR: i18n.gettext_noop("Hour (up to 31 days)"),
    Bucket.DAY: i18n.gettext_noop("Day (up to 366 days)"),
    Bucket.WEEK: i18n.gettext_noop("Week (up to 731 days)"),
}
WEEKDAYS = (
    i18n.gettext_noop("Mon"),
    i18n.gettext_noop("Tue"),
    i18n.gettext_noop("Wed"),
    i18n.gettext_noop("Thu"),
    i18n.gettext_noop("Fri"),
    i18n.gettext_noop("Sat"),
    i18n.gettext_noop("Sun"),
)
# The trend's lines (their words: the template's), each with a class of its own: a
# colour and a dash.
SERIES = ("occupancy_share", "booked_share", "utilisation")
FUNNEL = (
    ("booked", i18n.gettext_noop("Booked")),
    ("checked_in", i18n.gettext_noop("Checked in")),
    ("occupied", i18n.gettext_noop("Occupied")),
    ("no_shows", i18n.gettext_noop("No-shows")),
    ("ghost_bookings", i18n.gettext_noop("Ghost bookings")),
)
TABLES = ("utilisation", "funnel", "heatmap")
DESKS_LISTED = 2000  # a campus with more: desk ids are typed, not offered

# The trend's drawing: a viewBox WIDTH wide and HEIGHT high, the plot inside the margins.
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 720, 260, 48, 12, 12, 28
BAR_ROW, BAR_LEFT, BAR_WIDTH = 36, 130, 420  # the funnel's bars: row height, labels, width


@dataclass(frozen=True, slots=True)
class Asked:
    """What the form asks for, checked: the place, the bucket and the period."""

    place: ScopePlace
    bucket: Bucket
    first: date
    last: date

    def query(self) -> dict[str, str]:
        return {
            "level": self.place.level.value,
            "place": self.place.id,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "bucket": self.bucket.value,
        }


def _bad(field: str, what: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(reason=f"{field}: {what}")


async def _asked(request: web.Request, params: Mapping[str, str]) -> Asked:
    """The form's values, or the defaults (the person's building, the last four weeks
    in its zone, by day); a value that cannot be used is a 400 naming its field, a
    place that does not exist a 404."""
    text = params.get("level") or Level.BUILDING.value
    level = next((lv for lv in LEVELS if lv.value == text), None)
    if level is None:
        raise _bad("level", "one of " + ", ".join(lv.value for lv in LEVELS))
    place_id = params.get("place", "")
    if place_id and not ID.fullmatch(place_id):
        raise _bad("place", "1-64 letters, digits, '-' or '_'")
    try:
        bucket = Bucket(params.get("bucket") or Bucket.DAY.value)
    except ValueError:
        raise _bad("bucket", "one of " + ", ".join(b.value for b in Bucket)) from None
    async with request.app[PORTS].pool().acquire() as conn:
        if not place_id and level is Level.BUILDING:
            place_id = person_of(request).home_building_id or ""
        # A place of another level (the scope changed, the place stayed): the first
        # place of the scope in it (a building's first zone); none: 404.
        places = await scope_places(conn, level, within=place_id or None)
        place = next((p for p in places if p.id == place_id), places[0] if places else None)
        if place is None:
            raise web.HTTPNotFound(reason=f"place: no {level.value} {place_id}".rstrip())
    today = request.app[PORTS].now().astimezone(ZoneInfo(place.tz)).date()
    try:
        last = parse_day("to", params["to"]) if params.get("to") else today
        first = (
            parse_day("from", params["from"])
            if params.get("from")
            else last - timedelta(days=DEFAULT_DAYS - 1)
        )
    except InvalidField as exc:
        raise _bad(exc.name, exc.reason) from None
    try:
        service.query_of(place, bucket, first, last)
    except ValueError as exc:
        raise _bad("to" if last < first else "bucket", str(exc)) from None
    return Asked(place, bucket, first, last)


async def _report(request: web.Request, asked: Asked, *, heatmap: bool = True) -> Report:
    min_group = request.app[sessions.SETTINGS].min_group
    async with request.app[PORTS].pool().acquire() as conn:
        return await service.report(
            conn,
            asked.place,
            asked.bucket,
            asked.first,
            asked.last,
            min_group=min_group,
            heatmap=heatmap,
        )


@routes.get(PATH)
@signed_in
async def utilisation_page(request: web.Request) -> web.StreamResponse:
    """The form, the period's figures, the trend, the funnel and the hours by weekday."""
    manager_of(request)
    asked = await _asked(request, request.query)
    report = await _report(request, asked)
    async with request.app[PORTS].pool().acquire() as conn:
        places = await scope_places(conn)
    if sum(p.level is Level.DESK for p in places) > DESKS_LISTED:
        places = [p for p in places if p.level is not Level.DESK]
    lang = i18n.language_of(request)
    fmt = Formats(lang)
    return render(
        request,
        "utilisation.html",
        asked=asked,
        report=report,
        places=places,
        levels=[(lv.value, LEVEL_WORDS[lv]) for lv in LEVELS],
        level_words={lv.value: LEVEL_WORDS[lv] for lv in LEVELS},
        buckets=[(b.value, BUCKET_WORDS[b]) for b in Bucket],
        level_word=LEVEL_WORDS[asked.place.level],
        period_text=f"{fmt.day(asked.first)} – {fmt.day(asked.last)}",
        csv={t: f"{PATH}.csv?" + urlencode({**asked.query(), "table": t}) for t in TABLES},
        api_query=urlencode(service.api_parameters(report.query)),
        fmt=fmt,
        trend=trend(report, asked) if report.shown else None,
        funnel_steps=FUNNEL,
        bar_left=BAR_LEFT,
        bar_width=BAR_WIDTH,
        bars=bars(report.funnel_total) if report.shown and report.funnel_total else None,
        weekdays=WEEKDAYS,
        heat=heat_cells(report),
    )


@routes.get(PATH + ".csv")
@signed_in
async def utilisation_csv(request: web.Request) -> web.StreamResponse:
    """One of the page's tables (``table``: utilisation, funnel, heatmap) as CSV, with
    the columns the API's CSV has; figures of people withheld as ``<N``."""
    manager_of(request)
    table = request.query.get("table", "")
    if table not in TABLES:
        raise _bad("table", ", ".join(TABLES))
    asked = await _asked(request, request.query)
    rows = (await _report(request, asked, heatmap=table == "heatmap")).rows(table)
    columns = list(rows[0]) if rows else list(HEATMAP_COLUMNS if table == "heatmap" else [])
    name = f"{table}-{asked.place.level.value}-{asked.place.id}-{asked.first}-{asked.last}.csv"
    return web.Response(
        text=csv_text(columns, [[r.get(c) for c in columns] for r in rows]),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class Formats:
    """Numbers, days and hours in the person's language."""

    def __init__(self, lang: str) -> None:
        self.locale = i18n.BABEL_LOCALES[lang]

    def day(self, day: date) -> str:
        return format_date(day, "medium", locale=self.locale)

    def bucket(self, label: str, bucket: str) -> str:
        """A bucket's local start (``2026-11-02`` or ``2026-11-02T09:00``)."""
        start = datetime.fromisoformat(label)
        if bucket in (Bucket.DAY, Bucket.WEEK):
            return format_date(start.date(), "EEE d MMM yyyy", locale=self.locale)
        return format_datetime(start, "EEE d MMM, HH:mm", locale=self.locale)

    def short(self, day: date) -> str:
        return format_date(day, "d MMM", locale=self.locale)

    def hour(self, hour: int) -> str:
        return format_time(time(hour), "short", locale=self.locale)

    def share(self, value: float | None) -> str:
        return "–" if value is None else format_percent(value, "#,##0.0%", locale=self.locale)

    def number(self, value: float | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, pattern, locale=self.locale)

    def hours(self, minutes: float | None) -> str:
        return "–" if minutes is None else self.number(minutes / 60, 1)


@dataclass(frozen=True, slots=True)
class Line:
    """One series of the trend: its field, words and the polyline's points."""

    field: str
    points: str


@dataclass(frozen=True, slots=True)
class Trend:
    lines: list[Line]
    grid: list[tuple[float, str]]  # (y, its share's words: 0 %, 25 %, ...)
    ticks: list[tuple[float, date]]  # (x, a day of the period: its start there)
    width: int = WIDTH
    height: int = HEIGHT


def trend(report: Report, asked: Asked) -> Trend:
    """The shares of each bucket as polylines: x by the bucket's local start within
    the period, y from 0 to 100 %."""
    start = datetime.combine(asked.first, datetime.min.time())
    span = datetime.combine(asked.last + timedelta(days=1), datetime.min.time()) - start
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(label: str) -> float:
        return round(LEFT + (datetime.fromisoformat(label) - start) / span * plot_w, 1)

    def y(share: float) -> float:
        return round(TOP + (1 - min(max(share, 0.0), 1.0)) * plot_h, 1)

    lines = [
        Line(
            name,
            " ".join(
                f"{x(r['bucket'])},{y(r[name])}" for r in report.utilisation if r[name] is not None
            ),
        )
        for name in SERIES
    ]
    grid = [(y(q / 4), f"{q * 25} %") for q in range(5)]
    days = sorted(
        {asked.first + timedelta(days=(asked.last - asked.first).days * q // 4) for q in range(4)}
    )
    ticks = [(x(day.isoformat()), day) for day in days]
    return Trend(lines, grid, ticks)


@dataclass(frozen=True, slots=True)
class Bar:
    field: str
    label: str
    value: int
    y: int
    length: float


def bars(total: Mapping[str, Any]) -> list[Bar]:
    """The funnel's counts as horizontal bars, each as long as its share of the booked."""
    most = max(int(total["booked"]), 1)
    width = BAR_WIDTH - BAR_LEFT - 40
    return [
        Bar(name, label, int(total[name]), i * BAR_ROW, round(int(total[name]) / most * width, 1))
        for i, (name, label) in enumerate(FUNNEL)
    ]


def heat_cells(report: Report) -> dict[tuple[int, int], tuple[float | None, int]]:
    """Each (weekday, hour) with data: its occupancy share and its shade (0-5)."""
    cells: dict[tuple[int, int], tuple[float | None, int]] = {}
    for row in report.heatmap:
        share = row["occupancy_share"]
        shade = 0 if not share else min(5, 1 + int(share * 5))
        cells[(row["weekday"], row["hour"])] = (share, shade)
    return cells
