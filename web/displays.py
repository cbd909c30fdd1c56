"""The displays (issue 19): a lobby kiosk per building (``/display/kiosk/{building}``:
free desks per floor now, large, live; the door's rotating check-in code), a desk's
own display (``/display/desk/{desk}``: free, booked until, occupied; the desk's QR)
and a zone's (``/display/zone/{zone}``: its desks free, booked, occupied, and its
people counted against its capacity, as on the console's live floor map).

A display signs in once at ``/display`` with a display token (``ikn display create``,
``ikn_store.displays``), which the browser then keeps in the cookie ``ikn_display``.
A token is bound to one building: its kiosk and the displays of its desks and zones; another
building's are refused (403), and it opens no person's page (those need a person's
session) nor the API (bearer tokens only). Nothing a display shows names a person.

Both pages are live over SSE from the process's one desk-event hub (``DeskEventHub``,
as the console's floor map): each frame is JSON mapping an element's id to its new
HTML, which ``static/display.js`` puts in place."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import AsyncGenerator
from datetime import date
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import asyncpg
import orjson
from aiohttp import web
from markupsafe import Markup

from ikn_core.door_code import code_at, next_change
from ikn_service import displays as service
from ikn_service.desk_feed import Change, Events
from ikn_store.displays import Display, display_of
from web import i18n, sessions
from web.checkin import qr_svg
from web.console import serve_events
from web.labels import DESK_SIGNS
from web.pages import render
from web.ports import PORTS, Handler

routes = web.RouteTableDef()
COOKIE = "ikn_display"
COOKIE_MAX_AGE_S = 400 * 86_400  # the most a browser keeps a cookie: revoke to end it
DISPLAY = web.RequestKey("web_display", Display)
FLOORS_EVERY_S = 1.0  # a kiosk reads its building's desks at most this often on events
NOT_A_DISPLAY = i18n.gettext_noop(
    "This is not a display token, or it was revoked. Ask an administrator for a new one."
)


async def _display(request: web.Request) -> Display | None:
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    async with request.app[PORTS].pool().acquire() as conn:
        return await display_of(conn, token)


def on_display(handler: Handler) -> Handler:
    """A display's page: without a live display token, the display's sign-in page."""

    @functools.wraps(handler)
    async def page(request: web.Request) -> web.StreamResponse:
        found = await _display(request)
        if found is None:
            raise web.HTTPSeeOther("/display")
        request[DISPLAY] = found
        return await handler(request)

    return page


def _clock() -> float:
    return asyncio.get_running_loop().time()


def _own(request: web.Request, building_id: str) -> None:
    if request[DISPLAY].building_id != building_id:
        raise web.HTTPForbidden(reason="This display is of another building")


@routes.get("/display")
async def sign_in_page(request: web.Request) -> web.StreamResponse:
    """Where a display is signed in with its token (once: the cookie keeps it)."""
    if await _display(request) is not None:
        raise web.HTTPSeeOther("/display/kiosk")
    return await _sign_in_form(request)


async def _sign_in_form(request: web.Request, refused: str | None = None) -> web.Response:
    new_id = None
    if sessions.SESSION not in request:  # a visitor's session: the form's CSRF token
        new_id, request[sessions.SESSION] = await sessions.start(request, None)
    status = 200 if refused is None else 403
    response = render(request, "display_signin.html", refused=refused, status=status)
    if new_id is not None:
        sessions.set_cookie(request, response, new_id)
    return response


@routes.post("/display")
async def sign_in(request: web.Request) -> web.StreamResponse:
    token = str((await request.post()).get("token", "")).strip()
    async with request.app[PORTS].pool().acquire() as conn:
        found = await display_of(conn, token) if token else None
    if found is None:
        return await _sign_in_form(request, NOT_A_DISPLAY)
    response = web.HTTPSeeOther("/display/kiosk")
    response.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_MAX_AGE_S,
        path="/display",
        httponly=True,
        samesite="Strict",
        secure=request.app[PORTS].over_tls(request),
    )
    raise response


@routes.get("/display/kiosk")
@on_display
async def my_kiosk(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(f"/display/kiosk/{request[DISPLAY].building_id}")


@routes.get("/display/kiosk/{building}")
@on_display
async def kiosk_page(request: web.Request) -> web.StreamResponse:
    building = request.match_info["building"]
    _own(request, building)
    feed = _KioskFeed(request, building)
    found = await feed.read()
    return render(
        request,
        "kiosk.html",
        kiosk=found,
        stream=f"/display/kiosk/{building}/events",
        **feed.floors_context(found),
        **feed.door_context(),
    )


@routes.get("/display/kiosk/{building}/events")
@on_display
async def kiosk_events(request: web.Request) -> web.StreamResponse:
    """The kiosk's floors as they change, and the door's code at each new window."""
    building = request.match_info["building"]
    _own(request, building)
    return await _stream(request, {"building": building}, _KioskFeed(request, building))


@routes.get("/display/desk/{desk}")
@on_display
async def desk_page(request: web.Request) -> web.StreamResponse:
    feed = await _DeskFeed.of(request)
    url = f"{sessions.own_origin(request)}/checkin/{feed.place_id}"
    return render(
        request,
        "desk_display.html",
        desk=feed.place,
        qr=qr_svg(url),
        stream=f"/display/desk/{feed.place_id}/events",
        **feed.sign_context(feed.place),
    )


@routes.get("/display/desk/{desk}/events")
@on_display
async def desk_events(request: web.Request) -> web.StreamResponse:
    feed = await _DeskFeed.of(request)
    return await _stream(request, {"zone": feed.place.zone_id}, feed)


@routes.get("/display/zone/{zone}")
@on_display
async def zone_page(request: web.Request) -> web.StreamResponse:
    feed = await _ZoneFeed.of(request)
    return render(
        request,
        "zone_display.html",
        stream=f"/display/zone/{feed.place_id}/events",
        **feed.counts_context(feed.place),
    )


@routes.get("/display/zone/{zone}/events")
@on_display
async def zone_events(request: web.Request) -> web.StreamResponse:
    """The zone's counts after each of its desk events and at each heartbeat (a people
    count comes without a desk event)."""
    feed = await _ZoneFeed.of(request)
    return await _stream(request, {"zone": feed.place_id}, feed)


class _Feed:
    """What one display's stream sends: ``first`` the whole page's live parts, ``frame``
    after a desk event (None: a heartbeat), ``tick`` at ``due`` (None: never)."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.ports = request.app[PORTS]
        self.lang = i18n.language_of(request)
        self.last: dict[str, str] = {}

    def _html(self, template: str, **context: Any) -> str:
        return aiohttp_jinja2.render_string(template, self.request, {"lang": self.lang, **context})

    def changed(self, parts: dict[str, str]) -> bytes:
        """The frame of the parts that differ from what was sent ("": none)."""
        new = {k: v for k, v in parts.items() if self.last.get(k) != v}
        self.last.update(new)
        return b"data: %s\n\n" % orjson.dumps(new) if new else b""

    async def first(self) -> bytes:
        raise NotImplementedError

    async def frame(self, event: Change | None) -> bytes:
        raise NotImplementedError

    def due(self) -> float | None:
        return None

    async def tick(self) -> bytes:
        return b""


