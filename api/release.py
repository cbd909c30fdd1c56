"""Auto-release: every few seconds, bookings nobody checked in to free their desks.

Runs in each API process; several replicas running it at once is harmless (the
UPDATE is idempotent). A failure is logged and the next round tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from api.state import POOL
from ikn_service.booking import release_no_shows

log = logging.getLogger(__name__)


async def _release_forever(app: web.Application, interval_s: float) -> None:
    while True:
        try:
            async with app[POOL].acquire() as conn:
                released = await release_no_shows(conn, datetime.now(UTC))
            if released:
                log.info("released %d booking(s) nobody checked in to (no-shows)", released)
        except Exception:
            log.exception("auto-release failed; trying again in %s s", interval_s)
        await asyncio.sleep(interval_s)


def setup(app: web.Application, interval_s: float) -> None:
    """Run auto-release while the app runs (after the pool's cleanup context)."""

    async def releaser(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_release_forever(app, interval_s))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(releaser)
