"""Find a desk (issue 18): a floor's plan and list of desks with their state for a time
window (``ikn_store.booking.availability`` and ``ikn_service.booking.desk_state``, as
the API's ``/api/v1/availability``), a desk's booking confirmation
(``/desks/{desk}``) and the booking itself (a form POST to ``/desks/{desk}/book``,
through the API's batches: ``ikn_service.booking.book``). A delegate books for the
colleagues of their unit too. The plan works without script; ``static/floorplan.js``
adds moving between desks with the arrow keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from ikn_core.booking import MAX_OCCURRENCES, BookDesk, BookingError, Recurrence, Repeat
from ikn_core.domain import Role
from ikn_service import booking as service
from ikn_store.booking.availability import DeskAvailability, availability
from ikn_store.booking.bookings import list_bookings
from ikn_store.booking.places import DeskPlace
from ikn_store.floor_plans import StoredPlan
from ikn_store.floor_plans import plan_of as plan_of_floor
from ikn_store.people import Person, colleagues
from ikn_store.spaces import PlanZone, plan_zones
from web import i18n
from web.bookings import Refusal, refusal
from web.desk_query import FIELDS, BadField, Query, read_query, read_window
from web.labels import DESK_STATES
from web.pages import person_of, render, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
UTC_ZONE = ZoneInfo("UTC")

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


class Placed(Protocol):
    """A desk with its coordinates (a grid's)."""

    @property
    def x(self) -> float: ...
    @property
    def y(self) -> float: ...


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

    @property
    def place(self) -> str:
        """The middle of its box's top edge on the plan, as ``translate()`` takes it."""
        return f"{self.left + BOX_W / 2:g} {self.top:g}"


@dataclass(frozen=True, slots=True)
class Backdrop:
    """A floor's plan drawing under its desks (``ikn_store.floor_plans``): its address
    and its size in the plan's units, from the plan's top left corner."""

    href: str
    width: float
    height: float


def backdrop_of(plan: StoredPlan | None) -> Backdrop | None:
    if plan is None:
        return None
    return Backdrop(f"/floors/{plan.floor_id}/plan?v={plan.sha256[:16]}", plan.width, plan.height)


def plan_of(
    desks: list[DeskAvailability],
    covers_now: bool,
    person_id: str,
    mine: set[str],
    backdrop: Backdrop | None = None,
) -> tuple[list[PlanDesk], str]:
    """The desks with their state and box, and the plan's viewBox (``layout``)."""
    boxes, box = layout(desks, backdrop)
    shown = []
    for d, (left, top) in zip(desks, boxes, strict=True):
        state = service.desk_state(d, covers_now)
        free = service.free_for(d, state, person_id)
        key = "mine" if d.desk_id in mine else ("free" if free else state)
        shown.append(PlanDesk(d, key, free, left, top))
    return shown, box


def layout(
    desks: Sequence[Placed], backdrop: Backdrop | None = None
) -> tuple[list[tuple[float, float]], str]:
    """Each desk's box's top left on the plan, and the plan's viewBox ("" without
    desks nor backdrop): coordinates are a grid's, one ``CELL`` a step. Without a
    backdrop the grid starts at the desks' least coordinates; with one, at its top left
    corner (``PAD`` from the plan's), and the plan covers it."""
    if not desks and backdrop is None:
        return [], ""
    if backdrop is None:
        min_x, min_y = min(d.x for d in desks), min(d.y for d in desks)
    else:
        min_x = min_y = 0
    boxes = [(PAD + (d.x - min_x) * CELL, PAD + (d.y - min_y) * CELL) for d in desks]
    right, bottom = (PAD + backdrop.width, PAD + backdrop.height) if backdrop else (0, 0)
    width = max([left + BOX_W for left, _ in boxes] + [right]) + PAD
    height = max([top + BOX_H for _, top in boxes] + [bottom]) + PAD
    return boxes, f"0 0 {width:g} {height:g}"


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
) -> tuple[list[PlanDesk], str, Backdrop | None]:
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
    mine = await _mine(conn, person_id, query)
    backdrop = backdrop_of(await plan_of_floor(conn, query.floor))
    desks, box = plan_of(found, start <= now < end, person_id, mine, backdrop)
    return desks, box, backdrop


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


