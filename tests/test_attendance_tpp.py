"""Issue 20: the e-Kinerja / TPP month. The rule pure (``ikn_core.attendance.tpp_month``),
the worked example of docs/attendance.md checked row by row against the figures written
there by hand, the policy file's ``tpp`` table, and the export through the real API (who
may read it, problem+json naming the field, the documented schema) and ``ikn export tpp``.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_schema_validator import OAS31Validator

from api.app import make_app
from api.attendance.handlers import CLOCK
from api.openapi import load_document
from ikn_core.attendance import (
    DailyRecord,
    Excuse,
    ExcuseKind,
    PlaceType,
    Policies,
    PolicyError,
    Signal,
    SignalKind,
    TppRules,
    compute_day,
    tpp_month,
)
from ikn_store.tokens import create_token
from tests.helpers import api_settings, imported
from tests.test_attendance_e2e import Clock
from tests.test_import import _ikn

ROOT = Path(__file__).resolve().parent.parent
WITA = ZoneInfo("Asia/Makassar")
POLICIES = Policies.default()
DECEMBER = date(2026, 12, 1)


# ---------------------------------------------------------------- the worked example


def _section() -> str:
    text = (ROOT / "docs" / "attendance.md").read_text(encoding="utf-8")
    start = text.index("### A worked example")
    return text[start : text.index("\n## ", start)]


def _table(section: str, header: str) -> list[list[str]]:
    """The rows of the markdown table whose header line starts with ``header``."""
    lines = section[section.index(header) :].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _at(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=WITA)


def _record(day: date, place: str, clock_in: str, clock_out: str, excuse: str) -> DailyRecord:
    """Ani's day from the table's signals, as the platform computes it."""
    kinds = (
        (SignalKind.BADGE_IN, SignalKind.BADGE_OUT)
        if place == "office"
        else (SignalKind.APP_CHECK_IN, SignalKind.APP_CHECK_OUT)
    )
    signals = [
        Signal(f"s{day.day}{n}", kind, _at(day, hhmm), PlaceType(place), *_building(place))
        for n, (kind, hhmm) in enumerate(zip(kinds, (clock_in, clock_out), strict=True))
        if hhmm
    ]
    found = Excuse(day, ExcuseKind(excuse), id=f"r{day.day}") if excuse else None
    policy = POLICIES.in_force(day)
    return compute_day(day, WITA, "kemenpan", signals, policy=policy, excuse=found)


def _building(place: str) -> tuple[str | None, str | None]:
    return ("b1", "kemenpan") if place == "office" else (None, None)


def _ordinary_days(listed: set[date]) -> list[DailyRecord]:
    """The days not listed: badge in 07:25, out 16:05 (Friday 16:35)."""
    out = []
    for n in range(31):
        day = DECEMBER + timedelta(n)
        if day in listed or not POLICIES.in_force(day).is_working_day(day):
            continue
        leave = "16:35" if day.isoweekday() == 5 else "16:05"
        out.append(_record(day, "office", "07:25", leave, ""))
    return out


def _example() -> tuple[list[list[str]], list[DailyRecord], dict[str, str]]:
    rows = _table(_section(), "| day | place |")
    listed = [_record(date.fromisoformat(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
    kinds = {f"r{date.fromisoformat(r[0]).day}": r[4] for r in rows if r[4]}
    days = {r.day for r in listed}
    return rows, [*listed, *_ordinary_days(days)], kinds


def test_every_row_of_the_worked_example_is_what_the_rules_compute() -> None:
    rows, records, kinds = _example()
    assert len(rows) == 13
    by_day = {r.day: r for r in records}
    for row in rows:
        day = date.fromisoformat(row[0])
        record = by_day[day]
        one = tpp_month(DECEMBER, [record], kinds, POLICIES)
        late_band = next((b.code for b in one.late_bands if b.days), "")
        early_band = next((b.code for b in one.early_departure_bands if b.days), "")
        assert one.deduction is not None
        computed = [
            record.mode.value,
            str(record.late_minutes),
            late_band,
            str(record.early_departure_minutes),
            early_band,
            f"{one.deduction.total / 100:.2f}",
        ]
        assert computed == row[5:], row[0]


def _figures(month: Any) -> dict[str, list[str]]:
    bands = {b.code: b for b in (*month.late_bands, *month.early_departure_bands)}
    out = {
        code: [str(b.days), str(b.minutes), f"{b.deduction_hundredths / 100:.2f}"]
        for code, b in bands.items()
    }
    d = month.deduction
    out["late"] = [str(month.late_days), str(month.late_minutes), f"{d.late / 100:.2f}"]
    out["early departure"] = [
        str(month.early_departure_days),
        str(month.early_departure_minutes),
        f"{d.early_departure / 100:.2f}",
    ]
    out["unexcused absence"] = [str(month.unexcused_absences), "", f"{d.absence / 100:.2f}"]
    out["deduction before the cap"] = ["", "", f"{d.uncapped / 100:.2f}"]
    out["deduction"] = ["", "", f"{d.total / 100:.2f}"]
    return out


def test_the_worked_example_totals_are_the_hand_computed_ones() -> None:
    _, records, kinds = _example()
    month = tpp_month(DECEMBER, records, kinds, POLICIES)
    totals = _table(_section(), "| figure | days |")
    figures = _figures(month)
    assert len(totals) == 13
    for row in totals:
        assert figures[row[0]] == row[1:], row[0]
    counted = " ".join(_section().split("Counted:", 1)[1].split())
    expected = (
        f"{month.working_days} working days, {month.days_present} present "
        f"({month.wfo_days} WFO, {month.wfa_days} WFA, one over the weekly cap: "
        f"{month.wfa_over_cap[0]}), {month.unexcused_absences} unexcused absences, "
        f"{month.excused_days} excused ({month.leave_days} leave, "
        f"{month.official_travel_days} official travel), {month.missing_clock_in} missing "
        f"clock-in, {month.missing_clock_out} missing clock-out."
    )
    assert counted.startswith(expected), counted
    assert len(month.wfa_over_cap) == 1 and month.wfo_other_agency_days == 0
    # the agency version with a lower cap, as the example's last sentence says
    cap, capped = re.findall(
        r"monthly_cap_percent = (\d+)`\s+the deduction is ([\d.]+) %", counted
    )[0]
    rules = POLICIES.in_force(DECEMBER).tpp
    assert rules is not None
    lower = dataclasses.replace(rules, monthly_cap_hundredths=int(cap) * 100)
    agency = Policies.of(
        [dataclasses.replace(v, tpp=lower) if v.tpp else v for v in POLICIES.versions]
    )
    again = tpp_month(DECEMBER, records, kinds, agency)
    assert again.deduction is not None and again.deduction.capped
    assert f"{again.deduction.total / 100:.2f}" == capped


def test_other_months_only_feed_the_weekly_cap() -> None:
    """The week of Tuesday 1 December began on Monday 30 November: two WFA days then
    make Ani's WFA day of 1 December her third of the week."""
    monday, tuesday = date(2026, 11, 30), date(2026, 11, 24)
    records = [
        _record(tuesday, "home", "07:20", "16:00", ""),  # another week: no effect
        _record(monday, "home", "07:20", "16:00", ""),
        _record(monday + timedelta(1), "home", "07:20", "16:00", ""),
    ]
    month = tpp_month(DECEMBER, records, {}, POLICIES)
    assert month.wfa_over_cap == () and month.wfa_days == 1
    second = _record(date(2026, 11, 27), "home", "07:20", "16:35", "")  # Friday, week before
    records.append(_record(date(2026, 11, 26), "home", "07:20", "16:00", ""))
    records.append(second)
    # the week of 30 November: Monday 30 and Tuesday 1 only, within the cap of 2
    assert tpp_month(DECEMBER, records, {}, POLICIES).wfa_over_cap == ()
    records.append(_record(date(2026, 12, 2), "home", "07:20", "16:00", ""))
    assert tpp_month(DECEMBER, records, {}, POLICIES).wfa_over_cap == (date(2026, 12, 2),)


