"""Connection pools: created inside the running loop, never at import time."""

from __future__ import annotations

import asyncpg
import orjson

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


async def create_pool(url: str, max_size: int = 10, *, api: bool = False) -> asyncpg.Pool:
    """A pool whose connections decode jsonb and have the ingest's staging table.
    ``api``: no staging table (the API writes no readings), and every connection is
    opened at once, so that a rush does not begin by opening them."""
    pool = await asyncpg.create_pool(
        url,
        min_size=max_size if api else 1,
        max_size=max_size,
        init=_init_reader if api else _init_connection,
        reset=_keep_session,
        command_timeout=60,
        timeout=10,
    )
    assert pool is not None
    return pool