def floor_choices(places: list[PlanZone]) -> list[tuple[str, str]]:
    """Every floor (id, "building · floor"), for a console page's floor picker."""
    return list(dict.fromkeys((p.floor_id, f"{p.building_name} · {p.floor_name}") for p in places))


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
    backdrop: Backdrop | None = None
    async with ports.pool().acquire() as conn:
        places = await plan_zones(conn)
        try:
            query = query or read_query(values, places, person, now)
        except BadField as exc:
            bad = exc
        else:
            desks, box, backdrop = await _desks(conn, query, person.id, now)
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
        backdrop=backdrop,
        sizes=(BOX_W, BOX_H, PAD),
        width=plan_width(box),
        shapes=SHAPES,
        states=DESK_STATES,
        fields=FIELDS,
        bad=bad,
        refused=refused.message if refused else None,
        day_text=i18n.long_date(query.day, lang) if query else "",
        clock=lambda moment: i18n.clock_time(moment, query.tz if query else UTC_ZONE, lang),
        here=f"/desks?{urlencode(values)}",  # a refused booking's POST too: the plan again
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
        desks, _, _ = await _desks(conn, query, person.id, ports.now())
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
        max_count=MAX_OCCURRENCES,
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
    """Book the path's desk for the form's window, for me or (a delegate) a colleague;
    refused: the plan of the desk's zone for that window, and why."""
    ports, me = request.app[PORTS], person_of(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    when, desk_id = _when(form), request.match_info["desk"]
    try:
        place = await _place(request, desk_id)
    except BookingError as exc:
        return await _find_page(request, when, refusal(exc))
    try:
        day, start, end = read_window(when, place.zone_info, ports.now())
        whom = await _for_whom(request, form.get("for") or me.id)
        cmd = BookDesk(
            desk_id,
            whom.id,
            whom.agency,
            whom.unit,
            datetime.combine(day, start, place.zone_info),
            datetime.combine(day, end, place.zone_info),
            me.id,
        )
        repeat = _repeat(form, cmd)
        if repeat is None:
            await service.book(ports.booker(), ports.places(), cmd, ports.now())
        else:
            async with ports.pool().acquire() as conn:
                done = await service.book_series(conn, ports.places(), cmd, repeat, ports.now())
            if not done.booked:
                raise done.refused[0][2]  # none: why the first was refused
            partly = "-partly" if done.refused else ""
            raise web.HTTPSeeOther(f"/bookings?done=series{partly}")
    except BadField:
        return await _find_page(request, when)
    except BookingError as exc:
        where = {"building": place.building_id, "zone": place.zone_id}
        return await _find_page(request, {**when, **where}, refusal(exc))
    raise web.HTTPSeeOther("/bookings?done=booked")


def _repeat(form: Mapping[str, str], cmd: BookDesk) -> Recurrence | None:
    """The series the form asks for (``repeat`` daily or weekly, ``count`` times in
    all), None for one booking; anything else is a 400 naming the field."""
    repeat = form.get("repeat", "")
    if not repeat:
        return None
    if repeat not in tuple(Repeat):
        raise web.HTTPBadRequest(reason="repeat: daily, weekly or nothing")
    count = form.get("count", "")
    if not count.isdigit() or not 2 <= int(count) <= MAX_OCCURRENCES:
        raise web.HTTPBadRequest(reason=f"count: 2 to {MAX_OCCURRENCES} times")
    return Recurrence(cmd.start, cmd.end, Repeat(repeat), int(count))


async def _place(request: web.Request, desk_id: str) -> DeskPlace:
    """The desk's place as the booking will check it (cached; else read: ``UnknownDesk``)."""
    ports = request.app[PORTS]
    cached = ports.places().cached(desk_id)
    if cached is not None:
        return cached
    async with ports.pool().acquire() as conn:
        return await ports.places().fresh(conn, desk_id)


async def _for_whom(request: web.Request, person_id: str) -> Person:
    """Me, or the colleague a delegate books for (``NotYourDelegation`` for anyone else)."""
    me = person_of(request)
    if person_id == me.id:
        return me
    async with request.app[PORTS].pool().acquire() as conn:
        return await service.for_whom(
            conn, me, person_id, manager=False, delegate=me.role is Role.DELEGATE
        )
