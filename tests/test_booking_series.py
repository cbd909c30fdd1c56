"""Recurring bookings over real HTTP and PostgreSQL: daily and weekly series at the same
WITA wall-clock times, skipped dates, per-occurrence refusals, idempotent retries, and
cancelling one occurrence or the rest of the series."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import fetch
from tests.test_booking_api import WITA, World, _problem, open_world, tomorrow

SERIES = "/api/v1/bookings/series"


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with open_world(database_url) as opened:
        yield opened


def _series(start: datetime, end: datetime, repeat: str, count: int, **kw: Any) -> dict[str, Any]:
    return {
        "desk": "d1",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "repeat": repeat,
        "count": count,
        **kw,
    }


async def test_a_daily_series_books_what_it_can_and_reports_the_rest(world: World) -> None:
    first = tomorrow(9)
    taken = first + timedelta(days=1)
    skipped = (first + timedelta(days=3)).date()
    assert (await world.book("budi", "d1", taken, taken + timedelta(hours=2))).status == 201
    # Given in UTC: the occurrences keep 09:00-17:00 WITA, not the UTC clock.
    body = _series(
        first.astimezone(WITA).astimezone(tz=None),
        tomorrow(17),
        "daily",
        5,
        skip=[skipped.isoformat()],
    )
    response = await world.client.post(SERIES, json=body, headers=world.headers["ani"])
    assert response.status == 201, await response.text()
    answer = await response.json()
    days = [first.date() + timedelta(days=n) for n in (0, 2, 4)]
    assert [b["start"] for b in answer["booked"]] == [
        datetime(d.year, d.month, d.day, 9, tzinfo=WITA).isoformat() for d in days
    ]
    assert all(b["end"].endswith("T17:00:00+08:00") for b in answer["booked"])
    assert {b["series"] for b in answer["booked"]} == {answer["series"]}
    [refused] = answer["refused"]
    assert refused["type"].endswith("/desk-taken") and refused["status"] == 409
    assert refused["start"] == taken.isoformat()
    rows = await fetch(
        world.url, "SELECT count(*) AS n FROM bookings WHERE series_id = $1::uuid", answer["series"]
    )
    assert rows[0]["n"] == 3


async def test_a_weekly_series_stops_at_the_days_ahead_limit(world: World) -> None:
    body = _series(tomorrow(8), tomorrow(10), "weekly", 3)
    response = await world.client.post(SERIES, json=body, headers=world.headers["ani"])
    answer = await response.json()
    # Default: 14 days ahead, counted in WITA days. Tomorrow+7 fits, tomorrow+14 does not.
    assert len(answer["booked"]) == 2
    [late] = answer["refused"]
    assert late["type"].endswith("/too-far-ahead")
    assert late["title"] == "Too far ahead to book"
    indonesian = {**world.headers["ani"], "Accept-Language": "id"}
    again = await world.client.post(
        SERIES, json=_series(tomorrow(8), tomorrow(10), "weekly", 3), headers=indonesian
    )
    body_id = await _problem(again, 409, "series-not-booked")
    assert body_id["title"] == "Tidak ada jadwal dalam rangkaian ini yang dapat dipesan"
    assert [r["type"].rsplit("/", 1)[1] for r in body_id["refused"]] == [
        "desk-taken",
        "desk-taken",
        "too-far-ahead",
    ]


async def test_a_retried_series_books_nothing_twice(world: World) -> None:
    headers = {**world.headers["ani"], "Idempotency-Key": "series-1"}
    body = _series(tomorrow(8), tomorrow(9), "daily", 3)
    first = await world.client.post(SERIES, json=body, headers=headers)
    again = await world.client.post(SERIES, json=body, headers=headers)
    assert first.status == again.status == 201
    one, two = await first.json(), await again.json()
    assert [b["id"] for b in one["booked"]] == [b["id"] for b in two["booked"]]
    assert two["series"] == one["series"] and two["refused"] == []
    assert len(await fetch(world.url, "SELECT id FROM bookings")) == 3


async def test_cancel_one_occurrence_or_the_rest_of_the_series(world: World) -> None:
    body = _series(tomorrow(8), tomorrow(9), "daily", 4)
    answer = await (await world.client.post(SERIES, json=body, headers=world.headers["ani"])).json()
    ids = [b["id"] for b in answer["booked"]]
    one = await world.client.delete(f"/api/v1/bookings/{ids[0]}", headers=world.headers["ani"])
    assert (await one.json())["status"] == "cancelled"
    others = await world.client.delete(
        f"/api/v1/bookings/{ids[2]}/following", headers=world.headers["budi"]
    )
    await _problem(others, 404, "booking-not-found")
    rest = await world.client.delete(
        f"/api/v1/bookings/{ids[2]}/following", headers=world.headers["ani"]
    )
    assert rest.status == 200
    assert [b["id"] for b in (await rest.json())["cancelled"]] == ids[2:]
    rows = await fetch(world.url, "SELECT id::text, status FROM bookings ORDER BY lower(period)")
    assert [r["status"] for r in rows] == ["cancelled", "booked", "cancelled", "cancelled"]
    again = await world.client.delete(
        f"/api/v1/bookings/{ids[2]}/following", headers=world.headers["ani"]
    )
    await _problem(again, 409, "booking-not-active")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"repeat": "monthly"}, "repeat"),
        ({"count": 0}, "count"),
        ({"count": 61}, "count"),
        ({"count": True}, "count"),
        ({"skip": ["tomorrow"]}, "skip"),
        ({"skip": "2026-12-01"}, "skip"),
        ({"until": "2026-12-01"}, "until"),
    ],
)
async def test_bad_series_input_names_the_field(
    world: World, change: dict[str, Any], field: str
) -> None:
    body = {**_series(tomorrow(8), tomorrow(9), "daily", 2), **change}
    response = await world.client.post(SERIES, json=body, headers=world.headers["ani"])
    problem = await _problem(response, 400, "invalid-parameter")
    assert problem["invalid_params"][0]["name"] == field


def test_skipped_dates_are_local_dates() -> None:
    from ikn_core.booking import Recurrence, Repeat

    # 23:00-01:00 WITA crosses local midnight: the skip names the local start date.
    start = datetime(2026, 12, 1, 23, tzinfo=WITA)
    series = Recurrence(
        start, start + timedelta(hours=2), Repeat.DAILY, 3, frozenset({date(2026, 12, 2)})
    )
    got = series.occurrences(WITA)
    assert [(s.isoformat(), e.isoformat()) for s, e in got] == [
        ("2026-12-01T23:00:00+08:00", "2026-12-02T01:00:00+08:00"),
        ("2026-12-03T23:00:00+08:00", "2026-12-04T01:00:00+08:00"),
    ]
