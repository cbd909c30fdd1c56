"""Builds the aiohttp application; the pool lives in a cleanup context."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from api import (
    availability,
    bookings,
    dead_letters,
    devices,
    health,
    occupancy,
    release,
    stream,
)
from api.auth import auth_middleware
from api.problems import problem_middleware
from api.state import POOL
from ikn_core.settings import ApiSettings
from ikn_store.migrations import migrate
from ikn_store.pool import create_pool

log = logging.getLogger(__name__)


def make_app(settings: ApiSettings) -> web.Application:
    app = web.Application(middlewares=[problem_middleware, auth_middleware])

    async def database(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(settings.db.url, settings.db.pool_max)
        async with pool.acquire() as conn:
            await migrate(conn)
        app[POOL] = pool
        yield
        await pool.close()

    app.cleanup_ctx.append(database)
    stream.setup(app, settings.db.url)  # after the pool: its hub reads through it
    release.setup(app, settings.release_interval_s)
    app.add_routes(health.routes)
    app.add_routes(occupancy.routes)
    app.add_routes(devices.routes)
    app.add_routes(bookings.routes)
    app.add_routes(availability.routes)
    app.add_routes(dead_letters.routes)
    return app
