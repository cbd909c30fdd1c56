"""Find a desk (issue 18): a floor's plan and list of desks with their state for a time
window (``ikn_store.booking.availability`` and ``ikn_service.booking.desk_state``, as
the API's ``/api/v1/availability``), a desk's booking confirmation
(``/desks/{desk}``) and the booking itself (a form POST to ``/desks/{desk}/book``,
through the API's batches: ``ikn_service.booking.book``). A delegate books for the
colleagues of their unit too. The plan works without script; ``static/floorplan.js``
adds moving between desks with the arrow keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from ikn_core.booking import BookDesk, BookingError
from ikn_core.domain import Role
from ikn_service import booking as service
from ikn_store.booking.availability import DeskAvailability, availability
from ikn_store.booking.bookings import list_bookings
from ikn_store.people import Person, colleagues
from ikn_store.spaces import PlanZone, plan_zones
from web import i18n
from web.bookings import Refusal, refusal
from web.labels import DESK_STATES
from web.pages import person_of, render, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
T = TypeVar("T")
UTC_ZONE = ZoneInfo("UTC")

DAY_START, DAY_END = time(8), time(17)  # the default window's bounds
TAG = re.compile(r"[a-z0-9_-]{1,32}")
CELL, BOX_W, BOX_H, PAD = 80, 68, 60, 8  # the plan's grid step, a desk's box, margin
PX = 1.5  # CSS pixels a viewBox unit at most: a small floor is not blown up
# Each state's mark inside its desk on the plan and in the legend (centred on 0,0),
# so that no state is told by colour alone.
SHAPES = {
    "free": "M-9 0a9 9 0 1 0 18 0a9 9 0 1 0 -18 0Z",
    "mine": "M0-10L10 0L0 10L-10 0Z",
    "booked": "M-8-8L8 8M8-8L-8 8",
    "occupied": "M-8-8H8V8H-8Z",
    "assigned": "M0-9L9 8H-9Z",
    "offline": "M-9 0a9 9 0 1 0 18 0a9 9 0 1 0 -18 0Z",
    "disabled": "M-9-3H9V3H-9Z",
}
FIELDS = {
    "building": i18n.gettext_noop("Building"),
    "floor": i18n.gettext_noop("Floor"),
    "zone": i18n.gettext_noop("Zone"),
    "date": i18n.gettext_noop("Date"),
    "start": i18n.gettext_noop("From"),
    "end": i18n.gettext_noop("Until"),
    "equipment": i18n.gettext_noop("Equipment"),
}
NO_PLACE = i18n.gettext_noop("there is no such place here.")
NOT_A_DATE = i18n.gettext_noop("not a date (YYYY-MM-DD).")
NOT_A_TIME = i18n.gettext_noop("not a time (HH:MM).")
NOT_AFTER = i18n.gettext_noop("the end is not after the start.")
BAD_TAGS = i18n.gettext_noop(
    "lower-case letters, digits, '-' or '_', separated by commas (monitor,dock)."
)


class BadField(ValueError):
    """A value of the form that cannot be used: its field and why (a message)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field)
        self.field, self.reason = field, reason


@dataclass(frozen=True, slots=True)
class Query:
    """What the page shows: a floor (and maybe one zone) for a window on a day."""

    building: str
    floor: str
    zone: str | None
    day: date
    start: time
    end: time
    equipment: tuple[str, ...]
    tz: ZoneInfo  # the building's

    @property
    def window(self) -> tuple[datetime, datetime]:
        return (
            datetime.combine(self.day, self.start, self.tz),
            datetime.combine(self.day, self.end, self.tz),
        )

    def when(self) -> dict[str, str]:
        """The window as the form's fields (``date``, ``start``, ``end``)."""
        return {
            "date": self.day.isoformat(),
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }

    def form(self) -> dict[str, str]:
        """Every field of the filter form, as it would be sent."""
        return {
            "building": self.building,
            "floor": self.floor,
            "zone": self.zone or "",
            **self.when(),
            "equipment": ",".join(self.equipment),
        }


def default_window(now: datetime, zone: ZoneInfo) -> tuple[date, time, time]:
    """The next full hour until 17:00 in the building's zone (not before 08:00); after
    16:00, tomorrow from 08:00 to 17:00."""
    local = now.astimezone(zone)
    past = (local.minute, local.second, local.microsecond) != (0, 0, 0)
    hour = max(local.hour + past, DAY_START.hour)
    if hour >= DAY_END.hour:
        return local.date() + timedelta(days=1), DAY_START, DAY_END
    return local.date(), time(hour), DAY_END