class _KioskFeed(_Feed):
    def __init__(self, request: web.Request, building: str) -> None:
        super().__init__(request)
        self.building = building
        self.key = request.app[sessions.SETTINGS].display_key
        self.zone = ZoneInfo("UTC")  # the building's, once read
        self.dirty = False  # a desk event came within FLOORS_EVERY_S of the last read
        self.quiet_until = 0.0  # no floors read before then (the event loop's clock)

    async def read(self) -> service.Kiosk:
        async with self.ports.pool().acquire() as conn:
            found = await service.kiosk(conn, self.building, self.ports.now())
        if found is None:
            raise web.HTTPNotFound(reason="building: no such building")
        self.zone = found.zone
        return found

    def floors_context(self, found: service.Kiosk) -> dict[str, Any]:
        return {"floors": found.floors, "date_text": i18n.long_date(self._today(), self.lang)}

    def _today(self) -> date:
        return self.ports.now().astimezone(self.zone).date()

    def door_context(self) -> dict[str, Any]:
        """The door's code now, as a QR of its address (none without a display key)."""
        if self.key is None:
            return {"door": None}
        now = self.ports.now()
        code = code_at(self.key, self.building, now)
        url = f"{sessions.own_origin(self.request)}/door?{code.query()}"
        ends = i18n.clock_time(next_change(now), self.zone, self.lang, seconds=True)
        return {"door": {"url": url, "svg": qr_svg(url), "until": ends}}

    async def _floors(self) -> dict[str, str]:
        context = self.floors_context(await self.read())
        return {
            "kiosk-floors": self._html("kiosk_floors.html", **context),
            "kiosk-date": str(Markup.escape(context["date_text"])),
        }

    def _door(self) -> dict[str, str]:
        return {"door-code": self._html("door_code.html", **self.door_context())}

    async def first(self) -> bytes:
        self.quiet_until = _clock() + FLOORS_EVERY_S
        return self.changed({**await self._floors(), **self._door()})

    async def frame(self, event: Change | None) -> bytes:
        """The floors again after a desk event, at most every ``FLOORS_EVERY_S`` (a busy
        building's events in between are read together, at the tick); at a heartbeat
        always (a booking changes a count without an event)."""
        if event is not None and _clock() < self.quiet_until:
            self.dirty = True
            return b""
        self.dirty, self.quiet_until = False, _clock() + FLOORS_EVERY_S
        return self.changed(await self._floors())

    def due(self) -> float | None:
        waits = [self.quiet_until - _clock()] if self.dirty else []
        if self.key is not None:
            now = self.ports.now()
            waits.append((next_change(now) - now).total_seconds())
        return max(0.05, min(waits)) if waits else None

    async def tick(self) -> bytes:
        floors = b""
        if self.dirty and _clock() >= self.quiet_until:
            floors = await self.frame(None)
        door = self.changed(self._door()) if self.key is not None else b""
        return floors + door


