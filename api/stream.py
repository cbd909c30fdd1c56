"""``GET /api/v1/occupancy/stream``: desk state changes as Server-Sent Events.

One ``DeskEventHub`` per API process (``ikn_service.desk_feed``, which the live floor
map of the pages shares) holds a dedicated PostgreSQL connection that LISTENs on
``ikn_desk_events``, reads the new events through the pool and fans them out to the
open streams, each through its own bounded queue (``QUEUE_SIZE``).

Nothing is ever lost silently: a client too slow to drain its queue is cut off
(its queue overflowed: it receives what was queued, then the stream ends), and so is
every client when the listener connection drops or the API shuts down. The browser's
EventSource reconnects by itself with ``Last-Event-ID``, and the handler replays
every event with a greater id from ``desk_events`` before going live again.

Streams are bounded (``StreamSettings``): a bearer token holds at most
``per_token`` at once (429 beyond), a process ``total`` (503 beyond), both with
``Retry-After``; every ``recheck_s`` an open stream checks its token again and ends
when it has been revoked or has expired, or its role no longer may watch; each ends
after ``max_age_s`` (the client resumes with ``Last-Event-ID``); and at most
``REPLAY_LANES`` replays read from the pool at once, so that reconnecting clients
cannot take every pooled connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from api.auth import requires, still_allowed
from api.booking.places import check_places, place_filters
from api.params import digits
from api.problems import Problem, invalid_parameter
from api.state import POOL
from ikn_core.domain import DeskState, Role
from ikn_core.settings import StreamSettings
from ikn_service.desk_feed import QUEUE_SIZE, DeskEventHub, NotListening, TooManyStreams
from ikn_store.fleet.devices import DeskEvent

log = logging.getLogger(__name__)

LIMIT_RETRY_AFTER_S = 30  # what a client refused for too many streams is asked to wait
WATCHERS = frozenset({Role.FACILITY_MANAGER, Role.ADMIN})

__all__ = ["HUB", "QUEUE_SIZE", "routes", "setup"]
routes = web.RouteTableDef()


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


def last_event_id(request: web.Request) -> int | None:
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
    last = last_event_id(request)
    await _check_places(request, filters)

    async def allowed() -> bool:
        if await still_allowed(request, WATCHERS):
            return True
        log.info("SSE stream ended: its token no longer authenticates")
        return False

    hub = request.app[HUB]
    try:  # both raised on opening only, before any answer
        async with hub.watch(
            filters, holder=_holder(request), last=last, allowed=allowed
        ) as events:
            response = web.StreamResponse(headers=SSE_HEADERS)
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n")
            with contextlib.suppress(ConnectionResetError):
                async for event in events:  # never a BookingChange: not asked for
                    if event is None:
                        await response.write(b": keepalive\n\n")
                    elif isinstance(event, DeskEvent):
                        await response.write(_frame(event))
            return response
    except NotListening:
        raise Problem(503, "stream-unavailable", "The live stream is not listening yet") from None
    except TooManyStreams as exc:
        raise _refused(exc) from None


def _refused(exc: TooManyStreams) -> Problem:
    if exc.scope == "server":
        return Problem(
            503,
            "stream-unavailable",
            "Too many live streams are open on this server",
            f"at most {exc.limit}; try again later",
            retry_after_s=LIMIT_RETRY_AFTER_S,
        )
    return Problem(
        429,
        "too-many-streams",
        "This token already holds as many live streams as it may",
        f"at most {exc.limit} per token; close one first",
        retry_after_s=LIMIT_RETRY_AFTER_S,
    )


SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
