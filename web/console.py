"""The facility managers' console (facility managers and admins; anyone else 403):
the live floor map (``/console/floor``), every desk in its state by colour and by
shape, updated from the same desk events as the API's SSE stream
(``/console/floor/events``, JSON over SSE; docs/web.md, "The console")."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from ikn_service import live_floor as service
from ikn_service.desk_feed import Events, NotListening, TooManyStreams
from ikn_store.fleet.devices import DeskEvent
from ikn_store.floor_plans import plan_of
from ikn_store.live_floor import BookingChange, last_desk_event
from ikn_store.spaces import plan_zones
from web import i18n, sessions
from web.desks import BOX_H, BOX_W, PAD, backdrop_of, floor_choices, layout, plan_width
from web.labels import LIVE_STATES
from web.pages import MANAGERS, manager_of, render, signed_in
from web.ports import PORTS, Ports

Gettext = Callable[[str], str]
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

routes = web.RouteTableDef()
# Each state's mark inside its desk and in the legend (centred on 0,0), so that no
# state is told by colour alone; which are filled is the style sheet's (.live-*).
SHAPES = {
    "free": "M-9 0a9 9 0 1 0 18 0a9 9 0 1 0 -18 0Z",
    "booked": "M-8-8L8 8M8-8L-8 8",
    "checked_in": "M-9 0L-3 7L9-7",
    "occupied": "M-8-8H8V8H-8Z",
    "ghost": "M0-9L9 8H-9Z",
    "unbooked_use": "M0-10L10 0L0 10L-10 0Z",
    "offline": "M-9-9L9 9M-9 9L9-9M-9 0a9 9 0 1 0 18 0a9 9 0 1 0 -18 0Z",
    "disabled": "M-9-3H9V3H-9Z",
    "assigned": "M-7-1H7V9H-7ZM-4-1V-5A4 4 0 0 1 4-5V-1",  # a padlock: not shown
}


@routes.get("/console/floor")
@signed_in
async def floor_page(request: web.Request) -> web.StreamResponse:
    manager_of(request)
    ports = request.app[PORTS]
    now = ports.now()
    async with ports.pool().acquire() as conn:
        places = await plan_zones(conn)
        floors = floor_choices(places)
        chosen = request.query.get("floor", floors[0][0] if floors else "")
        if chosen not in dict(floors):
            raise web.HTTPNotFound(reason="floor: no such floor")
        after = await last_desk_event(conn)  # before the read: the stream resumes here
        floor = await service.read_floor(conn, chosen, now)
        backdrop = backdrop_of(await plan_of(conn, chosen))
    lang = i18n.language_of(request)
    zone = ZoneInfo(floor.tz or "UTC")
    boxes, box = layout(floor.desks, backdrop)
    at = {d.desk_id: xy for d, xy in zip(floor.desks, boxes, strict=True)}
    counts = {key: 0 for key in LIVE_STATES}
    for desk in floor.desks:
        counts[desk.state.value] += 1
    return render(
        request,
        "console_floor.html",
        floors=floors,
        chosen=chosen,
        floor=floor,
        at=at,
        box=box,
        width=plan_width(box),
        sizes=(BOX_W, BOX_H, PAD),
        backdrop=backdrop,
        shapes=SHAPES,
        states=LIVE_STATES,
        counts=counts,
        clock=lambda moment: i18n.clock_time(moment, zone, lang),
        now=now,
        tzname=now.astimezone(zone).tzname(),
        stream=f"/console/floor/events?floor={chosen}&after={after}",
    )


@routes.get("/console/floor/events")
@signed_in
async def floor_events(request: web.Request) -> web.StreamResponse:
    """The floor's desks as they change, each a JSON event (its new state, words, mark
    and zone count): first every desk as it is now (``refresh``, no id), then one per
    desk event (with its id; ``Last-Event-ID`` or ``after`` resumes), one per booking
    change that changed its desk's state (no id: a resumed stream's refresh covers
    those it missed), and at each heartbeat the desks whose state changed with time
    alone (a booking starting or ending, a ghost)."""
    manager_of(request)
    ports = request.app[PORTS]
    floor_id = request.query.get("floor", "")
    last = _resume_from(request)
    async with ports.pool().acquire() as conn:  # else a stream of nothing, held open
        if floor_id not in dict(floor_choices(await plan_zones(conn))):
            raise web.HTTPNotFound(reason="floor: no such floor")
    holder = hashlib.sha256(request[sessions.SESSION_ID].encode()).digest()
    floor = _FloorFeed(ports, floor_id, i18n.language_of(request))

    async def allowed() -> bool:
        return await sessions.still_signed_in(request, MANAGERS)

    watch = ports.desk_feed().watch(
        {"floor": floor_id}, holder=holder, last=last, allowed=allowed, bookings=True
    )

    async def frames(events: Events) -> AsyncGenerator[bytes, None]:
        yield await floor.changed()
        async for event in events:
            yield await floor.frame(event)

    return await serve_events(request, watch, frames)


async def serve_events(
    request: web.Request,
    watch: AbstractAsyncContextManager[Events],
    frames: Callable[[Events], AsyncGenerator[bytes, None]],
) -> web.StreamResponse:
    """An SSE answer of the ``frames`` made from the hub's ``watch`` (the floor map's,
    the displays'); 503 with ``Retry-After`` when the hub cannot take a stream now
    (both raised on opening only: the EventSource tries again, ``retry``)."""
    try:
        async with watch as events:
            response = web.StreamResponse(headers=SSE_HEADERS)
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n")
            # closed here, before the watch: a frame maker awaiting the hub is stopped first
            async with contextlib.aclosing(frames(events)) as made:
                with contextlib.suppress(ConnectionResetError):
                    async for frame in made:
                        await response.write(frame)
            return response
    except (NotListening, TooManyStreams):
        raise web.HTTPServiceUnavailable(headers={"Retry-After": "5"}) from None


class _FloorFeed:
    """One stream's floor: what it has sent of each desk, and the frames to send."""

    def __init__(self, ports: Ports, floor_id: str, lang: str) -> None:
        self.ports, self.floor_id, self.lang = ports, floor_id, lang
        self.gettext = i18n.load(lang).gettext
        self.sent: dict[str, service.LiveState] = {}

    def _data(
        self, desk: service.LiveDesk, zone_row: service.ZoneRow, tz: str, refresh: bool
    ) -> bytes:
        self.sent[desk.desk_id] = desk.state
        data = _event_json(desk, zone_row, self.gettext, ZoneInfo(tz), self.lang)
        return b"data: %s\n\n" % orjson.dumps({**data, "refresh": refresh})

    async def changed(self) -> bytes:
        """Every desk whose state differs from the one last sent (all, at first)."""
        now = self.ports.now()
        async with self.ports.pool().acquire() as conn:
            floor = await service.read_floor(conn, self.floor_id, now)
        zones = {z.zone_id: z for z in floor.zones}
        return b"".join(
            self._data(d, zones[d.zone_id], floor.tz or "UTC", True)
            for d in floor.desks
            if self.sent.get(d.desk_id) is not d.state
        )

    async def frame(self, event: DeskEvent | BookingChange | None) -> bytes:
        """The frame of ``event``: a desk event's desk in its state now, with its id; a
        booking change's desk when its state changed, without; at a heartbeat (None)
        the desks changed since and a keep-alive."""
        if event is None:
            return await self.changed() + b": keepalive\n\n"
        async with self.ports.pool().acquire() as conn:
            found = await service.desk_now(conn, event.desk_id, self.ports.now())
        if found is None:  # the desk is gone since
            return b""
        state = found[0].state
        if self.sent.get(event.desk_id) is state and (
            isinstance(event, BookingChange) or state is service.LiveState.ASSIGNED
        ):  # nothing new to show, or (an assigned desk) a change not to be told
            return b""
        if isinstance(event, BookingChange):
            return self._data(*found, event.tz, False)
        return b"id: %d\n" % event.id + self._data(*found, event.tz, False)