class _Placed(Protocol):
    @property
    def building_id(self) -> str: ...


P = TypeVar("P", bound=_Placed)


class _PlaceFeed(_Feed, Generic[P]):
    """A feed of one place of a building (a desk, a zone): ``place`` as the page read it."""

    kind: ClassVar[str]  # the route's part and the field a 404 names
    place_id: str
    place: P

    @classmethod
    async def of(cls, request: web.Request) -> Self:
        """The place's feed (404: no such place; 403: another building's)."""
        feed = cls(request)
        feed.place_id = request.match_info[cls.kind]
        feed.place = await feed.read()
        _own(request, feed.place.building_id)
        return feed

    async def load(self, conn: asyncpg.Connection) -> P | None:
        raise NotImplementedError

    async def read(self) -> P:
        async with self.ports.pool().acquire() as conn:
            found = await self.load(conn)
        if found is None:
            raise web.HTTPNotFound(reason=f"{self.kind}: no such {self.kind}")
        return found


class _DeskFeed(_PlaceFeed[service.DeskDisplay]):
    kind = "desk"

    async def load(self, conn: asyncpg.Connection) -> service.DeskDisplay | None:
        return await service.desk_display(conn, self.place_id, self.ports.now())

    def sign_context(self, desk: service.DeskDisplay) -> dict[str, Any]:
        until = i18n.clock_time(desk.until, desk.zone, self.lang) if desk.until else None
        return {"sign": desk.sign.value, "signs": DESK_SIGNS, "until": until}

    async def _sign(self) -> dict[str, str]:
        desk = await self.read()
        return {"desk-sign": self._html("desk_sign.html", **self.sign_context(desk))}

    async def first(self) -> bytes:
        return self.changed(await self._sign())

    async def frame(self, event: Change | None) -> bytes:
        if event is not None and event.desk_id != self.place_id:
            return b""
        return self.changed(await self._sign())


class _ZoneFeed(_PlaceFeed[service.ZoneDisplay]):
    kind = "zone"

    async def load(self, conn: asyncpg.Connection) -> service.ZoneDisplay | None:
        return await service.zone_display(conn, self.place_id, self.ports.now())

    def counts_context(self, zone: service.ZoneDisplay) -> dict[str, Any]:
        counted = zone.count.reported_at
        at = i18n.clock_time(counted, zone.zone, self.lang) if counted is not None else None
        return {"zone": zone, "sign_words": DESK_SIGNS, "counted": at}

    async def first(self) -> bytes:
        return await self.frame(None)

    async def frame(self, event: Change | None) -> bytes:
        context = self.counts_context(await self.read())
        return self.changed({"zone-now": self._html("zone_counts.html", **context)})


async def _stream(request: web.Request, filters: dict[str, str], feed: _Feed) -> web.StreamResponse:
    """The display's SSE answer: ``feed.first()``, then a frame per desk event under
    ``filters`` and per heartbeat, and ``feed.tick()`` whenever ``feed.due()`` says.
    Each display page is a holder of its own (its token's hash and the path: one token
    may sign in several displays of a building), within ``IKN_SSE_MAX_PER_TOKEN``. The
    stream re-checks its token every ``IKN_SSE_RECHECK_S`` and ends once it is revoked."""
    token = request.cookies.get(COOKIE, "")
    holder = hashlib.sha256(f"{token}\n{request.path}".encode()).digest()
    building = request[DISPLAY].building_id

    async def allowed() -> bool:
        async with request.app[PORTS].pool().acquire() as conn:
            found = await display_of(conn, token)
        return found is not None and found.building_id == building

    watch = (
        request.app[PORTS]
        .desk_feed()
        .watch(filters, holder=holder, last=None, allowed=allowed, bookings=True)
    )
    return await serve_events(request, watch, functools.partial(_frames, feed=feed))


async def _frames(events: Events, feed: _Feed) -> AsyncGenerator[bytes, None]:
    """The feed's frames: its first, then from the hub's events and the feed's own
    timer. Closed, it cancels its wait on the hub (then the hub's generator may close)."""
    yield await feed.first()
    pending = asyncio.ensure_future(anext(events))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=feed.due())
            if pending not in done:
                yield await feed.tick()
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            yield await feed.frame(event) + (b": keepalive\n\n" if event is None else b"")
            pending = asyncio.ensure_future(anext(events))
    finally:
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await pending