def test_a_policy_without_tpp_rules_gives_no_deduction() -> None:
    text = (ROOT / "ikn_core/attendance/policies/national.toml").read_text(encoding="utf-8")
    bare = Policies.parse(text[: text.index("\n[policy.tpp]\n")], "bare.toml")
    _, records, kinds = _example()
    month = tpp_month(DECEMBER, records, kinds, bare)
    assert month.deduction is None and month.late_minutes == 244
    assert month.as_json()["deduction"] is None


# ---------------------------------------------------------------- the policy file


def _national() -> str:
    return (ROOT / "ikn_core/attendance/policies/national.toml").read_text(encoding="utf-8")


def test_the_national_tpp_example_is_marked_as_one_and_reads_as_written() -> None:
    text = _national()
    assert "AN EXAMPLE, NOT A NATIONAL FIGURE" in text
    rules = POLICIES.in_force(DECEMBER).tpp
    assert isinstance(rules, TppRules)
    assert [(b.code, b.min_minutes, b.max_minutes, b.hundredths) for b in rules.late_bands] == [
        ("TL1", 1, 30, 50),
        ("TL2", 31, 60, 100),
        ("TL3", 61, 90, 125),
        ("TL4", 91, None, 150),
    ]
    assert [b.code for b in rules.early_departure_bands] == ["PSW1", "PSW2", "PSW3", "PSW4"]
    assert (rules.absence_day_hundredths, rules.monthly_cap_hundredths) == (500, 10_000)


