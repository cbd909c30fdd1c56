"""Builds the aiohttp application; the pool lives in a cleanup context."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from api import auth, docs_page, headers, health, oidc, openapi, privacy, rate_limit, stream
from api.analytics import handlers as analytics
from api.analytics import occupancy
from api.attendance import disruptions
from api.attendance import handlers as attendance
from api.attendance import reports as attendance_reports
from api.auth import auth_middleware
from api.booking import availability, bookings, release, zones
from api.booking import batches as booking_batches
from api.fleet import commands, dead_letters, devices
from api.problems import problem_middleware, text_middleware
from api.server import HANDLER_ARGS
from api.state import POOL
from ikn_core.settings import ApiSettings
from ikn_service.disruptions import ErrorCount, Recorder
from ikn_store.migrations import migrate
from ikn_store.pool import close_pool, create_pool

log = logging.getLogger(__name__)


def make_app(settings: ApiSettings) -> web.Application:
    errors = ErrorCount(Recorder("api", settings.disruption))  # outage grace
    app = web.Application(
        middlewares=[
            disruptions.middleware(errors),  # outermost: sees every answer's status
            problem_middleware,
            text_middleware,
            auth_middleware,
            rate_limit.middleware(settings.guard),  # writes per token (after auth: its name)
        ],
        handler_args=HANDLER_ARGS,  # the parser's limits (api.server)
    )

    async def database(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(settings.db.url, settings.db.pool_max, api=True)
        async with pool.acquire() as conn:
            await migrate(conn)
        app[POOL] = pool
        yield
        await close_pool(pool)

    app.cleanup_ctx.append(database)
    headers.setup(app, settings.guard.trusted_proxy)  # CSP, nosniff, Referrer-Policy, HSTS
    lanes = settings.batch_lanes
    auth.setup(app, lanes)  # token lookups in batches under load
    booking_batches.setup(app, lanes)  # group commit for new bookings
    stream.setup(app, settings.db.url, settings.streams)  # after the pool: its hub reads it
    release.setup(app, settings.release_interval_s)
    app.add_routes(health.routes)
    app.add_routes(occupancy.routes)
    app.add_routes(devices.routes)
    commands.setup(app, settings.mqtt, settings.command_ttl_s)  # MQTT when IKN_MQTT_URL
    app.add_routes(bookings.routes)
    bookings.setup(app)  # the desk places the booking routes keep in memory
    app.add_routes(availability.routes)
    app.add_routes(zones.routes)  # a zone's booking rules and access list (admin)
    app.add_routes(dead_letters.routes)
    attendance.setup(
        app,
        settings.attendance_policy,
        settings.attendance_interval_s,
        settings.retention.attendance_days,  # older days are not reported
    )
    app.add_routes(attendance_reports.routes)
    disruptions.setup(app, errors)  # heartbeat, error rate, excuses (docs/attendance.md)
    privacy.setup(app, settings.retention, settings.web.session_idle_s)  # /me/data, jobs
    analytics.setup(app, settings.analytics_interval_s)  # rollups + /api/v1/analytics/*
    openapi.setup(app)
    app.add_routes(docs_page.routes)
    oidc.setup(app, settings.oidc)  # OIDC bearer tokens, when IKN_OIDC_ISSUER is set
    return app
