"""Issue 21: nobody is absent before they are counted, no day is absent before it is
over, corrections are of days that happened, the audit keeps each day's before, the
geofence takes the nearest building, and answers give times in the person's zone.

The rules are tested pure (``ikn_core.attendance.counting``, ``within_geofences``);
the platform through the real API on a real PostgreSQL (buildings and people loaded
with ``ikn import``'s code, as an administrator would)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from api.app import make_app
from api.attendance.handlers import CLOCK
from ikn_core.attendance import (
    Coordinates,
    CountedSpan,
    PlaceType,
    Policies,
    Signal,
    SignalKind,
    WorkMode,
    as_of,
    compute_day,
    distance_m,
    within_geofences,
)
from ikn_store.io import import_people, import_spaces
from ikn_store.migrations import MIGRATIONS_DIR, migrate
from ikn_store.people import link_token
from ikn_store.tokens import create_token
from tests.helpers import api_settings, fetch
from tests.test_attendance_e2e import Clock

WITA = ZoneInfo("Asia/Makassar")
WIT = ZoneInfo("Asia/Jayapura")
POLICIES = Policies.default()
Client = TestClient[web.Request, web.Application]

# b2 (another agency's) stands 67 m north of b1: closer together than the 100 m fence.
B1 = Coordinates(-0.9745, 116.7085)
B2 = Coordinates(-0.9745 + 67 / 111_195, 116.7085)
SPACES = f"""\
kind,id,parent,name,tz,lat,lon,agency,live_from
building,b1,,Gedung Kemenpan,Asia/Makassar,{B1.lat},{B1.lon},kemenpan,2026-09-01
building,b2,,Gedung Bappenas,Asia/Makassar,{B2.lat},{B2.lon},bappenas,2026-09-01
building,b3,,Gedung Papua,Asia/Jayapura,-2.53,140.71,kemenpan,2026-09-01
building,b4,,Gedung Baru,Asia/Makassar,-0.99,116.70,kemenpan,2026-10-05
"""
PEOPLE = """\
id,name,agency,unit,role,home_building,employment_start,employment_end
ani,Ani,kemenpan,sdm,employee,b1,,
budi,Budi,kemenpan,sdm,supervisor,b1,,
kontrak,Kontrak,kemenpan,sdm,employee,b1,2026-10-05,2026-10-06
papua,Papua,kemenpan,sdm,employee,b3,,
baru,Baru,kemenpan,sdm,employee,b4,,
"""


def wita(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=WITA)


# ---------------------------------------------------------------- the rules, pure


def absent_day(day: date) -> Any:
    return compute_day(day, WITA, "kemenpan", (), policy=POLICIES.in_force(day))


def test_a_person_counts_from_the_latest_start_to_the_end_of_employment() -> None:
    span = CountedSpan.of(
        employment_start=date(2026, 3, 2),
        known_from=date(2026, 12, 6),
        building_live_from=date(2026, 1, 5),
        employment_end=date(2026, 12, 31),
    )
    assert (span.first, span.since, span.last) == (
        date(2026, 12, 6),
        "first day known to the platform",
        date(2026, 12, 31),
    )
    assert not span.covers(date(2026, 12, 5)) and span.covers(date(2026, 12, 6))
    assert not span.covers(date(2027, 1, 1))
    assert CountedSpan.of().covers(date(2026, 1, 1))  # nothing known: every day
    late = CountedSpan.of(employment_start=date(2026, 3, 2), building_live_from=date(2026, 4, 1))
    assert (late.first, late.since) == (date(2026, 4, 1), "home building live")
    # employment that ended before the person was known leaves no day counted
    gone = CountedSpan.of(known_from=date(2026, 5, 1), employment_end=date(2026, 4, 1))
    assert not gone.covers(date(2026, 4, 1)) and not gone.covers(date(2026, 5, 1))


def test_a_day_outside_the_span_counts_nothing() -> None:
    monday = date(2026, 10, 5)
    span = CountedSpan.of(employment_start=date(2026, 10, 6))
    record = as_of(absent_day(monday), span, WITA, wita(11, 1, 12))
    assert record.mode is WorkMode.NOT_COUNTED
    assert record.reasons[-1] == "before 2026-10-06 (employment start): not counted"
    late = compute_day(
        monday,
        WITA,
        "kemenpan",
        [Signal("s1", SignalKind.BADGE_IN, wita(10, 5, 9), PlaceType.OFFICE, "b1", "kemenpan")],
        policy=POLICIES.in_force(monday),
    )
    assert late.late_minutes == 90 and late.missing_clock_out
    shown = as_of(late, span, WITA, wita(11, 1, 12))
    assert shown.mode is WorkMode.NOT_COUNTED and shown.clock_in == late.clock_in
    assert (shown.late_minutes, shown.early_departure_minutes, shown.missing_clock_out) == (
        0,
        0,
        False,
    )


def test_a_working_day_is_not_absent_until_midnight_in_its_zone() -> None:
    wednesday = date(2026, 10, 7)
    record = absent_day(wednesday)
    assert record.mode is WorkMode.ABSENT
    everyone = CountedSpan()
    early = as_of(record, everyone, WITA, wita(10, 7, 4, 7))  # 04:07 WITA that day
    assert early.mode is WorkMode.NOT_YET
    assert early.reasons[-1].endswith("over at 2026-10-08 00:00 WITA: not yet absent")
    assert as_of(record, everyone, WITA, wita(10, 7, 23, 59)).mode is WorkMode.NOT_YET
    assert as_of(record, everyone, WITA, wita(10, 8, 0, 0)) == record
    # 23:30 WITA is already 00:30 the next day in Jayapura: its Wednesday is over
    assert as_of(record, everyone, WIT, wita(10, 7, 23, 30)) == record


def test_a_missing_clock_out_is_not_counted_while_the_day_goes_on() -> None:
    wednesday = date(2026, 10, 7)
    signal = Signal(
        "s1", SignalKind.BADGE_IN, wita(10, 7, 7, 25), PlaceType.OFFICE, "b1", "kemenpan"
    )
    record = compute_day(wednesday, WITA, "kemenpan", [signal], policy=POLICIES.in_force(wednesday))
    assert (record.missing_clock_out, record.early_departure_minutes) == (True, 91)
    now = as_of(record, CountedSpan(), WITA, wita(10, 7, 10))
    assert (now.mode, now.missing_clock_out, now.early_departure_minutes) == (
        WorkMode.WFO,
        False,
        0,
    )
    assert not any(r.startswith("no clock-out:") for r in now.reasons)
    assert as_of(record, CountedSpan(), WITA, wita(10, 8, 0)) == record


@settings(max_examples=200, deadline=None)
@given(
    st.dates(date(2026, 1, 1), date(2026, 12, 31)),
    st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31)),
    st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31)),
    st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC)),
    st.sampled_from([WITA, WIT, ZoneInfo("Asia/Jakarta")]),
)
def test_as_of_never_counts_a_day_not_over_or_outside_the_span(
    day: date, start: date | None, end: date | None, now: datetime, zone: ZoneInfo
) -> None:
    record = compute_day(day, zone, "kemenpan", (), policy=POLICIES.in_force(day))
    span = CountedSpan.of(employment_start=start, employment_end=end)
    shown = as_of(record, span, zone, now)
    assert as_of(shown, span, zone, now) == shown  # applying it again changes nothing
    if shown.mode is WorkMode.ABSENT:
        assert span.covers(day) and now.astimezone(zone).date() > day
    if span.covers(day) and now.astimezone(zone).date() > day:
        assert shown == record  # a counted day that is over is as computed
    if not span.covers(day):
        assert shown.mode is WorkMode.NOT_COUNTED


def test_the_nearest_of_several_geofences_comes_first() -> None:
    assert 66 < distance_m(B1, B2) < 68
    point = Coordinates(B2.lat + 0.00004, B2.lon, accuracy_m=10)  # 4 m beyond b2
    places = [("b1", B1), ("b2", B2), ("far", Coordinates(-1.25, 116.85))]
    assert within_geofences(point, places, 100) == ["b2", "b1"]
    assert within_geofences(point, places, 50) == ["b2"]
    assert within_geofences(Coordinates(-2, 110), places, 100) == []


def test_the_day_says_when_a_check_in_was_within_two_geofences() -> None:
    day = date(2026, 10, 5)
    at = wita(10, 5, 7, 30)
    signal = Signal(
        "s9", SignalKind.APP_CHECK_IN, at, PlaceType.OFFICE, "b2", "bappenas", also_within=("b1",)
    )
    record = compute_day(day, WITA, "kemenpan", [signal], policy=POLICIES.in_force(day))
    assert record.mode is WorkMode.WFO_OTHER
    assert (
        "app_check_in s9: within the geofence of 2 buildings; the nearest, b2, taken (also b1)"
        in record.reasons
    )


# ---------------------------------------------------------------- through the API


@dataclasses.dataclass
class World:
    client: Client
    url: str
    clock: Clock
    tokens: dict[str, dict[str, str]]

    async def get(self, who: str, path: str) -> Any:
        response = await self.client.get(path, headers=self.tokens[who])
        assert response.status == 200, await response.text()
        return await response.json()

    async def post(self, who: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.client.post(path, json=body, headers=self.tokens[who])
        return response.status, await response.json()


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    conn = await asyncpg.connect(database_url)
    try:
        await import_spaces(conn, SPACES, "csv")
        await import_people(conn, PEOPLE, "csv")
        tokens = {}
        for person, role in (("ani", "employee"), ("budi", "supervisor"), ("papua", "employee")):
            token = await create_token(conn, person, role)
            await link_token(conn, token, person)
            tokens[person] = {"Authorization": f"Bearer {token}"}
        for person in ("kontrak", "baru"):
            token = await create_token(conn, person, "employee")
            await link_token(conn, token, person)
            tokens[person] = {"Authorization": f"Bearer {token}"}
    finally:
        await conn.close()
    env = {"IKN_DATABASE_URL": database_url, "IKN_ATTENDANCE_INTERVAL_S": "0.05"}
    app = make_app(api_settings(env))
    clock = Clock(datetime.now(UTC))
    app[CLOCK] = clock.__call__
    async with TestClient(TestServer(app)) as client:
        yield World(client, database_url, clock, tokens)


async def known_since(world: World, when: str) -> None:
    """Everyone has been known to the platform since ``when`` (as if imported then)."""
    await fetch(world.url, "UPDATE people SET known_since = $1::text::timestamptz", when)


async def test_a_person_imported_today_has_no_absence_before_today(world: World) -> None:
    """Imported just now (the clock is the real one): no day of the year before today
    is absent, today is not yet, and no warning is reached."""
    year = datetime.now(WITA).year
    body = await world.get("ani", f"/api/v1/attendance/absences?year={year}")
    assert body["people"] == [
        {"person": "ani", "unexcused_days": 0, "longest_run": 0, "level": None, "warnings": []}
    ]
    month = datetime.now(WITA).strftime("%Y-%m")
    (mine,) = (await world.get("ani", f"/api/v1/attendance/me?month={month}"))["people"]
    modes = {d["mode"] for d in mine["days"]}
    assert modes <= {"not_counted", "not_yet", "non_working_day"}, modes
    assert mine["days"][-1]["mode"] in ("not_yet", "non_working_day")
    assert "(first day known to the platform): not counted" in mine["days"][0]["reasons"][-1]


async def test_employment_start_end_and_building_go_live_bound_the_counted_days(
    world: World,
) -> None:
    await known_since(world, "2026-10-01T00:00+08:00")
    world.clock.at = wita(10, 9, 10)  # Friday 9 October
    body = await world.get("budi", "/api/v1/attendance/units/kemenpan/sdm?month=2026-10")
    days = {p["person"]: {d["day"][-2:]: d["mode"] for d in p["days"]} for p in body["people"]}
    # employed 5-6 October only
    assert days["kontrak"] == {
        "01": "not_counted",
        "02": "not_counted",
        "03": "not_counted",
        "04": "not_counted",
        "05": "absent",
        "06": "absent",
        "07": "not_counted",
        "08": "not_counted",
        "09": "not_counted",
    }
    # b4 went live on Monday 5 October
    assert [days["baru"][d] for d in ("02", "05", "08", "09")] == [
        "not_counted",
        "absent",
        "absent",
        "not_yet",
    ]
    summaries = {p["person"]: p["summary"]["unexcused_absences"] for p in body["people"]}
    assert summaries == {"ani": 6, "baru": 4, "budi": 6, "kontrak": 2, "papua": 6}
    absences = await world.get("budi", "/api/v1/attendance/absences?year=2026")
    got = {p["person"]: (p["unexcused_days"], p["longest_run"]) for p in absences["people"]}
    # known since 1 October; 1-8 October are six working days (3 and 4 are a weekend)
    assert got == {
        "ani": (6, 6),
        "baru": (4, 4),
        "budi": (6, 6),
        "kontrak": (2, 2),
        "papua": (6, 6),
    }


async def test_today_is_not_yet_absent_and_counts_nothing(world: World) -> None:
    await known_since(world, "2026-10-01T00:00+08:00")
    world.clock.at = wita(10, 7, 4, 7)  # 04:07 WITA on Wednesday 7 October
    body = await world.get("ani", "/api/v1/attendance/day?day=2026-10-07")
    assert body["record"]["mode"] == "not_yet"
    absences = await world.get("ani", "/api/v1/attendance/absences?year=2026")
    assert absences["people"][0]["unexcused_days"] == 4  # 1, 2, 5 and 6 October
    month = await world.get("ani", "/api/v1/attendance/me?month=2026-10")
    assert month["people"][0]["summary"]["unexcused_absences"] == 4
    world.clock.at = wita(10, 8, 0, 0)  # midnight: Wednesday is over
    body = await world.get("ani", "/api/v1/attendance/day?day=2026-10-07")
    assert body["record"]["mode"] == "absent"
    absences = await world.get("ani", "/api/v1/attendance/absences?year=2026")
    assert absences["people"][0]["unexcused_days"] == 5


CORRECTION = {"kind": "correction", "reason": "the reader was out of order"}


async def test_corrections_are_of_days_that_happened_leave_may_be_planned(world: World) -> None:
    await known_since(world, "2026-09-01T00:00+08:00")
    world.clock.at = wita(10, 7, 10)  # Wednesday 10:00 WITA
    tomorrow = {**CORRECTION, "from": "2026-10-08", "clock_in": "2026-10-08T07:30:00+08:00"}
    status, body = await world.post("ani", "/api/v1/attendance/requests", tomorrow)
    assert status == 400, body
    assert body["invalid_params"][0]["name"] == "from"
    later_today = {**CORRECTION, "from": "2026-10-07", "clock_out": "2026-10-07T16:00:00+08:00"}
    status, body = await world.post("ani", "/api/v1/attendance/requests", later_today)
    assert (status, body["invalid_params"][0]["name"]) == (400, "clock_out")
    this_morning = {**CORRECTION, "from": "2026-10-07", "clock_in": "2026-10-07T07:30:00+08:00"}
    status, body = await world.post("ani", "/api/v1/attendance/requests", this_morning)
    assert status == 201, body
    for kind in ("cuti", "dinas_luar"):  # planned ahead
        ahead = {"kind": kind, "from": "2026-10-12", "to": "2026-10-13", "reason": "planned"}
        status, body = await world.post("ani", "/api/v1/attendance/requests", ahead)
        assert status == 201, body


async def test_a_correction_filed_for_a_future_day_is_not_approved(world: World) -> None:
    """One filed before the API refused them (written straight into the table)."""
    await known_since(world, "2026-10-01T00:00+08:00")
    world.clock.at = wita(10, 7, 10)
    rows = await fetch(
        world.url,
        """INSERT INTO attendance_requests (person_id, kind, days, clock_in, reason,
               requested_by)
           VALUES ('ani', 'correction', '[2026-10-08,2026-10-08]', '2026-10-08T07:30+08:00',
               'filed ahead', 'ani') RETURNING id""",
    )
    status, body = await world.post("budi", f"/api/v1/attendance/requests/{rows[0]['id']}/approve")
    assert status == 422, body
    assert body["type"].endswith("/correction-of-future-day")
    assert body["invalid_params"][0]["name"] == "from"
    signals = await fetch(world.url, "SELECT 1 FROM attendance_signals")
    assert signals == []  # nothing of it reached the ledger
    world.clock.at = wita(10, 8, 17)  # the day came: now it may be approved
    status, body = await world.post("budi", f"/api/v1/attendance/requests/{rows[0]['id']}/approve")
    assert (status, body["status"]) == (200, "approved")


async def test_correction_times_are_in_order_and_on_the_day_of_the_building_zone(
    world: World,
) -> None:
    await known_since(world, "2026-09-01T00:00+08:00")
    world.clock.at = wita(10, 9, 10)
    backwards = {
        **CORRECTION,
        "from": "2026-10-06",
        "clock_in": "2026-10-06T16:00:00+08:00",
        "clock_out": "2026-10-06T07:30:00+08:00",
    }
    status, body = await world.post("ani", "/api/v1/attendance/requests", backwards)
    assert status == 400, body
    assert body["type"].endswith("/invalid-parameter")
    assert body["invalid_params"][0]["name"] == "clock_out"
    # 23:30 WITA on the 6th is 00:30 on the 7th in Jayapura, where Papua works
    late = {**CORRECTION, "from": "2026-10-06", "clock_out": "2026-10-06T23:30:00+08:00"}
    status, body = await world.post("papua", "/api/v1/attendance/requests", late)
    assert (status, body["invalid_params"][0]["name"]) == (400, "clock_out")
    assert "Asia/Jayapura" in body["invalid_params"][0]["reason"]
    status, body = await world.post("ani", "/api/v1/attendance/requests", late)
    assert status == 201, body  # the same time is on the 6th in Ani's WITA


async def test_an_approved_correction_audits_the_day_it_replaced(world: World) -> None:
    await known_since(world, "2026-09-01T00:00+08:00")
    world.clock.at = wita(10, 9, 10)
    correction = {
        **CORRECTION,
        "from": "2026-10-06",
        "clock_in": "2026-10-05T23:30:00Z",  # 07:30 WITA
        "clock_out": "2026-10-06T08:00:00Z",
    }
    status, created = await world.post("ani", "/api/v1/attendance/requests", correction)
    assert status == 201, created
    # answers give times in the person's building zone, whatever zone was sent
    assert (created["clock_in"], created["clock_out"]) == (
        "2026-10-06T07:30:00+08:00",
        "2026-10-06T16:00:00+08:00",
    )
    assert created["requested_at"].endswith("+08:00")
    path = f"/api/v1/attendance/requests/{created['id']}/approve"
    status, approved = await world.post("budi", path)
    assert status == 200, approved
    assert approved["decided_at"].endswith("+08:00")
    audit = await fetch(
        world.url,
        "SELECT day, before->>'mode' b, after->>'mode' a FROM attendance_audit "
        "WHERE action = 'recomputed'",
    )
    assert [tuple(r) for r in audit] == [(date(2026, 10, 6), "absent", "wfo")]
    body = await world.get("ani", "/api/v1/attendance/day?day=2026-10-06")
    recomputed = [a for a in body["audit"] if a["action"] == "recomputed"]
    assert recomputed[0]["before"]["mode"] == "absent"
    assert all(a["at"].endswith("+08:00") for a in body["audit"])
    listed = await world.get("ani", "/api/v1/attendance/requests")
    assert listed["requests"][0]["clock_in"] == "2026-10-06T07:30:00+08:00"


async def test_the_geofence_takes_the_nearest_building_and_says_when_two_held(
    world: World,
) -> None:
    await known_since(world, "2026-09-01T00:00+08:00")
    world.clock.at = wita(10, 7, 7, 30)
    at_b2 = {"place_type": "office", "lat": B2.lat + 0.00004, "lon": B2.lon, "accuracy_m": 10}
    status, body = await world.post("ani", "/api/v1/attendance/check-in", at_b2)
    assert status == 201, body
    assert (body["building"], body["also_within"]) == ("b2", ["b1"])
    assert body["at"] == "2026-10-07T07:30:00+08:00"
    day = await world.get("ani", "/api/v1/attendance/day?day=2026-10-07")
    assert day["record"]["mode"] == "wfo_other"  # b2 is Bappenas's, not Ani's Kemenpan
    assert any("within the geofence of 2 buildings" in r for r in day["record"]["reasons"])
    (signal,) = day["signals"]
    assert (signal["building"], signal["also_within"]) == ("b2", ["b1"])
    assert signal["at"] == "2026-10-07T07:30:00+08:00"
    assert signal["received_at"].endswith("+08:00")
    at_b1 = {"place_type": "office", "lat": B1.lat - 0.00004, "lon": B1.lon}
    status, body = await world.post("ani", "/api/v1/attendance/check-in", at_b1)
    assert (status, body["building"], body["also_within"]) == (201, "b1", ["b2"])


async def test_an_admin_token_of_no_person_reads_absences_and_days(world: World) -> None:
    """Issue 16: docs/api.md lets admins read any unit's absences and anyone's day."""
    await known_since(world, "2026-10-01T00:00+08:00")
    world.clock.at = wita(10, 7, 10)
    conn = await asyncpg.connect(world.url)
    try:
        admin = {"Authorization": f"Bearer {await create_token(conn, 'ops', 'admin')}"}
        employee = {"Authorization": f"Bearer {await create_token(conn, 'svc', 'employee')}"}
    finally:
        await conn.close()
    get = world.client.get
    response = await get("/api/v1/attendance/absences?year=2026", headers=admin)
    assert response.status == 400
    assert (await response.json())["invalid_params"][0]["name"] == "agency"
    path = "/api/v1/attendance/absences?year=2026&agency=kemenpan&unit=sdm"
    response = await get(path, headers=admin)
    assert response.status == 200, await response.text()
    got = {p["person"]: p["unexcused_days"] for p in (await response.json())["people"]}
    assert got == {"ani": 4, "baru": 2, "budi": 4, "kontrak": 2, "papua": 4}
    response = await get("/api/v1/attendance/day?day=2026-10-06&person=ani", headers=admin)
    assert response.status == 200, await response.text()
    assert (await response.json())["record"]["mode"] == "absent"
    response = await get("/api/v1/attendance/day?day=2026-10-06", headers=admin)
    assert response.status == 400
    assert (await response.json())["invalid_params"][0]["name"] == "person"
    # still: a token of no person that is not an admin's reads nothing; nor others' days
    response = await get(path, headers=employee)
    assert (response.status, (await response.json())["type"].rsplit("/", 1)[-1]) == (
        403,
        "not-a-person",
    )
    response = await get("/api/v1/attendance/day?day=2026-10-06&person=budi", headers=admin)
    assert response.status == 200
    response = await world.client.get(
        "/api/v1/attendance/day?day=2026-10-06&person=budi", headers=world.tokens["ani"]
    )
    assert response.status == 403


async def test_people_and_buildings_stored_before_0021_count_from_their_first_signal(
    empty_database_url: str, tmp_path: Path
) -> None:
    """An existing deployment keeps the days it has evidence for, and no more."""
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) < 21:
            (tmp_path / path.name).write_text(path.read_text())
    conn = await asyncpg.connect(empty_database_url)
    try:
        # the old schema without today's SQL sources: they are bound to today's tables
        # (the dirty-day trigger reads people.duty_station_tz, of migration 0047)
        await migrate(conn, tmp_path, sources=None)
        await conn.execute(
            """INSERT INTO buildings (id, name) VALUES ('b1', 'B1'), ('b2', 'B2'), ('b3', 'B3');
               INSERT INTO people (id, name, agency, unit, home_building_id) VALUES
                   ('ani', 'Ani', 'k', 'u', 'b1'), ('baru', 'Baru', 'k', 'u', 'b3');
               INSERT INTO attendance_signals (person_id, kind, at, place_type, building_id,
                   source) VALUES
                   ('ani', 'badge_in', '2026-03-02T07:30+08:00', 'office', 'b2', 'r:1'),
                   ('ani', 'app_check_in', '2026-02-02T07:30+08:00', 'home', NULL, 'r:2')"""
        )
        await migrate(conn)
        people = dict(await conn.fetch("SELECT id, known_since FROM people"))
        buildings = dict(await conn.fetch("SELECT id, created_at FROM buildings"))
        migrated_at = await conn.fetchval(
            "SELECT applied_at FROM schema_migrations WHERE version = 21"
        )
    finally:
        await conn.close()
    assert people["ani"] == datetime(2026, 2, 2, 7, 30, tzinfo=WITA)
    assert people["baru"] == migrated_at  # no evidence: from the migration on
    # the home building of a check-in from home, and where the badge was tapped
    assert buildings["b1"] == datetime(2026, 2, 2, 7, 30, tzinfo=WITA)
    assert buildings["b2"] == datetime(2026, 3, 2, 7, 30, tzinfo=WITA)
    assert buildings["b3"] == migrated_at


async def test_the_same_app_check_in_within_a_minute_is_the_same_signal(world: World) -> None:
    """Issue 16: 100 check-ins in a row stored 100 signals (each recomputing the day).
    The same person, kind and place within a minute answer the first signal with 200."""
    await known_since(world, "2026-10-01T00:00+08:00")
    world.clock.at = wita(10, 7, 8)
    home = {"place_type": "home"}
    status, first = await world.post("ani", "/api/v1/attendance/check-in", home)
    assert status == 201, first
    answers = [await world.post("ani", "/api/v1/attendance/check-in", home) for _ in range(20)]
    world.clock.at = wita(10, 7, 8) + timedelta(seconds=59)
    answers += await asyncio.gather(
        *(world.post("ani", "/api/v1/attendance/check-in", home) for _ in range(20))
    )
    assert {status for status, _ in answers} == {200}
    assert all(body == first for _, body in answers)
    signals = "SELECT kind, place_type FROM attendance_signals WHERE person_id = 'ani'"
    assert len(await fetch(world.url, signals)) == 1
    # another place, another kind, another person, or a minute later: new signals
    at_b1 = {"place_type": "office", "lat": B1.lat, "lon": B1.lon}
    assert (await world.post("ani", "/api/v1/attendance/check-in", at_b1))[0] == 201
    assert (await world.post("ani", "/api/v1/attendance/check-out", home))[0] == 201
    assert (await world.post("papua", "/api/v1/attendance/check-in", home))[0] == 201
    world.clock.at = wita(10, 7, 8, 1) + timedelta(seconds=1)
    status, later = await world.post("ani", "/api/v1/attendance/check-in", home)
    assert (status, later["at"]) == (201, "2026-10-07T08:01:01+08:00")
    assert len(await fetch(world.url, signals)) == 4


async def test_a_late_tap_is_pending_evidence_until_a_correction_citing_it_is_approved(
    world: World,
) -> None:
    """Received two days after its time, a tap is shown as pending evidence and counts
    for nothing; a correction that cites it, once approved, makes it count."""
    await known_since(world, "2026-09-01T00:00+08:00")
    world.clock.at = wita(10, 9, 10)
    (row,) = await fetch(
        world.url,
        """INSERT INTO attendance_signals
               (person_id, kind, at, place_type, building_id, source, received_at)
           VALUES ('ani', 'badge_in', '2026-10-06T07:35+08:00', 'office', 'b1',
                   'reading:door-b1/5f0c2a9e-1f7b-4d1e-9d7e-3b8f2a6c1d40/7',
                   '2026-10-08T07:36+08:00')
           RETURNING id""",
    )
    tap = f"s{row['id']}"
    day = "/api/v1/attendance/day?day=2026-10-06"
    body = await world.get("ani", day)
    assert body["record"]["mode"] == "absent" and body["signals"] == []
    assert [s["id"] for s in body["pending_evidence"]] == [tap]
    assert body["pending_evidence"][0]["received_at"] == "2026-10-08T07:36:00+08:00"
    assert any(r.startswith(f"pending evidence: badge_in {tap}") for r in body["record"]["reasons"])

    cite = {**CORRECTION, "from": "2026-10-06"}
    status, problem = await world.post(
        "ani", "/api/v1/attendance/requests", {**cite, "evidence": []}
    )
    assert (status, problem["invalid_params"][0]["name"]) == (400, "clock_in")  # nothing cited
    for bad in (["s999999999"], [tap.upper()], tap, ["s\u0661\u0662"]):
        status, problem = await world.post(
            "ani", "/api/v1/attendance/requests", {**cite, "evidence": bad}
        )
        assert status == 400, problem
        assert problem["invalid_params"][0]["name"] == "evidence"
    status, created = await world.post(
        "ani", "/api/v1/attendance/requests", {**cite, "evidence": [tap]}
    )
    assert status == 201, created
    assert created["evidence"] == [tap]
    pending = await world.get("ani", day)  # until approved
    assert {**pending, "audit": []} == {**body, "audit": []}
    status, approved = await world.post(
        "budi", f"/api/v1/attendance/requests/{created['id']}/approve"
    )
    assert status == 200, approved
    after = await world.get("ani", day)
    assert after["pending_evidence"] == []
    assert [s["id"] for s in after["signals"]] == [tap]
    assert (after["record"]["mode"], after["record"]["clock_in"]) == (
        "wfo",
        "2026-10-06T07:35:00+08:00",
    )