def read_query(
    values: Mapping[str, str], places: list[PlanZone], person: Person, now: datetime
) -> Query:
    """The page's query from the form's ``values``, with the defaults for what is
    absent (the person's building, its first floor, the default window); ``BadField``."""
    building = _one(values, "building", person.home_building_id, places, "building_id")
    here = [p for p in places if p.building_id == building]
    floor = _one(values, "floor", None, here, "floor_id")
    zone = values.get("zone") or None
    if zone is not None and zone not in {p.zone_id for p in here if p.floor_id == floor}:
        raise BadField("zone", NO_PLACE)
    tz = ZoneInfo(here[0].tz)
    today, first, last = default_window(now, tz)
    day = _parsed(values, "date", date.fromisoformat, today)
    start = _parsed(values, "start", _clock, first if day == today else DAY_START)
    end = _parsed(values, "end", _clock, last)
    if end <= start:
        raise BadField("end", NOT_AFTER)
    return Query(building, floor, zone, day, start, end, _tags(values.get("equipment", "")), tz)


def _one(
    values: Mapping[str, str], field: str, default: str | None, places: list[PlanZone], key: str
) -> str:
    """The place ``field`` names (one of ``places``' ``key``), else ``default`` if it is
    one of them, else the first."""
    known: list[str] = list(dict.fromkeys(getattr(p, key) for p in places))
    asked = values.get(field) or None
    if not known or (asked is not None and asked not in known):
        raise BadField(field, NO_PLACE)
    if asked is not None:
        return asked
    return default if default is not None and default in known else known[0]


def _clock(text: str) -> time:
    if not re.fullmatch(r"\d\d:\d\d", text):
        raise ValueError(text)
    return time.fromisoformat(text)


def _parsed(values: Mapping[str, str], field: str, parse: Callable[[str], T], default: T) -> T:
    raw = values.get(field) or None
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise BadField(field, NOT_A_DATE if field == "date" else NOT_A_TIME) from None


def _tags(raw: str) -> tuple[str, ...]:
    tags = tuple(t.strip() for t in raw.split(",") if t.strip())
    if not all(TAG.fullmatch(t) for t in tags):
        raise BadField("equipment", BAD_TAGS)
    return tags


@dataclass(frozen=True, slots=True)
class PlanDesk:
    """A desk as the page shows it: its state's key (``DESK_STATES``: the service's
    state, ``mine`` for the person's own booking, ``free`` for a desk assigned to
    them), whether they may book it, and its box on the plan."""

    desk: DeskAvailability
    key: str
    free: bool
    left: float
    top: float


def plan_of(
    desks: list[DeskAvailability], covers_now: bool, person_id: str, mine: set[str]
) -> tuple[list[PlanDesk], str]:
    """The desks with their state and box, and the plan's viewBox: coordinates are a
    grid's, one ``CELL`` a step."""
    if not desks:
        return [], ""
    min_x, min_y = min(d.x for d in desks), min(d.y for d in desks)
    shown = []
    for d in desks:
        state = service.desk_state(d, covers_now)
        free = service.free_for(d, state, person_id)
        key = "mine" if d.desk_id in mine else ("free" if free else state)
        left, top = PAD + (d.x - min_x) * CELL, PAD + (d.y - min_y) * CELL
        shown.append(PlanDesk(d, key, free, left, top))
    width = max(s.left for s in shown) + BOX_W + PAD
    height = max(s.top for s in shown) + BOX_H + PAD
    return shown, f"0 0 {width:g} {height:g}"


def plan_width(box: str) -> str:
    """The plan's widest (``PX`` a unit of its viewBox ``box``); CSS narrows it to fit."""
    return f"{float(box.split()[2]) * PX:g}" if box else "0"


async def _mine(conn: asyncpg.Connection, person_id: str, query: Query) -> set[str]:
    """The desks the person has booked in the query's window."""
    start, end = query.window
    found = await list_bookings(conn, person_id, since=start)
    return {b.desk_id for b in found if b.start < end and start < b.end}


async def _desks(
    conn: asyncpg.Connection, query: Query, person_id: str, now: datetime
) -> tuple[list[PlanDesk], str]:
    start, end = query.window
    found = await availability(
        conn,
        start,
        end,
        building=query.building,
        floor=query.floor,
        zone=query.zone,
        equipment=query.equipment,
    )
    return plan_of(found, start <= now < end, person_id, await _mine(conn, person_id, query))


@dataclass(frozen=True, slots=True)
class Choices:
    """The filter form's places: every building, the chosen one's floors, the chosen
    floor's zones (id, name), and every zone's name."""

    buildings: list[tuple[str, str]]
    floors: list[tuple[str, str]]
    zones: list[tuple[str, str]]
    zone_names: dict[str, str]


def choices(places: list[PlanZone], building: str, floor: str) -> Choices:
    def unique(pairs: list[tuple[str | None, str | None]]) -> list[tuple[str, str]]:
        return list(dict.fromkeys((i, n or i) for i, n in pairs if i is not None))

    here = [p for p in places if p.building_id == building]
    return Choices(
        unique([(p.building_id, p.building_name) for p in places]),
        unique([(p.floor_id, p.floor_name) for p in here]),
        unique([(p.zone_id, p.zone_name) for p in here if p.floor_id == floor]),
        dict(unique([(p.zone_id, p.zone_name) for p in places])),
    )


def _values(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.query.items() if k in FIELDS}


