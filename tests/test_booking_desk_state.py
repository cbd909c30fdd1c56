"""Disabled and permanently assigned desks over real HTTP and PostgreSQL: who may book
them (single bookings and series), what availability says, and the booking INSERT
refusing them even when the API's cached place is stale."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ikn_store.booking.bookings import book
from ikn_store.booking.places import PlaceCache, desk_place
from tests.helpers import fetch
from tests.test_booking_api import World, _problem, open_world, tomorrow


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with open_world(database_url) as opened:
        yield opened


async def _set(url: str, desk: str, *, disabled: bool = False, to: str | None = None) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE desks SET disabled = $2, assigned_to = $3 WHERE id = $1", desk, disabled, to
        )
    finally:
        await conn.close()


async def _states(world: World, who: str) -> dict[str, tuple[str, bool]]:
    window = f"floor=b1-f1&start={tomorrow(8).isoformat()}&end={tomorrow(9).isoformat()}"
    response = await world.client.get(
        "/api/v1/availability",
        params=dict(p.split("=", 1) for p in window.split("&")),
        headers=world.headers[who],
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return {d["desk"]: (d["state"], d["free"]) for d in body["desks"]}


async def test_a_disabled_desk_is_refused_to_everyone_in_both_languages(world: World) -> None:
    await _set(world.url, "d1", disabled=True)
    refused = await world.book("ani", "d1", tomorrow(8), tomorrow(9))
    body = await _problem(refused, 409, "desk-disabled")
    assert body["title"] == "This desk is out of use and cannot be booked"
    as_fm = await world.client.post(
        "/api/v1/bookings",
        json={"desk": "d1", "start": tomorrow(8).isoformat(), "end": tomorrow(9).isoformat()},
        headers={**world.headers["fajar"], "Accept-Language": "id"},
    )
    body = await _problem(as_fm, 409, "desk-disabled")
    assert body["title"] == "Meja ini tidak digunakan dan tidak dapat dipesan"
    assert await _states(world, "ani") == {"d1": ("disabled", False), "d2": ("free", True)}
    await _set(world.url, "d1")  # enabled again: bookable at once
    assert (await world.book("ani", "d1", tomorrow(8), tomorrow(9))).status == 201


async def test_an_assigned_desk_is_for_its_person_their_delegate_or_fm(world: World) -> None:
    await _set(world.url, "d1", to="ani")
    await _problem(await world.book("budi", "d1", tomorrow(8), tomorrow(9)), 403, "desk-assigned")
    # a delegate may not book it for someone else either
    for_budi = await world.book("dewi", "d1", tomorrow(8), tomorrow(9), person="budi")
    await _problem(for_budi, 403, "desk-assigned")
    assert await _states(world, "budi") == {"d1": ("assigned", False), "d2": ("free", True)}
    assert await _states(world, "ani") == {"d1": ("assigned", True), "d2": ("free", True)}
    assert (await world.book("ani", "d1", tomorrow(8), tomorrow(9))).status == 201
    assert (await world.book("dewi", "d1", tomorrow(10), tomorrow(11), person="ani")).status == 201
    by_fm = await world.book("fajar", "d1", tomorrow(12), tomorrow(13), person="budi")
    assert by_fm.status == 201, await by_fm.text()
    rows = await fetch(world.url, "SELECT person_id FROM bookings ORDER BY lower(period)")
    assert [r["person_id"] for r in rows] == ["ani", "ani", "budi"]


async def test_a_series_is_refused_assigned_and_disabled_desks_per_occurrence(
    world: World,
) -> None:
    await _set(world.url, "d1", to="ani")
    body = {
        "desk": "d1",
        "start": tomorrow(8).isoformat(),
        "end": tomorrow(9).isoformat(),
        "repeat": "daily",
        "count": 2,
    }
    headers = world.headers["budi"]
    refused = await world.client.post("/api/v1/bookings/series", json=body, headers=headers)
    answer = await _problem(refused, 409, "series-not-booked")
    assert [r["type"].rsplit("/", 1)[1] for r in answer["refused"]] == ["desk-assigned"] * 2
    await _set(world.url, "d1", disabled=True)
    mine = await world.client.post(
        "/api/v1/bookings/series", json=body, headers=world.headers["ani"]
    )
    answer = await _problem(mine, 409, "series-not-booked")
    assert [r["type"].rsplit("/", 1)[1] for r in answer["refused"]] == ["desk-disabled"] * 2


async def test_the_insert_refuses_a_desk_disabled_after_its_place_was_read(
    world: World,
) -> None:
    """The database path, not only Python: a place read before the admin disabled the
    desk (a stale cache) books nothing; the API then re-reads it and says why."""
    conn = await asyncpg.connect(world.url)
    try:
        stale = await PlaceCache().fresh(conn, "d2")
        await conn.execute("UPDATE desks SET disabled = true WHERE id = 'd2'")
        made = await book(
            conn,
            place=stale,
            person_id="ani",
            start=tomorrow(8),
            end=tomorrow(9),
            created_by="ani",
        )
        assert made is None
        # Even a forged place with the current fingerprint is refused by the INSERT.
        current = await desk_place(conn, "d2")
        forged = dataclasses.replace(current, disabled=False)
        assert (
            await book(
                conn,
                place=forged,
                person_id="ani",
                start=tomorrow(8),
                end=tomorrow(9),
                created_by="ani",
            )
            is None
        )
        assert await conn.fetchval("SELECT count(*) FROM bookings") == 0
    finally:
        await conn.close()
    await _problem(await world.book("ani", "d2", tomorrow(8), tomorrow(9)), 409, "desk-disabled")
