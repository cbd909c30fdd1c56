"""The live feed of desk changes: one LISTENer per process on ``ikn_desk_events``
(the trigger on ``desk_state`` notifies each new ``desk_events`` id at commit), which
reads the new events through the pool and fans them out to the open streams, each
through its own bounded queue (``QUEUE_SIZE``). The API's SSE stream
(``api/stream.py``) and the facility managers' live floor map (``web/console.py``)
both subscribe to the process's one hub.

It also LISTENs on ``ikn_booking_changes`` (the desk displays' channel: a booking of
the coming day made, checked in, cancelled, released or ended notifies its desk at
commit) and hands each such desk, placed, as a ``BookingChange`` to the subscribers
that asked for them (``bookings=True``: the floor map, whose desk state depends on the
booking in force). A booking change has no ``desk_events`` id: it is never replayed,
and a stream resumed with ``Last-Event-ID`` learns of those it missed from what it
reads of every desk when it opens (the floor map's ``refresh``).

Nothing is ever lost silently: a subscriber too slow to drain its queue is cut off (it
receives what was queued, then its stream ends), and so is every subscriber when the
listener connection drops or the process shuts down; a client resumes from the last
event id it received. A stream also ends once it is ``IKN_SSE_MAX_AGE_S`` old (an
hour): reconnecting, a browser may land on another API process, so that the streams
spread over the processes there are now, not only those that were up when they opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

import asyncpg

from ikn_core.errors import IknError
from ikn_core.settings import StreamSettings
from ikn_store.fleet.devices import DeskEvent, desk_events_after, desk_events_by_id
from ikn_store.listen import Listener
from ikn_store.live_floor import BookingChange, booking_changes

log = logging.getLogger(__name__)

CHANNEL = "ikn_desk_events"
BOOKING_CHANNEL = "ikn_booking_changes"  # payload: the desk id (sql/booking/bookings_display_*)
PENDING_DESKS = 10_000  # booking changes waiting for a dispatch; past it the oldest go
QUEUE_SIZE = 256  # events waiting for one client; past it the client is cut off
RETRY_S = 1.0
REPLAY_LANES = 2  # replays reading from the pool at once, per process
REPLAY_LIMIT = 10_000  # events replayed on one connection; past it the stream ends
REPLAY_PAGE = 1_000
HEARTBEAT_S = 15.0
READY_TIMEOUT_S = 10.0

Allowed = Callable[[], Awaitable[bool]]
Change = DeskEvent | BookingChange
Events = AsyncGenerator[Change | None, None]


class NotListening(IknError):
    """The hub's LISTEN has not (yet, or again) started: try again shortly."""


class TooManyStreams(IknError):
    """A new stream refused: the process (``scope`` "server") or the holder ("holder")
    already has ``limit`` open."""

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(f"at most {limit} live streams per {scope}")
        self.scope, self.limit = scope, limit


