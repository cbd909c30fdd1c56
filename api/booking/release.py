"""Auto-release: every few seconds, bookings nobody checked in to free their desks.

Runs in each API process; several replicas running it at once is harmless (the
UPDATE is idempotent). A failure is logged and the next round tries again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from api.state import POOL
from ikn_core.periodic import periodic
from ikn_service.booking import release_no_shows

log = logging.getLogger(__name__)


async def _release_round(app: web.Application) -> None:
    async with app[POOL].acquire() as conn:
        released = await release_no_shows(conn, datetime.now(UTC))
    if released:
        log.info("released %d booking(s) nobody checked in to (no-shows)", released)


def setup(app: web.Application, interval_s: float) -> None:
    """Run auto-release while the app runs (after the pool's cleanup context)."""

    async def releaser(app: web.Application) -> AsyncIterator[None]:
        async with periodic(interval_s, lambda: _release_round(app), what="auto-release"):
            yield

    app.cleanup_ctx.append(releaser)
