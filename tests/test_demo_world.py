"""The demo's people and their recent past (ikn/demo_world.py) on a real PostgreSQL:
every role in two agencies, a badge each, taps on past working days only, counted
by the attendance rules as WFO for the building's agency and WFO elsewhere for the
other, and nothing added twice when the demo starts again."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from firmware_sim.scenario import load_scenario
from ikn.demo_world import BUILDING, OWNER, PEOPLE, past_working_days, seed_history
from ikn_core.attendance import Policies
from ikn_core.domain import Role
from ikn_store.attendance.days import recompute_dirty
from ikn_store.attendance.signals import set_building_site
from ikn_store.people import upsert_people
from ikn_store.pool import close_pool, create_pool
from ikn_store.spaces import load_site

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Asia/Makassar"))  # a Monday


def test_the_past_working_days_are_the_weekdays_before_today() -> None:
    days = past_working_days(date(2026, 12, 7), 10)  # Friday 27 Nov .. Sunday 6 Dec
    assert days == [date(2026, 11, d) for d in (27, 30)] + [date(2026, 12, d) for d in (1, 2, 3, 4)]


async def test_the_demo_people_have_badges_and_past_office_days(database_url: str) -> None:
    pool = await create_pool(database_url, 1, api=True)  # with the jsonb codec
    try:
        async with pool.acquire() as conn:
            await _check_seeding(conn)
    finally:
        await close_pool(pool)


async def _check_seeding(conn: asyncpg.Connection) -> None:
    site = load_scenario("demo").site
    await load_site(conn, site)
    await set_building_site(conn, BUILDING, -0.9747, 116.7068, OWNER)
    await upsert_people(conn, list(PEOPLE))
    desks = [d.id for d in site.desks]
    taps = await seed_history(conn, NOW, desks)
    assert taps > 0 and taps % 2 == 0  # an in and an out each time
    assert await seed_history(conn, NOW, desks) == 0  # started again: nothing twice
    assert {p.role for p in PEOPLE} == set(Role)
    assert len({p.agency for p in PEOPLE}) == 2
    assert await conn.fetchval("SELECT count(*) FROM badges") == len(PEOPLE)
    days = await conn.fetch(
        "SELECT DISTINCT (at AT TIME ZONE 'Asia/Makassar')::date AS d FROM attendance_signals"
    )
    assert {r["d"] for r in days} <= set(past_working_days(NOW.date()))
    assert await conn.fetchval("SELECT count(*) FROM bookings WHERE status = 'checked_in'") > 0
    while await recompute_dirty(conn, Policies.default()):
        pass
    modes = await conn.fetch(
        """SELECT p.agency, d.record->>'mode' AS mode FROM attendance_days d
           JOIN people p ON p.id = d.person_id
           WHERE d.record->>'clock_in' IS NOT NULL"""
    )
    assert {(r["agency"], r["mode"]) for r in modes} == {
        (OWNER, "wfo"),
        ("otorita-ikn", "wfo_other"),
    }
