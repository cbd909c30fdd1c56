"""One PostgreSQL LISTEN connection, kept up: the helper every LISTENer shares
(the SSE hub, api/stream.py; the desk displays, ingest/display.py; ``ikn
broker-sync``, ikn/broker_sync.py).

A :class:`Listener` names its channels and what to call with each notification's
payload (the caller bounds what it keeps: a ``deque(maxlen=...)``, a set, a flag).
``run(stop, attempt)`` calls ``attempt(stop)`` again and again, after a delay from
``retry_s`` (the n-th failure in a row waits ``retry_s[n]``, the last one repeating),
until ``stop`` is set; a lost connection or a database error is logged with
``message``, not raised. Inside an attempt, ``async with listener.connect(stop) as
session`` opens the dedicated connection (asyncpg's ``add_listener`` needs one of
its own, outside any pool); ``await session.listen()`` starts LISTENing (after what
must come first, such as taking an advisory lock), and ``await session.wait()``
returns after a notification, the loss of the connection, ``stop``, or ``within`` s;
``session.done`` says whether to go on. Leaving the block closes the connection
(at most ``CLOSE_TIMEOUT_S``); ``terminate()`` cuts it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg

from ikn_store.errors import CONNECTION_LOST

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
RECOVERABLE = (*CONNECTION_LOST, asyncpg.PostgresError, TimeoutError)

Notified = Callable[[str], None]  # the payload


class Session:
    """One connection of a :class:`Listener`, while an attempt holds it."""

    def __init__(
        self, conn: asyncpg.Connection, stop: asyncio.Event, channels: Mapping[str, Notified]
    ) -> None:
        self.conn = conn
        self._stop = stop
        self._channels = channels
        self._wake = asyncio.Event()
        self.lost = False
        self.notified = False  # since the last wait()

    @property
    def done(self) -> bool:
        """``stop`` is set or the connection is gone: leave the block."""
        return self._stop.is_set() or self.lost

    async def listen(self) -> None:
        """LISTEN on every channel; notifications call their callbacks from now on."""
        self.conn.add_termination_listener(self._on_lost)
        for channel, notified in self._channels.items():
            await self.conn.add_listener(channel, self._callback(notified))

    async def wait(self, within: float | None = None) -> None:
        """Until a notification came (``notified``), the connection went, ``stop`` was
        set, or ``within`` seconds passed."""
        self.notified = False
        if not self._wake.is_set() and not self.done:
            stopping = asyncio.ensure_future(self._stop.wait())
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait(
                    {stopping, woken}, timeout=within, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stopping.cancel()
                woken.cancel()
        self.notified = self._wake.is_set() and not self.lost
        self._wake.clear()

    def clear(self) -> None:
        """Forget the notifications so far: the next ``wait`` waits for a new one."""
        self._wake.clear()

    def _callback(self, notified: Notified) -> Callable[[Any, int, str, str], None]:
        def on_notification(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            notified(payload)
            self._wake.set()

        return on_notification

    def _on_lost(self, _conn: Any) -> None:
        self.lost = True
        self._wake.set()


class Listener:
    """A LISTEN connection to ``dsn`` for ``channels`` (name -> callback)."""

    def __init__(
        self,
        dsn: str,
        channels: Mapping[str, Notified],
        *,
        application_name: str | None = None,
    ) -> None:
        self._dsn = dsn
        self._channels = channels
        self._settings = {"application_name": application_name} if application_name else None
        self._conn: asyncpg.Connection | None = None
        self._failures = 0  # attempts failed in a row (reset once connected)

    async def run(
        self,
        stop: asyncio.Event,
        attempt: Callable[[asyncio.Event], Awaitable[None]],
        *,
        retry_s: Sequence[float],
        message: str,
        after: Callable[[], None] | None = None,
    ) -> None:
        """Run ``attempt(stop)`` until ``stop`` is set, again after each return or
        recoverable failure (logged with ``message`` % (exception, delay)); ``after``
        runs after each attempt."""
        while not stop.is_set():
            try:
                await attempt(stop)
            except RECOVERABLE as exc:
                delay = retry_s[min(self._failures, len(retry_s) - 1)]
                log.warning(message, exc, delay)
            else:
                delay = retry_s[min(self._failures, len(retry_s) - 1)]
            finally:
                if after is not None:
                    after()
            self._failures += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    @contextlib.asynccontextmanager
    async def connect(self, stop: asyncio.Event) -> AsyncIterator[Session]:
        """The dedicated connection, closed when the block ends."""
        conn = self._conn = await asyncpg.connect(
            self._dsn, timeout=CONNECT_TIMEOUT_S, server_settings=self._settings
        )
        self._failures = 0
        try:
            yield Session(conn, stop, self._channels)
        finally:
            self._conn = None
            if not conn.is_closed():
                with contextlib.suppress(*RECOVERABLE):
                    await conn.close(timeout=CLOSE_TIMEOUT_S)

    def terminate(self) -> None:
        """Cut the connection at once (a stop that cannot wait for the database)."""
        if self._conn is not None:
            self._conn.terminate()
