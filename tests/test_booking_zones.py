"""Rules per zone over real HTTP and PostgreSQL: zone overrides of the building's rules
(hours in WITA, days ahead), restricted zones, the cancellation cut-off, check-out,
and the no-show counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from ikn_core.booking import BookingRules
from ikn_store.booking.places import RuleOverrides, restrict_zone, set_rules, set_zone_rules
from tests.helpers import fetch
from tests.test_booking_api import WITA, World, _problem, open_world, tomorrow

ZONE_F1 = "b1-f1-a"  # desks d1, d2
ZONE_F2 = "b1-f2-a"  # desk d3


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with open_world(database_url) as opened:
        yield opened


async def _store(url: str, action: Any, *args: Any) -> None:
    conn = await asyncpg.connect(url)
    try:
        await action(conn, *args)
    finally:
        await conn.close()


async def test_a_zone_overrides_the_buildings_hours_in_wita(world: World) -> None:
    await _store(
        world.url,
        set_zone_rules,
        ZONE_F1,
        RuleOverrides(opens_minute=8 * 60, closes_minute=12 * 60),
    )
    # 13:00-14:00 WITA is inside the building's hours but after the zone closes.
    late = await world.book("ani", "d1", tomorrow(13), tomorrow(14))
    body = await _problem(late, 422, "outside-allowed-hours")
    assert "08:00 and 12:00" in body["detail"]
    # The same hours in +07:00 are 14:00-15:00 WITA: still refused; 11:00-12:00 WITA books.
    utc = tomorrow(11).astimezone(UTC)
    assert (await world.book("ani", "d1", utc, utc + timedelta(hours=1))).status == 201
    # The other zone keeps the building's hours.
    assert (await world.book("budi", "d3", tomorrow(13), tomorrow(14))).status == 201


async def test_a_zone_overrides_days_ahead_counted_in_wita(world: World) -> None:
    await _store(world.url, set_zone_rules, ZONE_F1, RuleOverrides(max_days_ahead=2))
    today = datetime.now(WITA).date()
    last, beyond = today + timedelta(days=2), today + timedelta(days=3)

    def at(day: Any, hour: int) -> datetime:
        return datetime(day.year, day.month, day.day, hour, tzinfo=WITA)

    await _problem(
        await world.book("ani", "d1", at(beyond, 8), at(beyond, 9)), 422, "too-far-ahead"
    )
    assert (await world.book("ani", "d1", at(last, 8), at(last, 9))).status == 201
    assert (await world.book("budi", "d3", at(beyond, 8), at(beyond, 9))).status == 201


async def test_a_rule_relaxed_after_a_refusal_is_seen_at_once(world: World) -> None:
    await _store(
        world.url, set_zone_rules, ZONE_F1, RuleOverrides(min_minutes=120, max_minutes=240)
    )
    await _problem(await world.book("ani", "d1", tomorrow(9), tomorrow(10)), 422, "too-short")
    await _store(world.url, set_zone_rules, ZONE_F1, RuleOverrides())
    assert (await world.book("ani", "d1", tomorrow(9), tomorrow(10))).status == 201


async def test_a_rule_tightened_after_a_booking_is_seen_at_once(world: World) -> None:
    assert (await world.book("ani", "d1", tomorrow(9), tomorrow(10))).status == 201  # cached
    await _store(
        world.url, set_zone_rules, ZONE_F1, RuleOverrides(opens_minute=600, closes_minute=900)
    )
    await _problem(
        await world.book("budi", "d2", tomorrow(9), tomorrow(10)), 422, "outside-allowed-hours"
    )


async def test_a_restricted_zone_admits_only_listed_agencies_and_units(world: World) -> None:
    await _store(world.url, restrict_zone, ZONE_F2, [("kemenpan", "sdm")])
    refused = await world.book("citra", "d3", tomorrow(9), tomorrow(10))  # bappenas/ti
    body = await _problem(refused, 403, "zone-restricted")
    assert "kemenpan/sdm" in body["detail"]
    # The rule is about whom the desk is for: a facility manager cannot book it for Citra.
    for_citra = await world.book("fajar", "d3", tomorrow(9), tomorrow(10), person="citra")
    await _problem(for_citra, 403, "zone-restricted")
    assert (await world.book("ani", "d3", tomorrow(9), tomorrow(10))).status == 201
    # A whole agency may be listed; an empty list opens the zone again.
    await _store(world.url, restrict_zone, ZONE_F2, [("bappenas", None)])
    assert (await world.book("citra", "d3", tomorrow(11), tomorrow(12))).status == 201
    await _problem(
        await world.book("budi", "d3", tomorrow(13), tomorrow(14)), 403, "zone-restricted"
    )
    await _store(world.url, restrict_zone, ZONE_F2, [])
    assert (await world.book("budi", "d3", tomorrow(13), tomorrow(14))).status == 201


async def _open_all_day(world: World, cutoff: int) -> None:
    rules = BookingRules(opens_minute=0, closes_minute=1440, cancel_cutoff_minutes=cutoff)
    await _store(world.url, set_rules, "b1", rules)


def _soon(minutes: int) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now + timedelta(minutes=minutes)


async def test_the_cancellation_cut_off_binds_all_but_facility_managers(world: World) -> None:
    await _open_all_day(world, cutoff=120)
    soon = await world.book("ani", "d1", _soon(60), _soon(120))
    far = await world.book("ani", "d2", _soon(24 * 60), _soon(25 * 60))
    soon_id, far_id = (await soon.json())["id"], (await far.json())["id"]
    refused = await world.client.delete(f"/api/v1/bookings/{soon_id}", headers=world.headers["ani"])
    await _problem(refused, 409, "cancel-cut-off")
    ok = await world.client.delete(f"/api/v1/bookings/{far_id}", headers=world.headers["ani"])
    assert ok.status == 200 and (await ok.json())["status"] == "cancelled"
    by_fm = await world.client.delete(f"/api/v1/bookings/{soon_id}", headers=world.headers["fajar"])
    assert by_fm.status == 200 and (await by_fm.json())["status"] == "cancelled"


async def _booked_now(world: World, who: str, desk: str) -> str:
    await _open_all_day(world, cutoff=0)
    response = await world.book(who, desk, _soon(1), _soon(61))
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def test_check_out_ends_the_booking_and_frees_the_desk(world: World) -> None:
    booking = await _booked_now(world, "ani", "d1")
    path = f"/api/v1/bookings/{booking}"
    early = await world.client.post(path + "/check-out", headers=world.headers["ani"])
    await _problem(early, 409, "not-checked-in")
    assert (await world.client.post(path + "/check-in", headers=world.headers["ani"])).status == 200
    others = await world.client.post(path + "/check-out", headers=world.headers["budi"])
    await _problem(others, 404, "booking-not-found")
    out = await world.client.post(path + "/check-out", headers=world.headers["ani"])
    assert out.status == 200
    assert (await out.json())["status"] == "checked_out"
    rows = await fetch(world.url, "SELECT ended_at FROM bookings WHERE id = $1::uuid", booking)
    assert rows[0]["ended_at"] is not None
    # The desk is free for the rest of the hour, and Ani may book again.
    assert (await world.book("budi", "d1", _soon(5), _soon(60))).status == 201
    again = await world.client.post(path + "/check-out", headers=world.headers["ani"])
    await _problem(again, 409, "booking-not-active")


async def test_no_show_counts_for_facility_managers_and_in_my_summary(world: World) -> None:
    conn = await asyncpg.connect(world.url)
    try:
        start = datetime.now(UTC) - timedelta(days=2)
        for desk, hours in (("d1", 0), ("d2", 3), ("d3", 6)):
            await conn.execute(
                """INSERT INTO bookings (desk_id, person_id, period, created_by, status, ended_at)
                   VALUES ($1, 'ani', tstzrange($2, $3), 'ani', 'released', $3)""",
                desk,
                start + timedelta(hours=hours),
                start + timedelta(hours=hours + 1),
            )
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by, status, ended_at)
               VALUES ('d1', 'budi', tstzrange($1, $2), 'budi', 'released', $2)""",
            start + timedelta(hours=9),
            start + timedelta(hours=10),
        )
    finally:
        await conn.close()
    listed = await world.client.get("/api/v1/bookings/no-shows", headers=world.headers["fajar"])
    assert listed.status == 200
    body = await listed.json()
    assert body["people"] == [{"person": "ani", "no_shows": 3}, {"person": "budi", "no_shows": 1}]
    since = (start + timedelta(hours=5)).isoformat()
    later = await world.client.get(
        "/api/v1/bookings/no-shows", params={"since": since}, headers=world.headers["fajar"]
    )
    assert (await later.json())["people"] == [
        {"person": "ani", "no_shows": 1},
        {"person": "budi", "no_shows": 1},
    ]
    bad = await world.client.get(
        "/api/v1/bookings/no-shows", params={"since": "yesterday"}, headers=world.headers["fajar"]
    )
    assert (await _problem(bad, 400, "invalid-parameter"))["invalid_params"][0]["name"] == "since"
    mine = await world.client.get("/api/v1/bookings", headers=world.headers["ani"])
    assert (await mine.json())["no_shows"] == 3
    denied = await world.client.get("/api/v1/bookings/no-shows", headers=world.headers["ani"])
    assert denied.status == 403
