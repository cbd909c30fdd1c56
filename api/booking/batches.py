"""``POST /api/v1/bookings`` in batches: the bookings that arrive together share one
transaction, round trip and commit (``api.coalesce``, ``ikn_store.booking.bookings.book_batch``),
each still answered on its own: 201, or the 409 of its own conflict.

A booking with an ``Idempotency-Key`` is made on its own (its replay is decided by the
key's unique constraint, which a batch does not catch per item), as are the occurrences
of a series (``api.booking.series`` books them on one connection).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Sequence

import asyncpg
from aiohttp import web

from api.booking.http import PLACES
from api.coalesce import Coalescer
from api.state import POOL
from ikn_core.booking import BookDesk, BookingError
from ikn_store.booking import bookings as store
from ikn_store.booking.places import DeskPlace, PlaceCache
from ikn_store.people import prepare_token_lookup

log = logging.getLogger(__name__)

WARM_TIMEOUT_S = 10.0  # for each connection of the pool at start


class BatchedBooker:
    """An ``ikn_service.booking.Booker`` on the pool: inserts go in batches, reads one by one."""

    def __init__(self, pool: asyncpg.Pool, lanes: int) -> None:
        self._pool = pool
        self._batches: Coalescer[tuple[DeskPlace, BookDesk], store.Booked] = Coalescer(
            self._run, lanes=lanes, max_batch=store.BATCH_MAX
        )

    async def _run(
        self, items: Sequence[tuple[DeskPlace, BookDesk]]
    ) -> Sequence[store.Booked | BookingError]:
        async with self._pool.acquire() as conn:
            return await store.book_batch(conn, items)

    async def fresh_place(self, places: PlaceCache, desk_id: str) -> DeskPlace:
        async with self._pool.acquire() as conn:
            return await places.fresh(conn, desk_id)

    async def replayed(self, cmd: BookDesk) -> store.Booking | None:
        if cmd.idempotency_key is None:
            return None
        async with self._pool.acquire() as conn:
            return await store.OnConnection(conn).replayed(cmd)

    async def insert(self, place: DeskPlace, cmd: BookDesk) -> store.Booked:
        if cmd.idempotency_key is not None or cmd.series_id is not None:
            async with self._pool.acquire() as conn:
                return await store.OnConnection(conn).insert(place, cmd)
        return await self._batches((place, cmd))

    async def close(self) -> None:
        await self._batches.close()


BOOKER = web.AppKey("booker", BatchedBooker)


async def _prepare(conn: asyncpg.pool.PoolConnectionProxy) -> None:
    await prepare_token_lookup(conn)
    await store.prepare_batches(conn)


async def _warm(pool: asyncpg.Pool, places: PlaceCache) -> None:
    """Ready before the first request: every desk's place in memory, and on every
    connection of the pool the token lookup and the batch booking prepared (otherwise
    the first rush pays for 20 backends compiling and planning them at once)."""
    try:
        async with pool.acquire() as conn:
            kept = await places.warm(conn)
        connections: list[asyncpg.pool.PoolConnectionProxy] = []
        try:
            for _ in range(pool.get_size()):  # each a different one: all are held
                connections.append(await pool.acquire(timeout=WARM_TIMEOUT_S))
            # all at once: each backend compiles on its own (10 in turn took 1 s here)
            await asyncio.gather(*(_prepare(conn) for conn in connections))
        finally:
            for conn in connections:
                await pool.release(conn)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:  # not fatal: just slower
        log.warning("the API starts cold (%s): desks and statements are read on first use", exc)
    else:
        log.info("desk places in memory: %d; %d connections prepared", kept, len(connections))
    # What was made so far lives as long as the process: leave it out of the cyclic
    # GC's full collections, which otherwise stall every request in flight for tens of
    # milliseconds each time they walk it.
    gc.freeze()


def setup(app: web.Application, lanes: int) -> None:
    """The app's booker, made once the pool is there (and warmed, before the API
    answers), closed before it."""

    async def booker(app: web.Application) -> AsyncIterator[None]:
        app[BOOKER] = BatchedBooker(app[POOL], lanes)
        await _warm(app[POOL], app[PLACES])
        yield
        await app[BOOKER].close()

    app.cleanup_ctx.append(booker)
