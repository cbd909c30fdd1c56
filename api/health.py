"""``GET /healthz``: the process is up and PostgreSQL answers (public, for load balancers)."""

from __future__ import annotations

from aiohttp import web

from api.auth import public
from api.problems import Problem
from api.state import POOL

routes = web.RouteTableDef()


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[POOL].acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
    except (OSError, TimeoutError) as exc:
        raise Problem(503, "database-unavailable", "PostgreSQL does not answer", str(exc)) from exc
    return web.json_response({"status": "ok"})
