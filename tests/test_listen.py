"""The LISTEN helper (ikn_store.listen) on a real PostgreSQL: notifications reach their
callback, a connection cut by the server is made again and LISTENs again, and ``stop``
ends it."""

from __future__ import annotations

import asyncio

import asyncpg

from ikn_store.listen import Listener, Session

CHANNEL = "ikn_test_listen"


async def test_notifications_arrive_and_a_cut_connection_comes_back(database_url: str) -> None:
    got: asyncio.Queue[str] = asyncio.Queue(10)
    listener = Listener(database_url, {CHANNEL: got.put_nowait}, application_name="ikn-test")
    stop = asyncio.Event()
    sessions: asyncio.Queue[Session] = asyncio.Queue(10)
    attempts = 0

    async def attempt(stop: asyncio.Event) -> None:
        nonlocal attempts
        attempts += 1
        async with listener.connect(stop) as session:
            await session.listen()
            sessions.put_nowait(session)
            while not session.done:
                await session.wait()

    task = asyncio.create_task(
        listener.run(stop, attempt, retry_s=(0.05,), message="test listener lost (%s); %.0f s")
    )
    other = await asyncpg.connect(database_url)
    try:
        first = await asyncio.wait_for(sessions.get(), 20)
        await other.execute("SELECT pg_notify($1, 'one')", CHANNEL)
        assert await asyncio.wait_for(got.get(), 20) == "one"
        pid = first.conn.get_server_pid()
        await other.execute("SELECT pg_terminate_backend($1)", pid)
        second = await asyncio.wait_for(sessions.get(), 20)
        assert first.lost and second.conn.get_server_pid() != pid and attempts == 2
        name = await other.fetchval(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            second.conn.get_server_pid(),
        )
        assert name == "ikn-test"
        await other.execute("SELECT pg_notify($1, 'two')", CHANNEL)
        assert await asyncio.wait_for(got.get(), 20) == "two"
        stop.set()
        await asyncio.wait_for(task, 20)
        assert second.conn.is_closed()
    finally:
        stop.set()
        await other.close()
        await asyncio.wait_for(task, 20)