class Subscriber:
    """One open stream: its place filters and its bounded queue (None ends it);
    ``holder`` identifies its bearer token (a hash, never the token); ``bookings``:
    whether it also takes booking changes."""

    def __init__(
        self, filters: dict[str, str], holder: bytes = b"", *, bookings: bool = False
    ) -> None:
        self.filters = filters
        self.holder = holder
        self.bookings = bookings
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue(QUEUE_SIZE)
        self.ended = False

    def wants(self, event: Change) -> bool:
        if isinstance(event, BookingChange) and not self.bookings:
            return False
        places = {"building": event.building_id, "floor": event.floor_id, "zone": event.zone_id}
        return all(places[level] == value for level, value in self.filters.items())

    def offer(self, event: Change) -> bool:
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
        self._pending_desks: dict[str, None] = {}  # booking changes, in order, once each
        self._stop = asyncio.Event()
        self._listener = Listener(
            dsn, {CHANNEL: self._notified, BOOKING_CHANNEL: self._booking_notified}
        )
        self.ready = asyncio.Event()  # set while LISTEN is active
        self.dropped = 0  # subscribers cut off because their queue overflowed

    def subscribe(
        self, filters: dict[str, str], holder: bytes = b"", *, bookings: bool = False
    ) -> Subscriber:
        """A new stream for ``holder``; ``TooManyStreams`` when a limit is reached."""
        if len(self._subscribers) >= self.limits.total:
            raise TooManyStreams("server", self.limits.total)
        if self._held[holder] >= self.limits.per_token:
            raise TooManyStreams("holder", self.limits.per_token)
        sub = Subscriber(filters, holder, bookings=bookings)
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

    def _booking_notified(self, desk_id: str) -> None:
        self._pending_desks.pop(desk_id, None)
        self._pending_desks[desk_id] = None
        if len(self._pending_desks) > PENDING_DESKS:
            del self._pending_desks[next(iter(self._pending_desks))]

    async def _dispatch(self) -> None:
        ids, self._pending = self._pending, []
        desks, self._pending_desks = list(self._pending_desks), {}
        if not self._subscribers:
            return
        events: list[Change] = []
        async with self._pool.acquire(timeout=10) as conn:
            if ids:
                events += await desk_events_by_id(conn, ids)
            if desks and any(sub.bookings for sub in self._subscribers):
                events += await booking_changes(conn, desks)
        for event in events:
            for sub in list(self._subscribers):
                if sub.wants(event) and not sub.offer(event):
                    log.warning("SSE client too slow: queue of %d full, cutting it off", QUEUE_SIZE)
                    self.dropped += 1
                    self.unsubscribe(sub)
                    sub.end()

    @contextlib.asynccontextmanager
    async def watch(
        self,
        filters: dict[str, str],
        *,
        holder: bytes,
        last: int | None,
        allowed: Allowed,
        bookings: bool = False,
    ) -> AsyncIterator[Events]:
        """The desk events under ``filters`` for one long-lived answer: those after
        ``last`` replayed first, then live ones (with ``bookings``, the booking changes
        among them, never replayed); None when a heartbeat is due. It ends
        when the stream must (see the module), or when ``allowed`` (asked every
        ``recheck_s``) says its holder may no longer watch. The API's SSE stream and the
        console's floor map both read it and frame the events their own way.
        ``NotListening``, ``TooManyStreams``: none opened."""
        try:
            await asyncio.wait_for(self.ready.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            raise NotListening("the live stream is not listening yet") from None
        sub = self.subscribe(
            filters, holder, bookings=bookings
        )  # before the replay: nothing falls in between
        try:
            events = self._events(sub, filters, last=last, allowed=allowed)
            async with contextlib.aclosing(events):
                yield events
        finally:
            self.unsubscribe(sub)

    async def _events(
        self, sub: Subscriber, filters: dict[str, str], *, last: int | None, allowed: Allowed
    ) -> Events:
        loop = asyncio.get_running_loop()
        recheck_at = loop.time() + self.limits.recheck_s
        ends_at = loop.time() + self.limits.max_age_s

        async def gone() -> bool:
            """Past ``max_age_s``; or, every ``recheck_s``, whether the holder may no
            longer watch."""
            nonlocal recheck_at
            if loop.time() >= ends_at:
                return True
            if loop.time() < recheck_at:
                return False
            recheck_at = loop.time() + self.limits.recheck_s
            return not await allowed()

        replayed: set[int] = set()
        if last is not None:
            while len(replayed) < REPLAY_LIMIT:
                if await gone():
                    return
                async with self.replays, self._pool.acquire() as conn:
                    page = await desk_events_after(conn, last, REPLAY_PAGE, **filters)
                for missed in page:
                    yield missed
                    replayed.add(missed.id)
                    last = missed.id
                if len(page) < REPLAY_PAGE:
                    break
            else:
                return  # far behind: end here, the client resumes from what it got
        while not (sub.ended and sub.queue.empty()):
            if await gone():
                return
            wait_s = max(0.0, min(HEARTBEAT_S, recheck_at - loop.time(), ends_at - loop.time()))
            try:
                async with asyncio.timeout(wait_s):
                    event = await sub.queue.get()
            except TimeoutError:
                yield None
                continue
            if event is None:
                return
            if isinstance(event, BookingChange) or event.id not in replayed:
                yield event
