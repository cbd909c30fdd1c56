"""Connection pools: created inside the running loop, never at import time."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import orjson
from asyncpg.pool import PoolAcquireContext

from ikn_core.setting import redact_url
from ikn_store.errors import OPENING_FAILED, DatabaseUnreachable

log = logging.getLogger(__name__)

# How long taking a connection from a pool may last, and (asyncpg applies the same
# budget) giving it back: waiting for a free one, opening a new one, and at release
# rolling back what was left open or waiting for a cancelled query to end. asyncpg
# waits for ever by default; a connection wedged by a database that went away mid-
# operation then holds its caller for ever too, and with it a service's shutdown.
ACQUIRE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0  # closing a pool politely; then its connections are cut

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS staging_readings (
    device_id text, stream uuid, seq bigint, ts timestamptz,
    received_at timestamptz, kind text, body jsonb
) ON COMMIT DELETE ROWS
"""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await _init_reader(conn)
    await conn.execute(STAGING_DDL)


async def _init_reader(conn: asyncpg.Connection) -> None:
    # jsonb's binary form is a version byte (1) and the JSON text: orjson both ways,
    # and usable by COPY, which speaks only binary.
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        format="binary",
        encoder=lambda v: b"\x01" + orjson.dumps(v),
        decoder=lambda b: orjson.loads(b[1:]),
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (a round trip per acquire: RESET ALL,
    UNLISTEN *, advisory unlock). asyncpg still rolls back an open transaction first.
    Code on these pools leaves no session state behind: settings are SET LOCAL,
    advisory locks are transaction-level, LISTEN has its own connection."""


class Pool(asyncpg.Pool):
    """asyncpg's pool, where ``acquire()`` gives up after ``acquire_timeout`` seconds
    (``TimeoutError``) unless told otherwise: so do ``fetch()``, ``execute()`` and the
    rest, which acquire through it."""

    def __init__(self, *args: object, acquire_timeout: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def create_pool(
    url: str,
    max_size: int = 10,
    *,
    api: bool = False,
    acquire_timeout: float = ACQUIRE_TIMEOUT_S,
) -> Pool:
    """A pool whose connections decode jsonb and have the ingest's staging table.
    ``api``: no staging table (the API writes no readings), and every connection is
    opened at once, so that a rush does not begin by opening them."""
    pool = Pool(
        url,
        min_size=max_size if api else 1,
        max_size=max_size,
        init=_init_reader if api else _init_connection,
        reset=_keep_session,
        # what asyncpg.create_pool passes by default (Pool takes no defaults itself)
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        acquire_timeout=acquire_timeout,
        command_timeout=60,
        timeout=10,
    )
    try:
        await pool
    except OPENING_FAILED as exc:
        raise unreachable(url, exc) from exc
    return pool


def unreachable(url: str, exc: BaseException) -> DatabaseUnreachable:
    """The error a service stops with when it cannot open ``url`` at start (not a
    traceback: the address, without its password, and why)."""
    why = str(exc) or type(exc).__name__
    return DatabaseUnreachable(f"cannot open the database at {redact_url(url)}: {why}")


async def close_pool(pool: asyncpg.Pool) -> None:
    """Close ``pool``, waiting ``CLOSE_TIMEOUT_S`` at most for its connections to come
    back and say goodbye; then cut what is left (a database that stopped answering)."""
    try:
        await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_S)
    except TimeoutError:
        log.warning("the database pool did not close within %.0f s; cutting it", CLOSE_TIMEOUT_S)
        pool.terminate()