def _resume_from(request: web.Request) -> int | None:
    name = "Last-Event-ID" if request.headers.get("Last-Event-ID") else "after"
    raw = request.headers.get("Last-Event-ID") or request.query.get("after", "")
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise web.HTTPBadRequest(reason=f"{name}: a desk event id (a whole number)")
    return int(raw)


def _event_json(
    desk: service.LiveDesk,
    zone_row: service.ZoneRow,
    gettext: Gettext,
    zone: ZoneInfo,
    lang: str,
) -> dict[str, Any]:
    state = desk.state.value
    return {
        "desk": desk.desk_id,
        "state": state,
        "label": gettext(LIVE_STATES[state]),
        "aria": gettext("Desk %(desk)s, %(state)s")
        % {"desk": desk.desk_id, "state": gettext(LIVE_STATES[state])},
        "mark": SHAPES[state],
        "since": _iso(desk.since),
        "since_text": i18n.clock_time(desk.since, zone, lang) if desk.since else "",
        "reported_at": _iso(desk.reported_at),
        "reported_text": i18n.clock_time(desk.reported_at, zone, lang) if desk.reported_at else "",
        "zone": {
            "id": zone_row.zone_id,
            "people": zone_row.people,
            "desks": zone_row.desks,
            "reported_at": _iso(zone_row.reported_at),
            "reported_text": (
                i18n.clock_time(zone_row.reported_at, zone, lang) if zone_row.reported_at else ""
            ),
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
