"""When PostgreSQL cannot serve: a pool gives up after its deadline instead of waiting
for ever, and the API answers 503 with Retry-After (not a 500), then recovers by
itself once the database is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from api.app import make_app
from api.problems import CONTENT_TYPE, RETRY_AFTER_S
from ikn.brokers import free_port
from ikn_store.embedded import EmbeddedPostgres
from ikn_store.migrations import migrate
from ikn_store.pool import create_pool
from ikn_store.tokens import create_token
from tests.helpers import api_settings


async def test_an_acquire_gives_up_at_the_pools_deadline(database_url: str) -> None:
    pool = await create_pool(database_url, 1, acquire_timeout=0.3)
    try:
        async with pool.acquire():  # the only connection is taken
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                async with pool.acquire():
                    pass
            with pytest.raises(TimeoutError):  # the shortcuts acquire the same way
                await pool.fetchval("SELECT 1")
            waited = time.monotonic() - started
        assert 0.5 <= waited < 5
        assert await pool.fetchval("SELECT 1") == 1  # given back, it serves again
    finally:
        await pool.close()


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(tmp_path / "pg", free_port(), durable=False)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


async def test_the_api_answers_503_while_the_database_is_down_and_recovers(
    private_postgres: EmbeddedPostgres,
) -> None:
    pg = private_postgres
    conn = await asyncpg.connect(pg.url())
    try:
        await migrate(conn)
        token = await create_token(conn, "fm", "facility_manager")
    finally:
        await conn.close()
    runner = web.AppRunner(make_app(api_settings({"IKN_DATABASE_URL": pg.url()})))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/devices"
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(url, headers=headers) as response:
                assert response.status == 200
            await asyncio.to_thread(pg.stop)
            async with http.get(url, headers=headers) as response:
                assert response.status == 503
                assert response.content_type == CONTENT_TYPE
                assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
                problem = await response.json(content_type=None)
            assert problem["type"].endswith("/database-unavailable")
            assert problem["status"] == 503
            await asyncio.to_thread(pg.start)
            statuses = []
            for _ in range(50):  # the pool replaces its dead connections as they are used
                async with http.get(url, headers=headers) as response:
                    statuses.append(response.status)
                if statuses[-1] == 200:
                    break
                await asyncio.sleep(0.2)
            assert statuses[-1] == 200, statuses
            assert set(statuses) <= {200, 503}, statuses
    finally:
        await runner.cleanup()