def test_a_later_version_changes_only_the_tpp_keys_it_sets() -> None:
    text = _national() + (
        '\n[[policy]]\nversion = "agency-2027.1"\neffective_from = 2027-01-01\n'
        "[policy.tpp]\nmonthly_cap_percent = 50\n"
    )
    policies = Policies.parse(text, "agency.toml")
    new, old = policies.in_force(date(2027, 1, 4)).tpp, policies.in_force(DECEMBER).tpp
    assert new is not None and old is not None
    assert new.monthly_cap_hundredths == 5000 and old.monthly_cap_hundredths == 10_000
    assert new.late_bands == old.late_bands


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("absence_day_percent = 5", "absence_day_percent = 0.125"),
            "policy[0].tpp.absence_day_percent: expected a percent from 0 to 100 with at most 2 "
            "decimals, got float 0.125",
        ),
        (
            ("monthly_cap_percent = 100", "monthly_cap_percent = 101"),
            "policy[0].tpp.monthly_cap_percent: expected a percent",
        ),
        (
            ('code = "TL2", min_minutes = 31', 'code = "TL2", min_minutes = 30'),
            "policy[0].tpp.late_bands[1].min_minutes: bands must ascend without overlapping",
        ),
        (
            ('code = "PSW2"', 'code = "PSW1"'),
            "policy[0].tpp.early_departure_bands[1].code: 'PSW1' used twice",
        ),
        (
            ("monthly_cap_percent = 100", "monthly_cap = 100"),
            "policy[0].tpp.monthly_cap_percent: missing",
        ),
    ],
)
def test_a_wrong_tpp_table_names_its_key(change: tuple[str, str], message: str) -> None:
    text = _national()
    assert change[0] in text
    with pytest.raises(PolicyError) as caught:
        Policies.parse(text.replace(change[0], change[1], 1), "national.toml")
    assert str(caught.value).startswith(f"national.toml: {message}"), str(caught.value)


# ---------------------------------------------------------------- through the API

SPACES = """\
kind,id,parent,name,tz,lat,lon,agency,live_from
building,b1,,Gedung Kemenpan,Asia/Makassar,-0.9745,116.7085,kemenpan,2026-09-01
"""
PEOPLE = """\
id,name,agency,unit,role,home_building,employment_start,employment_end
ani,Ani,kemenpan,sdm,employee,b1,,
budi,Budi,kemenpan,sdm,supervisor,b1,,
eko,Eko,kemenpan,keuangan,supervisor,b1,,
"""
Client = TestClient[web.Request, web.Application]


@dataclasses.dataclass
class World:
    client: Client
    url: str
    tokens: dict[str, dict[str, str]]


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    conn = await asyncpg.connect(database_url)
    try:
        roles = {"ani": "employee", "budi": "supervisor", "eko": "supervisor"}
        tokens = await imported(conn, SPACES, PEOPLE, roles)
        admin = await create_token(conn, "ops", "admin")
        tokens["admin"] = {"Authorization": f"Bearer {admin}"}
        await _december(conn)
    finally:
        await conn.close()
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    app[CLOCK] = Clock(datetime(2027, 1, 4, 9, tzinfo=WITA)).__call__
    async with TestClient(TestServer(app)) as client:
        yield World(client, database_url, tokens)


