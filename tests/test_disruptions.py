"""Issue 20, outage grace: the platform's own disruption windows mark a lateness (or an
early departure) they overlap as "system disruption"; a unit's supervisor excuses a
window in bulk, and the TPP export deducts nothing for it. The rule pure
(``ikn_core.attendance.disruption``), then through the real API on a real PostgreSQL:
an administrator's declaration, the unit's list with the people affected, the bulk
excuse changing the days and the TPP figures, who may do what, and bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from openapi_schema_validator import OAS31Validator

from api.openapi import load_document
from ikn_core.attendance import (
    Cause,
    Disruption,
    PlaceType,
    Policies,
    Signal,
    SignalError,
    SignalKind,
    compute_day,
)
from ikn_core.settings import DisruptionSettings
from ikn_service.disruptions import ErrorCount, Noted, Recorder, ingest_lag
from tests.helpers import eventually
from tests.test_attendance_tpp import World, world

__all__ = ["world"]  # the fixture, imported
WITA = ZoneInfo("Asia/Makassar")
POLICIES = Policies.default()
DAY = date(2026, 12, 2)  # a Wednesday
UNIT = "/api/v1/attendance/units/kemenpan/sdm"


def _at(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=WITA)


def _day(clock_in: str | None, clock_out: str | None, *windows: Disruption) -> Any:
    signals = [
        Signal(f"s{n}", kind, _at(DAY, hhmm), PlaceType.OFFICE, "b1", "kemenpan")
        for n, (kind, hhmm) in enumerate(
            ((SignalKind.BADGE_IN, clock_in), (SignalKind.BADGE_OUT, clock_out))
        )
        if hhmm
    ]
    policy = POLICIES.in_force(DAY)
    return compute_day(DAY, WITA, "kemenpan", signals, policy=policy, disruptions=windows)


def _window(start: str, end: str, *, excused: bool = False) -> Disruption:
    return Disruption("d7", _at(DAY, start), _at(DAY, end), Cause.API_ERRORS, "b1", excused)


# ---------------------------------------------------------------- the rule, pure


def test_a_lateness_inside_a_window_is_marked_and_still_counts() -> None:
    plain = _day("08:15", "16:05")
    marked = _day("08:15", "16:05", _window("07:40", "08:10"))
    assert marked.late_minutes == plain.late_minutes == 45
    assert marked.system_disruption == ("d7",)
    assert marked.disruption_excused_minutes == 0
    line = marked.reasons[-1]
    assert "system disruption d7 (api_errors, 07:40-08:10 WITA, building b1)" in line
    assert "overlaps the lateness: marked system disruption" in line


def test_an_excused_window_makes_the_lateness_count_nothing() -> None:
    record = _day("08:15", "16:05", _window("07:40", "08:10", excused=True))
    assert (record.late_minutes, record.disruption_excused_minutes) == (0, 45)
    assert record.system_disruption == ("d7",)
    assert "excused by the unit's supervisor, 45 min not counted" in record.reasons[-1]
    assert record.as_json()["system_disruption"] == ["d7"]


@pytest.mark.parametrize(
    ("clock_in", "clock_out", "start", "end"),
    [
        ("08:15", "16:05", "06:00", "07:29"),  # before the day's start
        ("08:15", "16:05", "08:16", "09:00"),  # after the clock-in
        ("07:25", "16:05", "07:00", "08:00"),  # on time: no lateness to mark
        ("07:31", "16:05", "07:32", "08:00"),  # a minute late, outside its span
    ],
)
def test_a_lateness_outside_every_window_is_not_marked(
    clock_in: str, clock_out: str, start: str, end: str
) -> None:
    record = _day(clock_in, clock_out, _window(start, end, excused=True))
    assert record == _day(clock_in, clock_out)


def test_a_missing_clock_in_and_an_early_departure_are_marked_too() -> None:
    """A missing clock-in's span is the 91 minutes it counts as, from the start; an early
    departure's from the clock-out to the day's end (16:00 on a Wednesday)."""
    missing = _day(None, "16:05", _window("08:30", "08:40", excused=True))
    assert (missing.late_minutes, missing.missing_clock_in) == (0, True)
    assert missing.disruption_excused_minutes == 91
    early = _day("07:25", "15:30", _window("15:45", "15:50"))
    assert early.early_departure_minutes == 30 and early.system_disruption == ("d7",)
    assert "overlaps the early departure" in early.reasons[-1]


def test_a_record_stored_before_outage_grace_reads_as_unmarked() -> None:
    doc = _day("08:15", "16:05").as_json()
    del doc["system_disruption"], doc["disruption_excused_minutes"]
    record = type(_day("08:15", "16:05")).from_json(doc)
    assert (record.system_disruption, record.disruption_excused_minutes) == ((), 0)


def test_a_window_must_end_after_it_starts() -> None:
    with pytest.raises(SignalError, match="end"):
        _window("08:00", "08:00")


# ---------------------------------------------------------------- what a process notes


def test_the_error_rate_notes_a_window_over_its_threshold_only() -> None:
    settings = DisruptionSettings(error_window_s=60, error_rate=0.5, error_min=4)
    recorder = Recorder("api", settings)
    errors = ErrorCount(recorder)
    t0 = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    for n, failed in enumerate([True, False, True, True]):  # 3 of 4: over
        errors.count(t0 + timedelta(seconds=n), failed)
    errors.count(t0 + timedelta(seconds=61), True)  # the next window: 1 answer, too few
    errors.tick(t0 + timedelta(seconds=200))
    assert recorder.pending == [
        Noted(
            None,
            t0,
            t0 + timedelta(seconds=60),
            Cause.API_ERRORS,
            "3 of 4 answers were server errors",
        )
    ]


def test_ingest_lag_is_noted_per_building_past_its_threshold() -> None:
    recorder = Recorder("ingest", DisruptionSettings(ingest_lag_s=300))
    committed = datetime(2026, 12, 2, 0, 10, tzinfo=UTC)
    ingest_lag(recorder, committed, {"b1": committed - timedelta(minutes=6), "b2": committed})
    late = committed - timedelta(minutes=1)
    ingest_lag(recorder, committed + timedelta(seconds=5), {"b1": committed})  # 5 s: fine
    ingest_lag(recorder, committed + timedelta(minutes=5), {"b1": late})  # merged
    assert [(n.building_id, n.start, n.end) for n in recorder.pending] == [
        ("b1", committed - timedelta(minutes=6), committed + timedelta(minutes=5))
    ]


# ---------------------------------------------------------------- through the API


async def _call(
    world: World, who: str | None, method: str, url: str, status: int, **kw: Any
) -> Any:
    headers = world.tokens[who] if who else {}
    response = await world.client.request(method, url, headers=headers, **kw)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


def _validate(body: Any, path: str, method: str, status: str) -> None:
    document = load_document()
    schema = document["paths"][path][method]["responses"][status]["content"]
    media = next(iter(schema.values()))["schema"]
    OAS31Validator({**media, "components": document["components"]}).validate(body)


DECLARE = {
    "building": "b1",
    "start": "2026-12-02T07:40:00+08:00",
    "end": "2026-12-02T08:10:00+08:00",
    "detail": "the badge readers' network was down",
}


async def _declared(world: World) -> int:
    body = await _call(world, "admin", "POST", "/api/v1/attendance/disruptions", 201, json=DECLARE)
    _validate(body, "/api/v1/attendance/disruptions", "post", "201")
    assert (body["cause"], body["building"], body["recorded_by"]) == ("declared", "b1", "ops")
    window: int = body["id"]
    return window


async def _ani_day(world: World, day: str) -> Any:
    url = f"/api/v1/attendance/day?day={day}&person=ani"
    return (await _call(world, "budi", "GET", url, 200))["record"]


async def test_a_declared_window_marks_the_late_day_inside_it_only(world: World) -> None:
    """The stored days the window touches are marked dirty: the recompute job (every
    IKN_ATTENDANCE_INTERVAL_S) marks them."""
    window = await _declared(world)
    inside = await eventually(
        lambda: _ani_day(world, "2026-12-02"), lambda r: bool(r["system_disruption"])
    )
    assert inside["system_disruption"] == [f"d{window}"] and inside["late_minutes"] == 45
    outside = await _ani_day(world, "2026-12-01")  # 12 min late, no window then
    assert outside["system_disruption"] == [] and outside["late_minutes"] == 12
    listed = await _call(world, "budi", "GET", f"{UNIT}/disruptions?month=2026-12", 200)
    _validate(listed, "/api/v1/attendance/units/{agency}/{unit}/disruptions", "get", "200")
    [found] = listed["disruptions"]
    assert (found["id"], found["people_affected"], found["excused"]) == (window, 1, False)


async def test_the_bulk_excuse_changes_the_days_and_the_tpp_figures(world: World) -> None:
    tpp = f"{UNIT}/tpp?month=2026-12"
    before = {p["person"]: p for p in (await _call(world, "budi", "GET", tpp, 200))["people"]}
    assert before["ani"]["deduction"]["late_percent"] == 5.0
    window = await _declared(world)
    url = f"{UNIT}/disruptions/{window}/excuse"
    done = await _call(world, "budi", "POST", url, 200)
    _validate(
        done, "/api/v1/attendance/units/{agency}/{unit}/disruptions/{id}/excuse", "post", "200"
    )
    assert (done["excused_by"], done["new"], done["days_changed"]) == ("budi", True, 1)
    day = await _ani_day(world, "2026-12-02")
    assert (day["late_minutes"], day["disruption_excused_minutes"]) == (0, 45)
    assert any("excused by the unit's supervisor" in line for line in day["reasons"])
    after = {p["person"]: p for p in (await _call(world, "budi", "GET", tpp, 200))["people"]}
    ani = after["ani"]
    assert ani["deduction"]["late_percent"] == 4.0  # TL2's 1 % of 2 December is gone
    assert {b["code"]: b["days"] for b in ani["late"]["bands"]}["TL2"] == 0
    assert ani["deduction"]["percent"] == 16.75
    again = await _call(world, "budi", "POST", url, 200)  # twice is once
    assert (again["new"], again["days_changed"]) == (False, 0)
    listed = await _call(world, "admin", "GET", f"{UNIT}/disruptions?month=2026-12", 200)
    assert listed["disruptions"][0]["excused_by"] == "budi"
    every = await _call(world, "admin", "GET", "/api/v1/attendance/disruptions?month=2026-12", 200)
    _validate(every, "/api/v1/attendance/disruptions", "get", "200")
    assert [w["id"] for w in every["disruptions"]] == [window]
    conn = await asyncpg.connect(world.url)
    try:
        audit = await conn.fetch(
            "SELECT actor, day FROM attendance_audit WHERE action = 'disruption_excused'"
        )
    finally:
        await conn.close()
    assert [(a["actor"], a["day"]) for a in audit] == [("budi", DAY)]


async def test_who_may_list_excuse_and_declare(world: World) -> None:
    window = await _declared(world)
    listing = f"{UNIT}/disruptions?month=2026-12"
    excuse = f"{UNIT}/disruptions/{window}/excuse"
    declare = "/api/v1/attendance/disruptions"
    every = f"{declare}?month=2026-12"
    await _call(world, "budi", "GET", every, 403)  # a supervisor: their unit's list only
    for method, url, kw in (
        ("GET", every, {}),
        ("GET", listing, {}),
        ("POST", excuse, {}),
        ("POST", declare, {"json": DECLARE}),
    ):
        assert (await _call(world, None, method, url, 401, **kw))["status"] == 401
        assert (await _call(world, "ani", method, url, 403, **kw))["status"] == 403  # staff
    await _call(world, "eko", "GET", listing, 403)  # another unit's supervisor
    await _call(world, "eko", "POST", excuse, 403)
    await _call(world, "eko", "POST", declare, 403, json=DECLARE)
    await _call(world, "budi", "POST", declare, 403, json=DECLARE)  # the own supervisor
    await _call(world, "admin", "POST", excuse, 403)  # the supervisor excuses, not an admin
    await _call(world, "admin", "GET", listing, 200)
    await _call(world, "budi", "GET", listing, 200)
    # a window of another building touches no one of the unit: absent for it
    other = {**DECLARE, "building": None}
    conn = await asyncpg.connect(world.url)
    try:
        await conn.execute(
            """INSERT INTO buildings (id, name, tz) VALUES ('b9', 'Lain', 'Asia/Makassar')"""
        )
    finally:
        await conn.close()
    far = await _call(world, "admin", "POST", declare, 201, json={**other, "building": "b9"})
    await _call(world, "budi", "POST", f"{UNIT}/disruptions/{far['id']}/excuse", 404)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-12-02T07:40:00"}, "start"),  # naive
        ({"end": "2026-12-02T07:00:00+08:00"}, "end"),  # before the start
        ({"end": "2027-02-01T00:00:00+08:00"}, "end"),  # in the future, and too long
        ({"start": "2026-10-01T00:00:00+08:00"}, "end"),  # over 31 days
        ({"building": "nowhere"}, "building"),
        ({"building": 7}, "building"),
        ({"detail": ""}, "detail"),
        ({"cause": "x"}, "cause"),
    ],
)
async def test_a_bad_declaration_names_its_field(
    world: World, change: dict[str, Any], field: str
) -> None:
    body = await _call(
        world, "admin", "POST", "/api/v1/attendance/disruptions", 400, json={**DECLARE, **change}
    )
    assert body["invalid_params"][0]["name"] == field, body


@pytest.mark.parametrize(
    ("url", "field", "status"),
    [
        (f"{UNIT}/disruptions/abc/excuse", "id", 400),
        (f"{UNIT}/disruptions/-1/excuse", "id", 400),
        (f"{UNIT}/disruptions/1234567890123456789/excuse", "id", 400),
        (f"{UNIT}/disruptions/99999/excuse", None, 404),
    ],
)
async def test_a_bad_disruption_id_is_a_problem(
    world: World, url: str, field: str | None, status: int
) -> None:
    body = await _call(world, "budi", "POST", url, status)
    assert body["status"] == status
    if field:
        assert body["invalid_params"][0]["name"] == field


async def test_an_excuse_with_a_body_field_says_it_takes_none(world: World) -> None:
    # It said "unknown field; use " and nothing after: the route takes no field at all.
    window = await _declared(world)
    url = f"{UNIT}/disruptions/{window}/excuse"
    body = await _call(world, "budi", "POST", url, 400, json={"note": "x"})
    assert body["invalid_params"][0] == {
        "name": "note",
        "reason": "unknown field; this route takes no field",
    }


@pytest.mark.parametrize(
    ("query", "field"), [("", "month"), ("month=2026-13", "month"), ("month=2026-12&x=1", "x")]
)
async def test_a_bad_listing_names_its_field(world: World, query: str, field: str) -> None:
    body = await _call(world, "budi", "GET", f"{UNIT}/disruptions?{query}", 400)
    assert body["invalid_params"][0]["name"] == field
