"""How a command runs: in a fresh loop until SIGINT/SIGTERM, or on one database connection."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ikn.logs import configure
from ikn_core.settings import MigrateSettings

log = logging.getLogger(__name__)

# A stop still under way this long after the signal is forced: what is left is logged
# with where it waits, and cancelled. Services stop well within it (the ingest gives
# the batches it is writing 5 s); only something wedged, such as a query on a database
# that stopped answering, is still there.
STOP_DEADLINE_S = 15.0
# And should even the cancelling not end it (a wait that ignores cancellation, a thread
# that does not return, an event loop held up), the process is ended this long after
# the deadline: the stacks of its threads on stderr, exit status 1. Nothing is lost by
# it: what the ingest had not acknowledged yet, the broker redelivers.
EXIT_GRACE_S = 1.5

if TYPE_CHECKING:  # the CLI also runs on edge devices, where asyncpg is not installed
    import asyncpg


def run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(stop)`` in a fresh loop; SIGINT/SIGTERM set ``stop``. If ``main``
    has not returned ``STOP_DEADLINE_S`` after the signal, it is cancelled; if the
    process is still there ``EXIT_GRACE_S`` later, it is ended (exit status 1)."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stopping() -> None:
            if not stop.is_set():
                # a thread of faulthandler's own: it ends the process even if this loop
                # or the interpreter's exit is what is held up
                faulthandler.dump_traceback_later(STOP_DEADLINE_S + EXIT_GRACE_S, exit=True)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping)
        work = asyncio.create_task(main(stop))
        deadline = asyncio.create_task(_force_stop(stop, work))
        try:
            await work
        except asyncio.CancelledError:
            if not deadline.done():
                raise
            log.warning("stopped by cancelling what was left")
        finally:
            deadline.cancel()

    asyncio.run(runner())


async def _force_stop(stop: asyncio.Event, work: asyncio.Task[None]) -> None:
    """Once ``stop`` is set, give ``work`` ``STOP_DEADLINE_S``; then log every task
    that is left, with where it waits, and cancel ``work``."""
    await stop.wait()
    await asyncio.sleep(STOP_DEADLINE_S)
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    log.warning(
        "still stopping %.0f s after the signal; cancelling the %d tasks left:",
        STOP_DEADLINE_S,
        len(tasks),
    )
    for task in tasks:
        log.warning("%s, waiting in:\n%s", task.get_name(), _awaiting(task))
    work.cancel()


def _awaiting(task: asyncio.Task[Any]) -> str:
    """Where ``task`` waits: its coroutine and each one that one awaits, innermost
    last (``Task.print_stack`` shows only the outermost)."""
    lines = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "\n".join(lines)


def database_command(
    role: str,
    work: Callable[[asyncpg.Connection], Awaitable[None]],
    *,
    migrate_first: bool = True,
    as_admin: bool = False,
) -> None:
    """Run ``work(conn)`` on one connection to ``IKN_DATABASE_URL``, migrated first;
    ``as_admin``: to ``IKN_DATABASE_MIGRATE_URL`` if it is set."""
    settings = MigrateSettings.from_env()
    configure(settings.log, role)
    url = (settings.migrate_url if as_admin else None) or settings.db.url

    async def main(_stop: asyncio.Event) -> None:
        import asyncpg

        from ikn_store.errors import OPENING_FAILED
        from ikn_store.migrations import migrate
        from ikn_store.pool import unreachable

        try:
            conn = await asyncpg.connect(url, timeout=10)
        except OPENING_FAILED as exc:
            raise unreachable(url, exc) from exc
        try:
            if migrate_first:
                await migrate(conn)
            await work(conn)
        finally:
            await conn.close()

    run_until_signal(main)
