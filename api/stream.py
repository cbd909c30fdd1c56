"""``GET /api/v1/occupancy/stream``: desk state changes as Server-Sent Events.

One ``DeskEventHub`` per API process holds a dedicated PostgreSQL connection that
LISTENs on ``ikn_desk_events`` (the trigger on ``desk_state`` notifies each new
``desk_events`` id at commit), reads the new events through the pool and fans them
out to the open streams, each through its own bounded queue (``QUEUE_SIZE``).

Nothing is ever lost silently: a client too slow to drain its queue is cut off
(its queue overflowed: it receives what was queued, then the stream ends), and so is
every client when the listener connection drops or the API shuts down. The browser's
EventSource reconnects by itself with ``Last-Event-ID``, and the handler replays
every event with a greater id from ``desk_events`` before going live again.

Streams are bounded (``StreamSettings``): a bearer token holds at most
``per_token`` at once (429 beyond), a process ``total`` (503 beyond), both with
``Retry-After``; every ``recheck_s`` an open stream checks its token again and ends
when it has been revoked or has expired, or its role no longer may watch; and at most
``REPLAY_LANES`` replays read from the pool at once, so that reconnecting clients
cannot take every pooled connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import asyncpg
import orjson
from aiohttp import web

from api.auth import requires, still_allowed
from api.booking.places import check_places, place_filters
from api.params import digits
from api.problems import Problem, invalid_parameter
from api.state import POOL
from ikn_core.domain import DeskState, Role
from ikn_core.settings import StreamSettings
from ikn_store.fleet.devices import DeskEvent, desk_events_after, desk_events_by_id
from ikn_store.listen import Listener

log = logging.getLogger(__name__)

CHANNEL = "ikn_desk_events"
QUEUE_SIZE = 256  # events waiting for one client; past it the client is cut off
REPLAY_LIMIT = 10_000  # events replayed on one connection; past it the stream ends
REPLAY_PAGE = 1_000
HEARTBEAT_S = 15.0
READY_TIMEOUT_S = 10.0
RETRY_S = 1.0
REPLAY_LANES = 2  # replays reading from the pool at once, per process
LIMIT_RETRY_AFTER_S = 30  # what a client refused for too many streams is asked to wait
WATCHERS = frozenset({Role.FACILITY_MANAGER, Role.ADMIN})

routes = web.RouteTableDef()


class Subscriber:
    """One open stream: its place filters and its bounded queue (None ends it);
    ``holder`` identifies its bearer token (a hash, never the token)."""

    def __init__(self, filters: dict[str, str], holder: bytes = b"") -> None:
        self.filters = filters
        self.holder = holder
        self.queue: asyncio.Queue[DeskEvent | None] = asyncio.Queue(QUEUE_SIZE)
        self.ended = False

    def wants(self, event: DeskEvent) -> bool:
        places = {"building": event.building_id, "floor": event.floor_id, "zone": event.zone_id}
        return all(places[level] == value for level, value in self.filters.items())

    def offer(self, event: DeskEvent) -> bool:
        """Queue ``event``; False when the queue is full (the subscriber must go)."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def end(self) -> None:
        self.ended = True
        with contextlib.suppress(asyncio.QueueFull):  # full: the handler ends after draining
            self.queue.put_nowait(None)


class DeskEventHub:
    """The process's one LISTENer, fanning desk events out to the open streams."""

    def __init__(self, dsn: str, pool: asyncpg.Pool, limits: StreamSettings | None = None) -> None:
        self._dsn = dsn
        self._pool = pool
        self.limits = limits or StreamSettings()
        self._subscribers: set[Subscriber] = set()
        self._held: Counter[bytes] = Counter()  # open streams per token holder
        self.replays = asyncio.Semaphore(REPLAY_LANES)
        self._pending: list[int] = []
        self._stop = asyncio.Event()
        self._listener = Listener(dsn, {CHANNEL: self._notified})
        self.ready = asyncio.Event()  # set while LISTEN is active
        self.dropped = 0  # subscribers cut off because their queue overflowed

    def subscribe(self, filters: dict[str, str], holder: bytes = b"") -> Subscriber:
        """A new stream for ``holder``; a Problem when a limit is reached."""
        if len(self._subscribers) >= self.limits.total:
            raise Problem(
                503,
                "stream-unavailable",
                "Too many live streams are open on this server",
                f"at most {self.limits.total}; try again later",
                retry_after_s=LIMIT_RETRY_AFTER_S,
            )
        if self._held[holder] >= self.limits.per_token:
            raise Problem(
                429,
                "too-many-streams",
                "This token already holds as many live streams as it may",
                f"at most {self.limits.per_token} per token; close one first",
                retry_after_s=LIMIT_RETRY_AFTER_S,
            )
        sub = Subscriber(filters, holder)
        self._subscribers.add(sub)
        self._held[holder] += 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
            self._held[sub.holder] -= 1
            if self._held[sub.holder] <= 0:
                del self._held[sub.holder]

    def end_all(self) -> None:
        for sub in list(self._subscribers):
            sub.end()
        self._subscribers.clear()
        self._held.clear()

    def stop(self) -> None:
        self._stop.set()
        self.end_all()

    async def run(self) -> None:
        await self._listener.run(
            self._stop,
            self._listen_once,
            retry_s=(RETRY_S,),
            message="desk event listener lost (%s); retrying in %.0f s",
            after=self._down,
        )

    def _down(self) -> None:
        self.ready.clear()
        self.end_all()  # the clients resume with Last-Event-ID: nothing is skipped

    async def _listen_once(self, stop: asyncio.Event) -> None:
        async with self._listener.connect(stop) as session:
            await session.listen()
            self.ready.set()
            try:
                while not session.done:
                    await session.wait()
                    await self._dispatch()
            finally:
                self.ready.clear()

    def _notified(self, payload: str) -> None:
        self._pending.append(int(payload))

    async def _dispatch(self) -> None:
        ids, self._pending = self._pending, []
        if not ids or not self._subscribers:
            return
        async with self._pool.acquire(timeout=10) as conn:
            events = await desk_events_by_id(conn, ids)
        for event in events:
            for sub in list(self._subscribers):
                if sub.wants(event) and not sub.offer(event):
                    log.warning("SSE client too slow: queue of %d full, cutting it off", QUEUE_SIZE)
                    self.dropped += 1
                    self.unsubscribe(sub)
                    sub.end()


