"""How a command runs: in a fresh loop until SIGINT/SIGTERM, or on one database connection."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ikn.logs import configure
from ikn_core.settings import MigrateSettings

if TYPE_CHECKING:  # the CLI also runs on edge devices, where asyncpg is not installed
    import asyncpg


def run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(stop)`` in a fresh loop; SIGINT/SIGTERM set ``stop``."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def database_command(
    role: str, work: Callable[[asyncpg.Connection], Awaitable[None]], *, migrate_first: bool = True
) -> None:
    """Run ``work(conn)`` on one connection to ``IKN_DATABASE_URL``, migrated first."""
    settings = MigrateSettings.from_env()
    configure(settings.log, role)

    async def main(_stop: asyncio.Event) -> None:
        import asyncpg

        from ikn_store.migrations import migrate

        conn = await asyncpg.connect(settings.db.url, timeout=10)
        try:
            if migrate_first:
                await migrate(conn)
            await work(conn)
        finally:
            await conn.close()

    run_until_signal(main)