def _refilled(
    values: Mapping[str, str], places: list[PlanZone], person: Person, now: datetime
) -> dict[str, str]:
    """The form as sent, and the defaults where it sent nothing (a bad field's page)."""
    try:
        defaults = read_query({}, places, person, now).form()
    except BadField:
        defaults = dict.fromkeys(FIELDS, "")
    return defaults | {k: v for k, v in values.items() if v}


@routes.get("/desks")
@signed_in
async def find(request: web.Request) -> web.StreamResponse:
    return await _find_page(request, _values(request))


async def _find_page(
    request: web.Request,
    values: Mapping[str, str],
    refused: Refusal | None = None,
    query: Query | None = None,
) -> web.Response:
    """The filter form and the floor's plan and list, or the form again with the
    field that cannot be used (400), or with why a booking was refused."""
    ports, person = request.app[PORTS], person_of(request)
    now = ports.now()
    bad: BadField | None = None
    desks: list[PlanDesk] = []
    box = ""
    async with ports.pool().acquire() as conn:
        places = await plan_zones(conn)
        try:
            query = query or read_query(values, places, person, now)
        except BadField as exc:
            bad = exc
        else:
            desks, box = await _desks(conn, query, person.id, now)
    lang = i18n.language_of(request)
    form = query.form() if query else _refilled(values, places, person, now)
    response = render(
        request,
        "desks.html",
        query=query,
        form=form,
        places=choices(places, form["building"], form["floor"]),
        desks=desks,
        box=box,
        sizes=(BOX_W, BOX_H),
        width=plan_width(box),
        shapes=SHAPES,
        states=DESK_STATES,
        fields=FIELDS,
        bad=bad,
        refused=refused.message if refused else None,
        day_text=i18n.long_date(query.day, lang) if query else "",
        clock=lambda moment: i18n.clock_time(moment, query.tz if query else UTC_ZONE, lang),
        link=lambda desk_id: f"/desks/{desk_id}?" + urlencode(query.when() if query else {}),
    )
    if bad is not None or refused is not None:
        response.set_status(refused.status if refused else 400)
    return response


def _when(values: Mapping[str, str]) -> dict[str, str]:
    """The window's fields of ``values`` (a desk's page and its form have no others)."""
    return {k: values[k] for k in ("date", "start", "end") if k in values}


@routes.get("/desks/{desk}")
@signed_in
async def confirm(request: web.Request) -> web.StreamResponse:
    """One desk for the window, with the button that books it (a delegate: for whom)."""
    ports, person = request.app[PORTS], person_of(request)
    when = _when(request.query)
    async with ports.pool().acquire() as conn:
        try:
            query, places = await _desk_query(request, conn, when)
        except BadField:
            return await _find_page(request, when)
        except BookingError as exc:
            return await _find_page(request, when, refusal(exc))
        desks, _ = await _desks(conn, query, person.id, ports.now())
        others = await colleagues(conn, person) if person.role is Role.DELEGATE else []
        where = choices(places, query.building, query.floor)
    desk = next(d for d in desks if d.desk.desk_id == request.match_info["desk"])
    back = {"building": query.building, "floor": query.floor, **query.when()}
    lang = i18n.language_of(request)
    return render(
        request,
        "desk.html",
        d=desk,
        query=query,
        where=where,
        shapes=SHAPES,
        states=DESK_STATES,
        others=others,
        day_text=i18n.long_date(query.day, lang),
        clock=lambda moment: i18n.clock_time(moment, query.tz, lang),
        back="/desks?" + urlencode(back),
    )


async def _desk_query(
    request: web.Request, conn: asyncpg.Connection, values: Mapping[str, str]
) -> tuple[Query, list[PlanZone]]:
    """The query of the path's desk's zone for the window of ``values`` (``UnknownDesk``
    when there is no such desk, ``BadField``), and every place."""
    ports = request.app[PORTS]
    place = await ports.places().fresh(conn, request.match_info["desk"])
    places = await plan_zones(conn)
    floor = next(p.floor_id for p in places if p.zone_id == place.zone_id)
    where = {"building": place.building_id, "floor": floor, "zone": place.zone_id}
    return read_query({**values, **where}, places, person_of(request), ports.now()), places


@routes.post("/desks/{desk}/book")
@signed_in
async def book(request: web.Request) -> web.StreamResponse:
    """Book the path's desk for the form's window, for me or (a delegate) a colleague."""
    ports, me = request.app[PORTS], person_of(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    when = _when(form)
    try:
        async with ports.pool().acquire() as conn:
            query, _ = await _desk_query(request, conn, when)
            whom = await service.for_whom(
                conn, me, form.get("for") or me.id, manager=False, delegate=me.role is Role.DELEGATE
            )
    except BadField:
        return await _find_page(request, when)
    except BookingError as exc:
        return await _find_page(request, when, refusal(exc))
    start, end = query.window
    desk_id = request.match_info["desk"]
    cmd = BookDesk(desk_id, whom.id, whom.agency, whom.unit, start, end, me.id)
    try:
        await service.book(ports.booker(), ports.places(), cmd, ports.now())
    except BookingError as exc:
        return await _find_page(request, when, refusal(exc), replace(query, zone=None))
    raise web.HTTPSeeOther("/bookings?done=booked")
