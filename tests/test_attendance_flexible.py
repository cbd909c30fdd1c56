"""Issue 20, flexible work (PermenPANRB 4/2025). A person's duty station has its own zone
(WIB, WITA, WIT): a remote worker's day, start and lateness are computed in it. A remote
clock-in beyond the weekly cap is recorded, marked on the record and shown to the
supervisor. Pure, then through the people import and the real API."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from api.attendance.handlers import CLOCK
from ikn_core.attendance import (
    DailyRecord,
    PlaceType,
    Policies,
    Signal,
    SignalKind,
    compute_day,
    mark_over_cap,
)
from ikn_core.io import ImportRejectedError, parse_people
from ikn_store.io import export_people
from tests.helpers import api_settings, eventually, fetch, imported
from tests.test_attendance_e2e import Clock

WIB, WITA, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Makassar"), ZoneInfo("Asia/Jayapura")
POLICIES = Policies.default()
WEDNESDAY = date(2026, 12, 2)
# 00:15 UTC on Wednesday 2 December: 07:15 WIB, 08:15 WITA, 09:15 WIT
INSTANT = datetime(2026, 12, 2, 0, 15, tzinfo=UTC)


def _remote_day(zone: ZoneInfo, at: datetime, day: date = WEDNESDAY) -> Any:
    signal = Signal("s1", SignalKind.APP_CHECK_IN, at, PlaceType.HOME)
    return compute_day(day, zone, "kemenpan", [signal], policy=POLICIES.in_force(day))


def test_one_instant_is_on_time_in_wib_and_late_in_wita_and_wit() -> None:
    assert [_remote_day(z, INSTANT).late_minutes for z in (WIB, WITA, WIT)] == [0, 45, 105]
    wib, wita = _remote_day(WIB, INSTANT), _remote_day(WITA, INSTANT)
    assert wib.clock_in is not None and wib.clock_in.isoformat() == "2026-12-02T07:15:00+07:00"
    assert "clock-in 07:15 WIB from app_check_in s1: on time against 07:30" in wib.reasons
    assert "clock-in 08:15 WITA from app_check_in s1: 45 min late against 07:30" in wita.reasons


def test_the_day_itself_is_the_duty_stations() -> None:
    """16:30 UTC on 1 December is 23:30 WIB that Tuesday, but 00:30 WITA on Wednesday."""
    late_evening = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)
    tuesday = date(2026, 12, 1)
    assert _remote_day(WIB, late_evening, tuesday).mode == "wfa"
    assert _remote_day(WITA, late_evening, tuesday).mode == "absent"
    assert _remote_day(WITA, late_evening, WEDNESDAY).mode == "wfa"
    assert _remote_day(WIB, late_evening, WEDNESDAY).mode == "absent"


def test_the_import_takes_an_iana_duty_station_zone_only() -> None:
    header = "id,name,agency,unit,duty_station_tz\n"
    (person,) = parse_people(header + "jkt,Joko,kemenpan,sdm,Asia/Jakarta\n", "csv", {})
    assert person.duty_station_tz == "Asia/Jakarta"
    with pytest.raises(ImportRejectedError, match=r"duty_station_tz: .WIB. is not an IANA"):
        parse_people(header + "jkt,Joko,kemenpan,sdm,WIB\n", "csv", {})


# ---------------------------------------------------------------- through the API

SPACES = """\
kind,id,parent,name,tz,lat,lon,agency,live_from
building,b1,,Gedung Kemenpan,Asia/Makassar,-0.9745,116.7085,kemenpan,2026-09-01
"""
# Joko's and Yan's home building is in IKN, their duty stations in Jakarta and Jayapura;
# Ani has none: her building's zone (WITA).
PEOPLE = """\
id,name,agency,unit,role,home_building,duty_station_tz
ani,Ani,kemenpan,sdm,employee,b1,
joko,Joko,kemenpan,sdm,employee,b1,Asia/Jakarta
yan,Yan,kemenpan,sdm,employee,b1,Asia/Jayapura
budi,Budi,kemenpan,sdm,supervisor,b1,
"""
Client = TestClient[web.Request, web.Application]


@dataclasses.dataclass
class World:
    client: Client
    url: str
    tokens: dict[str, dict[str, str]]
    clock: Clock


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    conn = await asyncpg.connect(database_url)
    try:
        roles = {"ani": "employee", "joko": "employee", "yan": "employee", "budi": "supervisor"}
        tokens = await imported(conn, SPACES, PEOPLE, roles)
    finally:
        await conn.close()
    env = {"IKN_DATABASE_URL": database_url, "IKN_ATTENDANCE_INTERVAL_S": "0.05"}
    app = make_app(api_settings(env))
    clock = Clock(INSTANT)
    app[CLOCK] = clock.__call__
    async with TestClient(TestServer(app)) as client:
        yield World(client, database_url, tokens, clock)


async def test_each_remote_worker_is_late_or_not_in_their_duty_stations_zone(
    world: World,
) -> None:
    for person in ("ani", "joko", "yan"):
        response = await world.client.post(
            "/api/v1/attendance/check-in", json={"place_type": "home"}, headers=world.tokens[person]
        )
        assert response.status == 201, await response.text()

    async def days() -> dict[str, Any]:
        out = {}
        for person in ("ani", "joko", "yan"):
            response = await world.client.get(
                f"/api/v1/attendance/day?day={WEDNESDAY}", headers=world.tokens[person]
            )
            assert response.status == 200
            out[person] = (await response.json())["record"]
        return out

    records = await eventually(days, lambda r: all(d["clock_in"] for d in r.values()))
    assert {p: (d["clock_in"], d["late_minutes"]) for p, d in records.items()} == {
        "ani": ("2026-12-02T08:15:00+08:00", 45),
        "joko": ("2026-12-02T07:15:00+07:00", 0),
        "yan": ("2026-12-02T09:15:00+09:00", 105),
    }
    # the trigger marked each signal's day in the duty station's zone: the stored records,
    # once the recompute job's round (every 0.05 s here) has stored them
    stored = await eventually(
        lambda: fetch(
            world.url, "SELECT person_id, day, late_minutes FROM attendance_days ORDER BY 1"
        ),
        lambda rows: len(rows) == 3,
    )
    assert [tuple(r) for r in stored] == [
        ("ani", WEDNESDAY, 45),
        ("joko", WEDNESDAY, 0),
        ("yan", WEDNESDAY, 105),
    ]
    conn = await asyncpg.connect(world.url)
    try:
        zones = {p.id: p.duty_station_tz for p in await export_people(conn)}
    finally:
        await conn.close()
    assert zones == {"ani": None, "budi": None, "joko": "Asia/Jakarta", "yan": "Asia/Jayapura"}


async def test_a_late_evening_check_in_in_jakarta_is_the_day_before_in_ikn(
    world: World, database_url: str
) -> None:
    """23:30 WIB on Tuesday is 00:30 WITA on Wednesday: Joko's signal makes his Tuesday."""
    await fetch(
        database_url,
        """INSERT INTO attendance_signals (person_id, kind, at, place_type, source)
           VALUES ('joko', 'app_check_in', '2026-12-01T16:30Z', 'home', 'test:1'),
                  ('ani', 'app_check_in', '2026-12-01T16:30Z', 'home', 'test:2')""",
    )
    dirty = await fetch(database_url, "SELECT person_id, day FROM attendance_dirty ORDER BY 1")
    marked = {(r["person_id"], r["day"]) for r in dirty}
    stored = await fetch(database_url, "SELECT person_id, day FROM attendance_days")
    days = marked | {(r["person_id"], r["day"]) for r in stored}
    assert ("joko", date(2026, 12, 1)) in days and ("ani", WEDNESDAY) in days
    assert ("joko", WEDNESDAY) not in days and ("ani", date(2026, 12, 1)) not in days