async def _december(conn: asyncpg.Connection) -> None:
    """Ani's signals and requests of the worked example, stored as the platform does."""
    rows, _, _ = _example()
    listed = {date.fromisoformat(r[0]) for r in rows}
    days = [(date.fromisoformat(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
    for n in range(31):
        day = DECEMBER + timedelta(n)
        if day not in listed and POLICIES.in_force(day).is_working_day(day):
            days.append((day, "office", "07:25", "16:35" if day.isoweekday() == 5 else "16:05", ""))
    for day, place, clock_in, clock_out, excuse in days:
        if excuse:
            await conn.execute(
                """INSERT INTO attendance_requests (person_id, kind, days, reason, status,
                       requested_by, decided_by, decided_at)
                   VALUES ('ani', $1, daterange($2, $2, '[]'), 'x', 'approved', 'ani',
                       'budi', now())""",
                excuse,
                day,
            )
        office = place == "office"
        for kind, hhmm in (
            (("badge_in" if office else "app_check_in"), clock_in),
            (("badge_out" if office else "app_check_out"), clock_out),
        ):
            if hhmm:
                await conn.execute(
                    """INSERT INTO attendance_signals (person_id, kind, at, place_type,
                           building_id, source, received_at)
                       VALUES ('ani', $1, $2, $3, $4, $5, $2)""",
                    kind,
                    _at(day, hhmm),
                    place,
                    "b1" if office else None,
                    f"test:{day}:{kind}",
                )


async def _get(world: World, who: str, url: str, status: int = 200) -> Any:
    response = await world.client.get(url, headers=world.tokens[who])
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


async def test_the_export_gives_the_worked_example_for_the_unit(world: World) -> None:
    body = await _get(world, "budi", "/api/v1/attendance/units/kemenpan/sdm/tpp?month=2026-12")
    document = load_document()
    schema = document["paths"]["/api/v1/attendance/units/{agency}/{unit}/tpp"]["get"]
    media = schema["responses"]["200"]["content"]["application/json"]["schema"]
    OAS31Validator({**media, "components": document["components"]}).validate(body)
    people = {p["person"]: p for p in body["people"]}
    assert sorted(people) == ["ani", "budi"]
    ani = people["ani"]
    assert ani["deduction"] == {
        "late_percent": 5.0,
        "early_departure_percent": 2.75,
        "absence_percent": 10.0,
        "uncapped_percent": 17.75,
        "cap_percent": 100.0,
        "percent": 17.75,
        "capped": False,
    }
    assert ani["excused"] == {"days": 2, "leave": 1, "official_travel": 1}
    assert (ani["working_days"], ani["days_present"], ani["wfo_days"], ani["wfa_days"]) == (
        21,
        17,
        13,
        4,
    )
    assert ani["wfa_over_weekly_cap"] == ["2026-12-17"]
    tl = {b["code"]: (b["days"], b["minutes"]) for b in ani["late"]["bands"]}
    assert tl == {"TL1": (2, 13), "TL2": (1, 45), "TL3": (0, 0), "TL4": (2, 186)}
    # Budi never clocked in: 21 unexcused days, 105 %, capped at 100
    assert people["budi"]["unexcused_absences"] == 21
    assert people["budi"]["deduction"]["percent"] == 100.0
    assert people["budi"]["deduction"]["capped"] is True


async def test_the_csv_export_has_one_row_per_person(world: World) -> None:
    url = "/api/v1/attendance/units/kemenpan/sdm/tpp?month=2026-12&format=csv"
    response = await world.client.get(url, headers=world.tokens["admin"])
    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    ani = next(r for r in rows if r["person"] == "ani")
    assert ani["late_TL4_days"] == "2" and ani["late_TL4_minutes"] == "186"
    assert ani["early_departure_PSW3_minutes"] == "70"
    assert (ani["deduction_percent"], ani["deduction_capped"]) == ("17.75", "false")
    assert (ani["leave_days"], ani["official_travel_days"]) == ("1", "1")
    assert ani["wfa_over_weekly_cap_days"] == "1"


async def test_only_the_units_supervisor_or_an_admin_reads_it(world: World) -> None:
    url = "/api/v1/attendance/units/kemenpan/sdm/tpp?month=2026-12"
    await _get(world, "admin", url)
    assert (await _get(world, "eko", url, 403))["status"] == 403  # another unit's supervisor
    assert (await _get(world, "ani", url, 403))["status"] == 403  # an employee
    response = await world.client.get(url)
    assert response.status == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "month"),
        ("month=2026-13", "month"),
        ("month=2025-06", "month"),  # before any attendance policy
        ("month=2026-12&format=xml", "format"),
        ("month=2026-12&person=ani", "person"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    world: World, query: str, field: str
) -> None:
    response = await world.client.get(
        f"/api/v1/attendance/units/kemenpan/sdm/tpp?{query}", headers=world.tokens["budi"]
    )
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    body = await response.json(content_type=None)
    assert body["invalid_params"][0]["name"] == field, body


async def test_ikn_export_tpp_writes_the_same_document(world: World, tmp_path: Path) -> None:
    """November 2026 is over both by the API's clock and by the command's (the real one):
    the command writes the API's document; Ani, with no signal then, is absent 21 days."""
    unit = ("--agency", "kemenpan", "--unit", "sdm", "--month", "2026-11")
    done = await asyncio.to_thread(_ikn, world.url, "export", "tpp", *unit, "--format", "json")
    assert done.returncode == 0, done.stderr
    api = await _get(world, "budi", "/api/v1/attendance/units/kemenpan/sdm/tpp?month=2026-11")
    assert json.loads(done.stdout) == api
    out = tmp_path / "tpp.csv"
    done = await asyncio.to_thread(_ikn, world.url, "export", "tpp", *unit, "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(r["person"], r["unexcused_absences"]) for r in rows] == [("ani", "21"), ("budi", "21")]
    assert rows[0]["deduction_percent"] == "100.00" and rows[0]["deduction_capped"] == "true"
    bad = await asyncio.to_thread(_ikn, world.url, "export", "tpp", *unit[:4])
    assert bad.returncode != 0 and "--month" in bad.stderr
