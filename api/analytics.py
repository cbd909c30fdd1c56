"""``GET /api/v1/analytics/*``: utilisation, booking funnel, environment, no-shows.

Facility managers and admins only. Every table is JSON by default and CSV with
``Accept: text/csv`` or ``?format=csv`` (the same rows, one column per field).
Figures come from the rollups that :func:`setup` keeps up to date in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from api.auth import requires
from api.params import parse_day
from api.places import check_places
from api.problems import invalid_parameter
from api.state import POOL
from ikn_core.domain import Role
from ikn_store import analytics
from ikn_store.analytics import Bucket, Level, Query
from ikn_store.rollups import refresh

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TABLE_PARAMS = ("level", "bucket", "from", "to", "building", "floor", "zone", "format")
Table = Callable[[asyncpg.Connection, Query], Awaitable[list[dict[str, Any]]]]
JsonTable = Callable[[asyncpg.Connection, Query], Awaitable[bytes]]


def _choice(request: web.Request, name: str, kind: type[Level] | type[Bucket], default: str) -> Any:
    value = request.query.get(name, default)
    try:
        return kind(value)
    except ValueError:
        raise invalid_parameter(name, f"one of {', '.join(k.value for k in kind)}") from None


def _day(request: web.Request, name: str) -> date:
    return parse_day(name, request.query.get(name))


def _place(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is not None and not _ID.fullmatch(value):
        raise invalid_parameter(name, "must be 1-64 letters, digits, '-' or '_'")
    return value


def _refuse_unknown(request: web.Request, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise invalid_parameter(unknown[0], f"unknown parameter; use {', '.join(allowed)}")


def wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt not in (None, "json", "csv"):
        raise invalid_parameter("format", "json or csv")
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("Accept", ""))


def parse_query(request: web.Request) -> Query:
    """The table's query from the request; 400 naming the first bad parameter."""
    _refuse_unknown(request, _TABLE_PARAMS)
    level = _choice(request, "level", Level, Level.ZONE)
    bucket = _choice(request, "bucket", Bucket, Bucket.DAY)
    first, last = _day(request, "from"), _day(request, "to")
    places = {name: _place(request, name) for name in ("building", "floor", "zone")}
    try:
        return Query(level, bucket, first, last, **places)
    except ValueError as exc:
        name = "to" if last < first else "bucket"
        raise invalid_parameter(name, str(exc)) from None


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def respond(
    request: web.Request, head: dict[str, Any], rows: list[dict[str, Any]], name: str
) -> web.Response:
    if wants_csv(request):
        columns = list(rows[0]) if rows else []
        return web.Response(
            text=to_csv(rows, columns),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    body = orjson.dumps({**head, "rows": rows})
    return web.Response(body=body, content_type="application/json")


async def _table(
    request: web.Request, table: Table, name: str, as_json: JsonTable | None = None
) -> web.Response:
    """The table as CSV or JSON; ``as_json`` renders the JSON rows in PostgreSQL."""
    query = parse_query(request)
    csv_wanted = wants_csv(request)  # a bad format is refused before any work
    filters = {k: v for k in ("building", "floor", "zone") if (v := getattr(query, k)) is not None}
    head = {
        "level": query.level.value,
        "bucket": query.bucket.value,
        "from": query.first.isoformat(),
        "to": query.last.isoformat(),
        **filters,
    }
    async with request.app[POOL].acquire() as conn:
        await check_places(conn, filters)
        try:
            if as_json is not None and not csv_wanted:
                return _json_rows(head, await as_json(conn, query))
            rows = await table(conn, query)
        except ValueError as exc:
            raise invalid_parameter("level", str(exc)) from None
    return respond(request, head, rows, name)


def _json_rows(head: dict[str, Any], rows: bytes) -> web.Response:
    """``head`` with the already encoded JSON array ``rows`` as its ``rows``."""
    body = orjson.dumps(head)[:-1] + b',"rows":' + rows + b"}"  # head is never empty
    return web.Response(body=body, content_type="application/json")


@routes.get("/api/v1/analytics/utilisation")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def utilisation(request: web.Request) -> web.Response:
    """Occupancy and booked shares, peak and average occupancy, utilisation per place."""
    return await _table(
        request, analytics.utilisation, "utilisation", as_json=analytics.utilisation_json
    )


@routes.get("/api/v1/analytics/funnel")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def funnel(request: web.Request) -> web.Response:
    """Booked → checked in → occupied, no-shows and ghost bookings per place."""
    return await _table(request, analytics.funnel, "funnel")


@routes.get("/api/v1/analytics/environment")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def environment(request: web.Request) -> web.Response:
    """Average CO2 and temperature per place, where sensors report them."""
    return await _table(request, analytics.environment, "environment")


@routes.get("/api/v1/analytics/no-shows")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def no_shows(request: web.Request) -> web.Response:
    """Each person's bookings in the period and how many were no-shows."""
    _refuse_unknown(request, ("from", "to", "building", "format"))
    first, last = _day(request, "from"), _day(request, "to")
    if last < first:
        raise invalid_parameter("to", "the period ends before it starts")
    if (last - first).days + 1 > analytics.MAX_DAYS[Bucket.DAY]:
        raise invalid_parameter("to", f"at most {analytics.MAX_DAYS[Bucket.DAY]} days")
    building = _place(request, "building")
    wants_csv(request)
    filters = {"building": building} if building else {}
    async with request.app[POOL].acquire() as conn:
        await check_places(conn, filters)
        rows = await analytics.no_shows_by_person(conn, first, last, building)
    head = {"from": first.isoformat(), "to": last.isoformat(), **filters}
    return respond(request, head, rows, "no-shows")


async def _refresh_forever(app: web.Application, interval_s: float) -> None:
    while True:
        try:
            async with app[POOL].acquire() as conn:
                done = await refresh(conn)
            if done is not None and done.zone_days:
                log.info("analytics: recomputed %d zone-day(s)", done.zone_days)
        except Exception:
            log.exception("analytics refresh failed; trying again in %s s", interval_s)
        await asyncio.sleep(interval_s)


def setup(app: web.Application, interval_s: float) -> None:
    """Keep the rollups up to date while the app runs (after the pool's cleanup context)."""

    async def refresher(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_refresh_forever(app, interval_s))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(refresher)
    app.add_routes(routes)
