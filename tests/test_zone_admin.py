"""A zone's booking rules and access list set by an admin over real HTTP and PostgreSQL:
what the routes answer, that bookings follow at once, and the validation problems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.test_booking_api import World, _problem, open_world, tomorrow

RULES = "/api/v1/zones/b1-f1-a/booking-rules"  # desks d1, d2
ACCESS = "/api/v1/zones/b1-f2-a/access"  # desk d3


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with open_world(database_url) as opened:
        yield opened


async def _put(world: World, path: str, body: Any, who: str = "adi") -> Any:
    return await world.client.put(path, json=body, headers=world.headers[who])


async def _get(world: World, path: str, who: str = "adi") -> Any:
    response = await world.client.get(path, headers=world.headers[who])
    assert response.status == 200, await response.text()
    return await response.json()


async def test_zone_hours_set_by_an_admin_apply_to_the_next_booking(world: World) -> None:
    before = await _get(world, RULES, "fajar")  # a facility manager reads
    assert before["overrides"] == dict.fromkeys(before["overrides"])  # all null
    assert (before["zone"], before["building"]) == ("b1-f1-a", "b1")
    changed = await _put(world, RULES, {"opens_minute": 480, "closes_minute": 720})
    assert changed.status == 200, await changed.text()
    body = await changed.json()
    assert body["overrides"]["opens_minute"] == 480 and body["overrides"]["max_days_ahead"] is None
    assert body["in_force"] == {**before["in_force"], "opens_minute": 480, "closes_minute": 720}
    assert await _get(world, RULES) == body
    late = await world.book("ani", "d1", tomorrow(13), tomorrow(14))
    await _problem(late, 422, "outside-allowed-hours")
    assert (await world.book("ani", "d1", tomorrow(9), tomorrow(10))).status == 201
    cleared = await _put(world, RULES, {})  # back to the building's rules
    assert (await cleared.json())["in_force"] == before["in_force"]
    assert (await world.book("budi", "d2", tomorrow(13), tomorrow(14))).status == 201


async def test_an_access_list_set_by_an_admin_restricts_the_zone(world: World) -> None:
    assert await _get(world, ACCESS, "fajar") == {
        "zone": "b1-f2-a",
        "restricted": False,
        "allowed": [],
    }
    entries = [{"agency": "kemenpan", "unit": "sdm"}, {"agency": "otorita"}]
    changed = await _put(world, ACCESS, {"allowed": entries})
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["allowed"] == [
        {"agency": "kemenpan", "unit": "sdm"},
        {"agency": "otorita", "unit": None},
    ]
    await _problem(
        await world.book("citra", "d3", tomorrow(9), tomorrow(10)), 403, "zone-restricted"
    )
    assert (await world.book("ani", "d3", tomorrow(9), tomorrow(10))).status == 201
    opened = await _put(world, ACCESS, {"allowed": []})
    assert (await opened.json())["restricted"] is False
    assert (await world.book("citra", "d3", tomorrow(11), tomorrow(12))).status == 201


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (RULES, {"opens_minute": 480}, "closes_minute"),
        (RULES, {"max_minutes": 60}, "min_minutes"),
        (RULES, {"opens_minute": 720, "closes_minute": 480}, "closes_minute"),
        (RULES, {"min_minutes": 90, "max_minutes": 60}, "max_minutes"),
        (RULES, {"max_days_ahead": 400}, "max_days_ahead"),
        (RULES, {"max_days_ahead": "7"}, "max_days_ahead"),
        (RULES, {"cancel_cutoff_minutes": True}, "cancel_cutoff_minutes"),
        (RULES, {"hours": 8}, "hours"),
        (RULES, [1], "body"),
        (ACCESS, {}, "allowed"),
        (ACCESS, {"allowed": "kemenpan"}, "allowed"),
        (ACCESS, {"allowed": [{"agency": ""}]}, "allowed[0].agency"),
        (ACCESS, {"allowed": [{"agency": "a/b"}]}, "allowed[0].agency"),
        (ACCESS, {"allowed": [{"agency": "a", "unit": 3}]}, "allowed[0].unit"),
        (ACCESS, {"allowed": [{"agency": "a", "team": "x"}]}, "allowed[0]"),
        (ACCESS, {"allowed": [{"agency": "a"}, {"agency": "a", "unit": None}]}, "allowed[1]"),
    ],
)
async def test_bad_settings_are_problems_naming_the_field(
    world: World, path: str, body: Any, field: str
) -> None:
    problem = await _problem(await _put(world, path, body), 400, "invalid-parameter")
    assert problem["invalid_params"][0]["name"] == field


async def test_an_unknown_zone_is_404_and_only_admins_change(world: World) -> None:
    missing = await world.client.get("/api/v1/zones/nowhere/access", headers=world.headers["adi"])
    assert (await _problem(missing, 404, "unknown-place"))["invalid_params"][0]["name"] == "id"
    put = await _put(world, "/api/v1/zones/nowhere/booking-rules", {"max_days_ahead": 3})
    await _problem(put, 404, "unknown-place")
    by_fm = await _put(world, ACCESS, {"allowed": []}, who="fajar")
    await _problem(by_fm, 403, "forbidden")


BUILDING = "/api/v1/buildings/b1/booking-rules"


async def test_building_rules_set_by_an_admin_apply_under_the_zones_overrides(
    world: World,
) -> None:
    before = await _get(world, BUILDING, "fajar")  # a facility manager reads
    assert before["building"] == "b1"
    changed = await _put(world, BUILDING, {"max_days_ahead": 0, "cancel_cutoff_minutes": 60})
    assert changed.status == 200, await changed.text()
    body = await changed.json()
    assert body["overrides"]["max_days_ahead"] == 0 and body["overrides"]["min_minutes"] is None
    assert body["in_force"] == {
        **before["in_force"],
        "max_days_ahead": 0,
        "cancel_cutoff_minutes": 60,
    }
    assert await _get(world, BUILDING) == body
    # the zone's rules in force follow the building's, and the next booking too
    assert (await _get(world, RULES))["in_force"]["max_days_ahead"] == 0
    await _problem(await world.book("ani", "d1", tomorrow(9), tomorrow(10)), 422, "too-far-ahead")
    # a zone's override still wins over its building
    await _put(world, RULES, {"max_days_ahead": 7})
    assert (await world.book("ani", "d1", tomorrow(9), tomorrow(10))).status == 201
    assert (await (await _put(world, BUILDING, {})).json())["in_force"] == before["in_force"]


async def test_building_rules_refuse_bad_values_unknown_buildings_and_non_admins(
    world: World,
) -> None:
    bad = await _put(world, BUILDING, {"opens_minute": 480})
    assert (await _problem(bad, 400, "invalid-parameter"))["invalid_params"][0]["name"] == (
        "closes_minute"
    )
    missing = await world.client.get(
        "/api/v1/buildings/nowhere/booking-rules", headers=world.headers["adi"]
    )
    await _problem(missing, 404, "unknown-place")
    await _problem(
        await _put(world, "/api/v1/buildings/nowhere/booking-rules", {}), 404, "unknown-place"
    )
    await _problem(await _put(world, BUILDING, {}, who="fajar"), 403, "forbidden")


async def test_site_rules_reach_its_buildings_unless_a_building_sets_its_own(
    world: World,
) -> None:
    conn = await asyncpg.connect(world.url)
    try:
        await conn.execute("INSERT INTO sites (id, name) VALUES ('ikn', 'Kawasan IKN')")
        await conn.execute("UPDATE buildings SET site_id = 'ikn' WHERE id = 'b1'")
    finally:
        await conn.close()
    site = "/api/v1/sites/ikn/booking-rules"
    before = await _get(world, site, "fajar")
    changed = await _put(world, site, {"max_days_ahead": 0})
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["in_force"] == {**before["in_force"], "max_days_ahead": 0}
    building = await _get(world, BUILDING)
    assert (building["site"], building["in_force"]["max_days_ahead"]) == ("ikn", 0)
    assert building["overrides"]["max_days_ahead"] is None  # inherited, not its own
    await _problem(await world.book("ani", "d1", tomorrow(9), tomorrow(10)), 422, "too-far-ahead")
    await _put(world, BUILDING, {"max_days_ahead": 3})  # the building's own value wins
    assert (await world.book("ani", "d1", tomorrow(9), tomorrow(10))).status == 201
    missing = await world.client.get(
        "/api/v1/sites/nowhere/booking-rules", headers=world.headers["adi"]
    )
    await _problem(missing, 404, "unknown-place")
    await _problem(await _put(world, site, {}, who="fajar"), 403, "forbidden")
