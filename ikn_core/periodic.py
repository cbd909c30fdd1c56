"""The one periodic-job helper: run a coroutine every N seconds, on the asyncio loop.

``every`` runs ``job()`` now (or, with ``first_after``, once ``interval_s`` has
passed), then every ``interval_s`` after each run ends, until ``stop`` is set or the
task is cancelled. A failure is logged with its traceback and the next round tries
again; one that comes while ``stop`` is set (the job cut short by a stopping
database) is logged at INFO. ``periodic`` runs it as a task for the length of an
``async with`` block (an aiohttp cleanup context: the job stops with the app).

Used by the API's auto-release, attendance recompute and analytics refresh, and by
the ingest's maintenance, report, subscription watch, desk release and alert count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


async def every(
    interval_s: float,
    job: Job,
    *,
    what: str,
    stop: asyncio.Event | None = None,
    first_after: bool = False,
) -> None:
    """Run ``job`` every ``interval_s`` until ``stop`` (or cancellation); ``what``
    names it in the log."""
    if first_after and await _stopped(stop, interval_s):
        return
    while True:
        try:
            await job()
        except Exception as exc:
            if stop is not None and stop.is_set():
                log.info("%s cut short by the stop (%r)", what, exc)
            else:
                log.exception("%s failed; trying again in %s s", what, interval_s)
        if await _stopped(stop, interval_s):
            return


async def _stopped(stop: asyncio.Event | None, delay_s: float) -> bool:
    """Wait ``delay_s``; True when ``stop`` was set meanwhile (or is already)."""
    if stop is None:
        await asyncio.sleep(delay_s)
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)
    return stop.is_set()


@contextlib.asynccontextmanager
async def periodic(interval_s: float, job: Job, *, what: str) -> AsyncIterator[None]:
    """``every(interval_s, job)`` in a task while the block runs; cancelled and
    awaited when it ends."""
    task = asyncio.create_task(every(interval_s, job, what=what), name=what)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
