"""``GET /api/v1/analytics/*``: utilisation, booking funnel, environment, no-shows.

Facility managers and admins only. Every table is JSON by default and CSV with
``Accept: text/csv`` or ``?format=csv`` (the same rows, one column per field).
Figures come from the rollups that :func:`setup` keeps up to date in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from api.auth import requires
from api.booking.places import check_places
from api.params import parse_day
from api.problems import invalid_parameter
from api.state import POOL
from ikn_core.contract.identifiers import ID
from ikn_core.domain import Role
from ikn_core.periodic import periodic
from ikn_core.spreadsheet import csv_lines, csv_text, dict_rows
from ikn_store.analytics import queries as analytics
from ikn_store.analytics.queries import Bucket, Level, Query
from ikn_store.readings.rollups import refresh

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

# A utilisation table of more rows than this is streamed from a cursor instead of being
# built whole (a year of a 5,000-desk campus by desk and day: 1.8 million rows). Each
# stream holds a pooled connection while the client reads, so at most EXPORT_LANES
# run at once; the rest wait for a lane.
STREAM_ROWS = 50_000
EXPORT_LANES = 2
EXPORTS = web.AppKey("analytics_exports", asyncio.Semaphore)

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
    if value is not None and not ID.fullmatch(value):
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
    return csv_text(columns, dict_rows(columns, rows))


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
) -> web.StreamResponse:
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
            if table is analytics.utilisation and (
                await analytics.utilisation_size(conn, query) > STREAM_ROWS
            ):
                async with request.app[EXPORTS]:
                    chunks = analytics.utilisation_chunks(conn, query)
                    return await _stream(request, head, chunks, name, csv_wanted=csv_wanted)
            if as_json is not None and not csv_wanted:
                return _json_rows(head, await as_json(conn, query))
            rows = await table(conn, query)
        except ValueError as exc:
            raise invalid_parameter("level", str(exc)) from None
    return respond(request, head, rows, name)


async def _stream(
    request: web.Request,
    head: dict[str, Any],
    chunks: AsyncGenerator[list[str], None],
    name: str,
    *,
    csv_wanted: bool,
) -> web.StreamResponse:
    """A large table written as it is read (chunks of JSON row texts from a cursor):
    the same document as ``respond`` and ``_json_rows`` give, never whole in memory.
    The first chunk is read before the answer starts, so that an error in the query
    is still a problem document."""
    async with contextlib.aclosing(chunks):
        first: list[str] = await anext(chunks, [])
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        if csv_wanted:
            response.content_type = "text/csv"
            response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        else:
            response.content_type = "application/json"
        await response.prepare(request)
        try:
            await _write_chunks(response, head, first, chunks, csv_wanted=csv_wanted)
        except Exception:
            # Too late for a problem document: cut the connection, so that the client
            # sees a body that never ended (no last chunk) rather than waiting for ever.
            log.exception("streaming %s failed part way; connection cut", name)
            if request.transport is not None:
                request.transport.close()
        return response


async def _write_chunks(
    response: web.StreamResponse,
    head: dict[str, Any],
    first: list[str],
    chunks: AsyncGenerator[list[str], None],
    *,
    csv_wanted: bool,
) -> None:
    """``head`` and the rows of ``first`` and ``chunks``, as JSON or CSV."""
    columns = list(orjson.loads(first[0])) if first else []
    if csv_wanted:
        await response.write(csv_text(columns, []).encode())
    else:
        await response.write(orjson.dumps(head)[:-1] + b',"rows":[')
    chunk, separator = first, b""
    while chunk:
        if csv_wanted:
            rows = (orjson.loads(r) for r in chunk)
            await response.write(csv_lines(dict_rows(columns, rows)).encode())
        else:
            await response.write(separator + ",".join(chunk).encode())
            separator = b","
        chunk = await anext(chunks, [])
    if not csv_wanted:
        await response.write(b"]}")
    await response.write_eof()


def _json_rows(head: dict[str, Any], rows: bytes) -> web.Response:
    """``head`` with the already encoded JSON array ``rows`` as its ``rows``."""
    body = orjson.dumps(head)[:-1] + b',"rows":' + rows + b"}"  # head is never empty
    return web.Response(body=body, content_type="application/json")


@routes.get("/api/v1/analytics/utilisation")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def utilisation(request: web.Request) -> web.StreamResponse:
    """Occupancy and booked shares, peak and average occupancy, utilisation per place."""
    return await _table(
        request, analytics.utilisation, "utilisation", as_json=analytics.utilisation_json
    )


@routes.get("/api/v1/analytics/funnel")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def funnel(request: web.Request) -> web.StreamResponse:
    """Booked → checked in → occupied, no-shows and ghost bookings per place."""
    return await _table(request, analytics.funnel, "funnel")


@routes.get("/api/v1/analytics/environment")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def environment(request: web.Request) -> web.StreamResponse:
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


async def _refresh_round(app: web.Application) -> None:
    async with app[POOL].acquire() as conn:
        done = await refresh(conn)
    if done is not None and done.zone_days:
        log.info("analytics: recomputed %d zone-day(s)", done.zone_days)


def setup(app: web.Application, interval_s: float) -> None:
    """Keep the rollups up to date while the app runs (after the pool's cleanup context)."""

    async def refresher(app: web.Application) -> AsyncIterator[None]:
        async with periodic(interval_s, lambda: _refresh_round(app), what="analytics refresh"):
            yield

    app.cleanup_ctx.append(refresher)
    app[EXPORTS] = asyncio.Semaphore(EXPORT_LANES)
    app.add_routes(routes)
