"""What a hostile or careless client sends, over real HTTP and PostgreSQL: text
PostgreSQL cannot store, dates beyond the supported years, bodies that are not sent as
JSON, whole numbers written as floats, an unknown device, a method a path lacks. Each
is a 4xx problem naming the field, never a 500 (issue 21)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from yarl import URL

from tests.test_booking_api import WITA, World, _problem, open_world, tomorrow


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with open_world(database_url) as opened:
        yield opened


def _named(body: dict[str, Any]) -> str:
    name: str = body["invalid_params"][0]["name"]
    return name


TODAY = datetime.now(WITA).date().isoformat()
NUL_BODIES = [
    pytest.param(
        "POST /api/v1/attendance/requests",
        "ani",
        {"kind": "cuti", "from": TODAY, "to": TODAY, "reason": "sakit\x00"},
        "reason",
        id="request-reason",
    ),
    pytest.param(
        "PUT /api/v1/zones/b1-f1-a/access",
        "adi",
        {"allowed": [{"agency": "kemenpan"}, {"agency": "bap\x00penas", "unit": None}]},
        "allowed[1].agency",
        id="zone-access-agency",
    ),
    pytest.param(
        "POST /api/v1/bookings",
        "ani",
        {"desk": "d1", "start": "x", "end": "y", "person\x00": "ani"},
        "body",
        id="a-key",
    ),
]


@pytest.mark.parametrize(("route", "who", "body", "field"), NUL_BODIES)
async def test_a_nul_in_a_json_body_is_refused_naming_the_field(
    world: World, route: str, who: str, body: dict[str, Any], field: str
) -> None:
    method, path = route.split(" ")
    response = await world.client.request(method, path, json=body, headers=world.headers[who])
    problem = await _problem(response, 400, "invalid-parameter")
    assert _named(problem) == field
    assert "NUL" in problem["detail"]


NUL_URLS = [
    pytest.param(
        "/api/v1/attendance/units/kemen%00pan/sdm?month=2026-12", "adi", "agency", id="path"
    ),
    pytest.param("/api/v1/attendance/absences?year=2026&agency=a%00", "adi", "agency", id="query"),
    pytest.param("/api/v1/bookings?person=ani%00", "fajar", "person", id="bookings-person"),
    pytest.param("/api/v1/availability?building=b%00", "ani", "building", id="availability"),
]


@pytest.mark.parametrize(("url", "who", "field"), NUL_URLS)
async def test_a_nul_in_a_path_or_query_is_refused_naming_it(
    world: World, url: str, who: str, field: str
) -> None:
    response = await world.client.get(URL(url, encoded=True), headers=world.headers[who])
    assert _named(await _problem(response, 400, "invalid-parameter")) == field


async def test_text_that_is_not_utf8_is_refused_or_replaced(world: World) -> None:
    # A lone surrogate in a body is not JSON (orjson refuses it); in the query it decodes
    # to U+FFFD, which PostgreSQL stores like any other character.
    for raw in (
        b'{"allowed": [{"agency": "\\ud800"}]}',
        b'{"allowed": [{"agency": "\xed\xa0\x80"}]}',
    ):
        response = await world.client.put(
            "/api/v1/zones/b1-f1-a/access",
            data=raw,
            headers={**world.headers["adi"], "Content-Type": "application/json"},
        )
        assert _named(await _problem(response, 400, "invalid-parameter")) == "body"
    url = URL("/api/v1/attendance/absences?year=2026&agency=%ED%A0%80", encoded=True)
    response = await world.client.get(url, headers=world.headers["adi"])
    assert response.status == 200, await response.text()
    assert (await response.json())["people"] == []


OUT_OF_RANGE = [
    pytest.param("GET /api/v1/attendance/day?day=9999-12-31", "ani", None, "day", id="day"),
    pytest.param(
        "GET /api/v1/bookings/no-shows?since=0001-01-01T00:00:00%2B01:00",
        "fajar",
        None,
        "since",
        id="since",
    ),
    pytest.param(
        "GET /api/v1/availability?start=9999-12-31T23:00:00-08:00&end=9999-12-31T23:30:00-08:00",
        "ani",
        None,
        "start",
        id="availability",
    ),
    pytest.param(
        "POST /api/v1/bookings",
        "ani",
        {"desk": "d1", "start": "9999-12-31T20:00:00-08:00", "end": "9999-12-31T21:00:00-08:00"},
        "start",
        id="booking",
    ),
    pytest.param(
        "POST /api/v1/attendance/requests",
        "ani",
        {"kind": "cuti", "from": "9999-12-31", "reason": "cuti tahunan"},
        "from",
        id="request",
    ),
    pytest.param(
        "GET /api/v1/analytics/utilisation?level=building&from=2026-12-01&to=9999-12-31",
        "fajar",
        None,
        "to",
        id="analytics",
    ),
]


@pytest.mark.parametrize(("route", "who", "body", "field"), OUT_OF_RANGE)
async def test_dates_beyond_the_supported_years_are_refused_naming_the_field(
    world: World, route: str, who: str, body: Any, field: str
) -> None:
    method, url = route.split(" ")
    response = await world.client.request(
        method, URL(url, encoded=True), json=body, headers=world.headers[who]
    )
    problem = await _problem(response, 400, "invalid-parameter")
    assert _named(problem) == field
    assert "2000 to 2100" in problem["detail"]


async def test_a_body_not_sent_as_json_is_415_and_books_nothing(world: World) -> None:
    body = {"desk": "d1", "start": tomorrow(9).isoformat(), "end": tomorrow(10).isoformat()}
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = dict(world.headers["ani"])
        if content_type:
            headers["Content-Type"] = content_type
        response = await world.client.post(
            "/api/v1/bookings", data=orjson.dumps(body), headers=headers
        )
        problem = await _problem(response, 415, "unsupported-media-type")
        assert _named(problem) == "Content-Type"
    access = await world.client.put(
        "/api/v1/zones/b1-f1-a/access",
        data=b'{"allowed": [{"agency": "kemenpan"}]}',
        headers={**world.headers["adi"], "Content-Type": "text/plain"},
    )
    await _problem(access, 415, "unsupported-media-type")
    mine = await world.client.get("/api/v1/bookings", headers=world.headers["ani"])
    assert (await mine.json())["bookings"] == []
    # The same body as JSON (with a charset) books.
    json_headers = {**world.headers["ani"], "Content-Type": "application/json; charset=utf-8"}
    booked = await world.client.post(
        "/api/v1/bookings", data=orjson.dumps(body), headers=json_headers
    )
    assert booked.status == 201, await booked.text()


async def test_whole_numbers_written_as_floats_are_integers(world: World) -> None:
    rules = "/api/v1/zones/b1-f1-a/booking-rules"
    response = await world.client.put(
        rules, json={"max_days_ahead": 190.0}, headers=world.headers["adi"]
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["overrides"]["max_days_ahead"] == 190
    fraction = await world.client.put(
        rules, json={"max_days_ahead": 190.5}, headers=world.headers["adi"]
    )
    assert _named(await _problem(fraction, 400, "invalid-parameter")) == "max_days_ahead"

    start = tomorrow(9)
    series = {
        "desk": "d1",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "repeat": "daily",
        "count": 2.0,
    }
    booked = await world.client.post(
        "/api/v1/bookings/series", json=series, headers=world.headers["ani"]
    )
    assert booked.status == 201, await booked.text()
    assert len((await booked.json())["booked"]) == 2


async def test_commands_of_an_unknown_device_are_404_and_a_bad_id_400(world: World) -> None:
    fm = world.headers["fajar"]
    known = await world.client.get("/api/v1/devices/desk-d1/commands", headers=fm)
    assert known.status == 200
    assert (await known.json()) == {"commands": []}
    unknown = await world.client.get("/api/v1/devices/no-such-device/commands", headers=fm)
    await _problem(unknown, 404, "unknown-device")
    bad = await world.client.get(URL("/api/v1/devices/bad%20id/commands", encoded=True), headers=fm)
    assert _named(await _problem(bad, 400, "invalid-parameter")) == "id"


async def test_a_405_says_which_methods_the_path_allows(world: World) -> None:
    response = await world.client.delete("/api/v1/availability", headers=world.headers["ani"])
    await _problem(response, 405, "method-not-allowed")
    assert set(response.headers["Allow"].split(",")) >= {"GET"}
    booking = await world.client.put(
        "/api/v1/bookings/00000000-0000-4000-8000-000000000001", headers=world.headers["ani"]
    )
    await _problem(booking, 405, "method-not-allowed")
    assert "DELETE" in booking.headers["Allow"]


@pytest.mark.parametrize(
    ("url", "who", "headers", "field"),
    [
        ("/api/v1/dead-letters?limit=%C2%B2", "fajar", {}, "limit"),
        ("/api/v1/attendance/absences?year=%C2%B2", "ani", {}, "year"),
        (
            "/api/v1/occupancy/stream?floor=b1-f1",
            "fajar",
            {"Last-Event-ID": "\xb2"},
            "Last-Event-ID",
        ),
    ],
)
async def test_digits_that_int_cannot_read_are_refused(
    world: World, url: str, who: str, headers: dict[str, str], field: str
) -> None:
    # '²' (superscript two) passes str.isdigit, and int() refuses it.
    response = await world.client.get(
        URL(url, encoded=True), headers={**world.headers[who], **headers}
    )
    assert _named(await _problem(response, 400, "invalid-parameter")) == field


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"place_type": "home", "lat": NaN}', "line 1 column 31"),
        (b'{"place_type": "home", "lat": 1e999, "lon": 1}', "infinity"),
        (b'{"place_type": "home",}', "line 1 column"),
    ],
)
async def test_a_body_that_is_not_json_says_where(world: World, raw: bytes, why: str) -> None:
    # It said "must be a JSON object" of a JSON object with one number JSON cannot hold.
    response = await world.client.post(
        "/api/v1/attendance/check-in",
        data=raw,
        headers={**world.headers["ani"], "Content-Type": "application/json"},
    )
    problem = await _problem(response, 400, "invalid-parameter")
    assert _named(problem) == "body"
    assert problem["detail"].startswith("body: not JSON: ") and why in problem["detail"]


async def test_a_deeply_nested_body_is_refused_not_a_recursion_error(world: World) -> None:
    # orjson reads up to 1,024 levels; the body's check stops at api.problems.MAX_DEPTH.
    body = b'{"desk": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = await world.client.post(
        "/api/v1/bookings",
        data=body,
        headers={**world.headers["ani"], "Content-Type": "application/json"},
    )
    problem = await _problem(response, 400, "invalid-parameter")
    assert _named(problem).startswith("desk[0][0]")
    assert "nested deeper than" in problem["detail"]