# ---------------------------------------------------------------- the weekly remote cap


def test_mark_over_cap_counts_the_weeks_days_not_given() -> None:
    """Tuesday 1 and Wednesday 2 December from home, Monday 30 November too but not among
    the records given (a December report): Wednesday is the week's third WFA day."""
    days = [date(2026, 12, 1), date(2026, 12, 2)]
    records = [_remote_day(WITA, datetime.combine(d, INSTANT.timetz()), d) for d in days]
    alone = mark_over_cap(records, (), POLICIES)
    assert [r.over_remote_cap for r in alone] == [False, False]
    marked = mark_over_cap(records, [date(2026, 11, 30)], POLICIES)
    assert [r.over_remote_cap for r in marked] == [False, True]
    assert marked[1].reasons[-1] == (
        "remote work: WFA day 3 of 2026-W49, over the cap of 2 a week (PermenPANRB 4/2025): "
        "recorded, shown to the supervisor"
    )
    assert marked[1].reasons[:-1] == records[1].reasons
    assert DailyRecord.from_json(marked[1].as_json()) == marked[1]


async def test_a_remote_clock_in_over_the_cap_is_recorded_marked_and_shown(
    world: World,
) -> None:
    """Joko (duty station Jakarta) clocks in from home Monday 30 November to Wednesday 2
    December at 07:20 WIB: every clock-in is stored; Wednesday's day is marked, and the
    December unit report, whose first week began in November, lists it."""
    for on in (date(2026, 11, 30), date(2026, 12, 1), WEDNESDAY):
        world.clock.at = datetime.combine(on, time(7, 20), tzinfo=WIB)
        response = await world.client.post(
            "/api/v1/attendance/check-in", json={"place_type": "home"}, headers=world.tokens["joko"]
        )
        assert response.status == 201, await response.text()
    world.clock.at = INSTANT.replace(hour=12)
    # the mark counts the week's stored WFA days: wait for the recompute job to store them
    await eventually(
        lambda: fetch(world.url, "SELECT day FROM attendance_days WHERE person_id = 'joko'"),
        lambda rows: len(rows) == 3,
    )

    async def record_of(on: date) -> Any:
        response = await world.client.get(
            f"/api/v1/attendance/day?day={on}", headers=world.tokens["joko"]
        )
        assert response.status == 200
        return (await response.json())["record"]

    wednesday = await eventually(lambda: record_of(WEDNESDAY), lambda r: r["mode"] == "wfa")
    assert wednesday["over_remote_cap"] is True
    assert wednesday["reasons"][-1].startswith("remote work: WFA day 3 of 2026-W49, over the cap")
    tuesday = await eventually(lambda: record_of(date(2026, 12, 1)), lambda r: r["mode"] == "wfa")
    assert tuesday["over_remote_cap"] is False
    response = await world.client.get(
        "/api/v1/attendance/units/kemenpan/sdm?month=2026-12", headers=world.tokens["budi"]
    )
    people = {p["person"]: p for p in (await response.json())["people"]}
    assert people["joko"]["wfa_over_weekly_cap"] == ["2026-12-02"]
    assert people["ani"]["wfa_over_weekly_cap"] == []
    signals = await fetch(
        world.url, "SELECT count(*) FROM attendance_signals WHERE person_id = 'joko'"
    )
    assert signals[0][0] == 3  # recorded, not refused