HUB = web.AppKey("desk_event_hub", DeskEventHub)


def setup(app: web.Application, dsn: str, limits: StreamSettings | None = None) -> None:
    """Run the hub alongside ``app`` (after the pool exists); end open streams at shutdown."""

    async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
        hub = DeskEventHub(dsn, app[POOL], limits)
        task = asyncio.create_task(hub.run(), name="desk-event-hub")
        app[HUB] = hub
        yield
        hub.stop()
        await task

    async def end_streams(app: web.Application) -> None:
        if HUB in app:
            app[HUB].end_all()

    app.cleanup_ctx.append(hub_ctx)
    app.on_shutdown.append(end_streams)
    app.add_routes(routes)


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw == "":
        return None
    if not digits(raw) or len(raw) > 18:
        raise invalid_parameter("Last-Event-ID", "must be a desk event id (a whole number)")
    return int(raw)


def _frame(event: DeskEvent) -> bytes:
    tz = ZoneInfo(event.tz)
    data = {
        "desk": event.desk_id,
        "building": event.building_id,
        "floor": event.floor_id,
        "zone": event.zone_id,
        "state": DeskState.OCCUPIED if event.occupied else DeskState.FREE,
        "at": event.at.astimezone(tz).isoformat(),
        "sensor": event.device_id,
    }
    return b"id: %d\ndata: %s\n\n" % (event.id, orjson.dumps(data))


async def _check_places(request: web.Request, filters: dict[str, str]) -> None:
    async with request.app[POOL].acquire() as conn:
        await check_places(conn, filters)


def _holder(request: web.Request) -> bytes:
    """Who holds the stream: a hash of the request's bearer token."""
    return hashlib.sha256(request.headers.get("Authorization", "").encode()).digest()


@routes.get("/api/v1/occupancy/stream")
@requires(*WATCHERS)
async def stream(request: web.Request) -> web.StreamResponse:
    """Desk changes under the given places; ``Last-Event-ID`` replays what was missed."""
    filters = place_filters(request)
    last = _last_event_id(request)
    await _check_places(request, filters)
    hub = request.app[HUB]
    try:
        await asyncio.wait_for(hub.ready.wait(), READY_TIMEOUT_S)
    except TimeoutError:
        raise Problem(503, "stream-unavailable", "The live stream is not listening yet") from None
    # before the replay, so that nothing falls in between
    sub = hub.subscribe(filters, _holder(request))
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        with contextlib.suppress(ConnectionResetError):
            await _pump(request, response, sub, filters, last=last, hub=hub)
        return response
    finally:
        hub.unsubscribe(sub)


async def _pump(
    request: web.Request,
    response: web.StreamResponse,
    sub: Subscriber,
    filters: dict[str, str],
    *,
    last: int | None,
    hub: DeskEventHub,
) -> None:
    loop = asyncio.get_running_loop()
    recheck_at = loop.time() + hub.limits.recheck_s

    async def token_gone() -> bool:
        """Every ``recheck_s``: whether the token was revoked, expired or lost its role."""
        nonlocal recheck_at
        if loop.time() < recheck_at:
            return False
        recheck_at = loop.time() + hub.limits.recheck_s
        if await still_allowed(request, WATCHERS):
            return False
        log.info("SSE stream ended: its token no longer authenticates")
        return True

    replayed: set[int] = set()
    if last is not None:
        while len(replayed) < REPLAY_LIMIT:
            if await token_gone():
                return
            async with hub.replays, request.app[POOL].acquire() as conn:
                page = await desk_events_after(conn, last, REPLAY_PAGE, **filters)
            for missed in page:
                await response.write(_frame(missed))
                replayed.add(missed.id)
                last = missed.id
            if len(page) < REPLAY_PAGE:
                break
        else:
            return  # far behind: end here, the client resumes from what it got
    while not (sub.ended and sub.queue.empty()):
        if await token_gone():
            return
        wait_s = min(HEARTBEAT_S, max(0.0, recheck_at - loop.time()))
        try:
            async with asyncio.timeout(wait_s):
                event = await sub.queue.get()
        except TimeoutError:
            await response.write(b": keepalive\n\n")
            continue
        if event is None:
            return
        if event.id not in replayed:
            await response.write(_frame(event))
