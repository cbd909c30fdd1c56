"""Attendance rules (issue 7): one test per policy clause, with the time zone in play.

Days of November 2026 used: Mon 23 .. Fri 27, Sat 28. Ramadan 1447 H: Mon 2 March 2026.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ikn_core.attendance import (
    AbsenceRun,
    AbsenceWarning,
    Coordinates,
    DailyRecord,
    Excuse,
    ExcuseKind,
    PlaceType,
    Policies,
    Policy,
    Signal,
    SignalError,
    SignalKind,
    WorkMode,
    absence_runs,
    compute_day,
    distance_m,
    local_day,
    remote_days_over_cap,
    unexcused_days,
    warning_level,
    within_geofence,
    yearly_summary,
)

WITA = ZoneInfo("Asia/Makassar")
AGENCY = "OIKN"
POLICIES = Policies.default()
MONDAY = date(2026, 11, 23)
FRIDAY = date(2026, 11, 27)
SATURDAY = date(2026, 11, 28)
RAMADAN_MONDAY = date(2026, 3, 2)


def at(day: date, hh: int, mm: int, ss: int = 0, zone: ZoneInfo = WITA) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=zone)


def sig(
    ident: str,
    kind: SignalKind,
    when: datetime,
    place: PlaceType = PlaceType.OFFICE,
    agency: str | None = AGENCY,
) -> Signal:
    building = "B-OIKN-1" if place is PlaceType.OFFICE and agency == AGENCY else None
    if place is PlaceType.OFFICE and agency not in (AGENCY, None):
        building = f"B-{agency}"
    office = place is PlaceType.OFFICE
    return Signal(ident, kind, when, place, building, agency if office else None)


def day_of(
    day: date, signals: Iterable[Signal], excuse: Excuse | None = None, policy: Policy | None = None
) -> DailyRecord:
    return compute_day(
        day, WITA, AGENCY, signals, policy=policy or POLICIES.in_force(day), excuse=excuse
    )


def badge_day(day: date, t_in: tuple[int, int], t_out: tuple[int, int]) -> DailyRecord:
    return day_of(
        day,
        [
            sig("in", SignalKind.BADGE_IN, at(day, *t_in)),
            sig("out", SignalKind.BADGE_OUT, at(day, *t_out)),
        ],
    )


def test_a_full_monday_in_the_own_office() -> None:
    record = badge_day(MONDAY, (7, 42), (16, 5))
    assert record.mode is WorkMode.WFO
    assert (record.late_minutes, record.early_departure_minutes) == (12, 0)
    # 07:42-16:05 is 503 minutes, less the 60-minute break.
    assert record.minutes_worked == 443
    assert record.clock_in == at(MONDAY, 7, 42)
    assert record.signals == ("in", "out")
    assert "clock-in 07:42 WITA from badge_in in: 12 min late against 07:30" in record.reasons
    assert record.policy_version == "national-2026.1"


def test_taps_at_2359_and_0001_wita_fall_on_different_days() -> None:
    late_tap = sig("a", SignalKind.BADGE_IN, at(MONDAY, 23, 59))
    # 00:01 WITA on Tuesday is still Monday 16:01 in UTC.
    early_tap = sig("b", SignalKind.BADGE_IN, datetime(2026, 11, 23, 16, 1, tzinfo=UTC))
    assert local_day(late_tap.at, WITA) == MONDAY
    assert local_day(early_tap.at, WITA) == MONDAY + timedelta(days=1)
    monday = day_of(MONDAY, [late_tap, early_tap])
    tuesday = day_of(MONDAY + timedelta(days=1), [late_tap, early_tap])
    assert monday.signals == ("a",)
    assert monday.late_minutes == (23 * 60 + 59) - (7 * 60 + 30)
    assert tuesday.signals == ("b",)
    assert tuesday.clock_in == at(MONDAY + timedelta(days=1), 0, 1)
    assert tuesday.late_minutes == 0


def test_a_friday_has_a_90_minute_break_and_ends_at_1630() -> None:
    leaving_at_four = badge_day(FRIDAY, (7, 30), (16, 0))
    assert leaving_at_four.early_departure_minutes == 30
    assert leaving_at_four.minutes_worked == 510 - 90
    full = badge_day(FRIDAY, (7, 30), (16, 30))
    assert (full.early_departure_minutes, full.minutes_worked) == (0, 450)
    assert "working day 07:30-16:30 (450 min + 90 min break)" in full.reasons


def test_a_ramadan_day_starts_at_0800_and_ends_at_1500() -> None:
    record = badge_day(RAMADAN_MONDAY, (8, 10), (14, 50))
    assert record.late_minutes == 10
    assert record.early_departure_minutes == 10
    assert record.minutes_worked == 400 - 30
    assert "Ramadan working day 08:00-15:00 (390 min + 30 min break)" in record.reasons
    # The same taps on a normal Monday: 40 minutes late, 70 minutes early.
    normal = badge_day(MONDAY, (8, 10), (14, 50))
    assert (normal.late_minutes, normal.early_departure_minutes) == (40, 70)


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2026, 8, 17), "public holiday: Proklamasi Kemerdekaan RI"),
        (date(2026, 12, 24), "collective leave: Cuti bersama Natal"),
        (SATURDAY, "weekend (sat)"),
    ],
)
def test_days_off_count_nothing_against_anyone(day: date, why: str) -> None:
    empty = day_of(day, [])
    assert empty.mode is WorkMode.NON_WORKING_DAY
    assert f"non-working day: {why}" in empty.reasons
    worked = badge_day(day, (9, 0), (12, 0))
    assert worked.mode is WorkMode.NON_WORKING_DAY
    assert (worked.late_minutes, worked.early_departure_minutes) == (0, 0)
    assert not worked.missing_clock_in and not worked.missing_clock_out
    assert worked.signals == ("in", "out")
    assert worked.minutes_worked == 180 - 60


@pytest.mark.parametrize("kind", [ExcuseKind.CUTI, ExcuseKind.DINAS_LUAR])
def test_leave_and_official_travel_excuse_the_day(kind: ExcuseKind) -> None:
    excuse = Excuse(MONDAY, kind, detail="tahunan", id="x1")
    record = day_of(MONDAY, [], excuse)
    assert record.mode is WorkMode.EXCUSED
    assert record.excuse_id == "x1"
    assert (record.late_minutes, record.missing_clock_in) == (0, False)
    assert f"excused: {kind.value} (tahunan) x1" in record.reasons


def test_an_excuse_for_another_day_is_refused() -> None:
    with pytest.raises(SignalError) as caught:
        day_of(MONDAY, [], Excuse(FRIDAY, ExcuseKind.CUTI))
    assert caught.value.key == "excuse.day"


def test_no_signal_on_a_working_day_is_an_unexcused_absence() -> None:
    record = day_of(MONDAY, [])
    assert record.mode is WorkMode.ABSENT
    assert not record.present
    assert record.late_minutes == 0


def test_a_missing_clock_out_counts_as_more_than_90_minutes_early() -> None:
    record = day_of(MONDAY, [sig("in", SignalKind.BADGE_IN, at(MONDAY, 7, 20))])
    assert record.missing_clock_out and not record.missing_clock_in
    assert record.early_departure_minutes == 91
    assert record.minutes_worked == 0
    assert record.clock_out is None


def test_a_missing_clock_in_counts_as_more_than_90_minutes_late() -> None:
    record = day_of(MONDAY, [sig("out", SignalKind.BADGE_OUT, at(MONDAY, 16, 10))])
    assert record.missing_clock_in and not record.missing_clock_out
    assert record.late_minutes == 91
    assert record.mode is WorkMode.WFO
    assert "no clock-in: counts as 91 min late (missing clock-in)" in record.reasons


def test_a_clock_out_before_the_clock_in_does_not_count() -> None:
    record = day_of(
        MONDAY,
        [
            sig("o", SignalKind.BADGE_OUT, at(MONDAY, 7, 0)),
            sig("i", SignalKind.BADGE_IN, at(MONDAY, 7, 5)),
        ],
    )
    assert record.missing_clock_out
    assert "badge_out o: before the clock-in, not a clock-out" in record.reasons


def test_early_departure_counts_whole_minutes_before_the_end() -> None:
    record = day_of(
        MONDAY,
        [
            sig("i", SignalKind.BADGE_IN, at(MONDAY, 7, 30, 59)),
            sig("o", SignalKind.BADGE_OUT, at(MONDAY, 15, 1, 30)),
        ],
    )
    assert record.late_minutes == 0  # 07:30:59 is within minute 07:30
    assert record.early_departure_minutes == 58


def test_remote_work_from_home_is_wfa() -> None:
    record = day_of(
        MONDAY,
        [
            sig("a", SignalKind.APP_CHECK_IN, at(MONDAY, 7, 25), PlaceType.HOME),
            sig("b", SignalKind.APP_CHECK_OUT, at(MONDAY, 16, 0), PlaceType.HOME),
        ],
    )
    assert record.mode is WorkMode.WFA
    assert (record.late_minutes, record.early_departure_minutes, record.minutes_worked) == (
        0,
        0,
        515 - 60,
    )


def test_another_agencys_building_is_wfo_other_and_own_office_wins() -> None:
    elsewhere = sig("x", SignalKind.BADGE_IN, at(MONDAY, 7, 30), agency="KEMENKEU")
    assert day_of(MONDAY, [elsewhere]).mode is WorkMode.WFO_OTHER
    declared = sig("d", SignalKind.APP_CHECK_IN, at(MONDAY, 7, 30), PlaceType.OTHER_OFFICE)
    assert day_of(MONDAY, [declared]).mode is WorkMode.WFO_OTHER
    home = sig("h", SignalKind.APP_CHECK_IN, at(MONDAY, 7, 0), PlaceType.HOME)
    own = sig("o", SignalKind.BADGE_IN, at(MONDAY, 13, 0))
    assert day_of(MONDAY, [home, elsewhere, own]).mode is WorkMode.WFO
    assert day_of(MONDAY, [home, elsewhere]).mode is WorkMode.WFO_OTHER


def test_desk_and_booking_signals_stand_in_only_when_there_is_no_clock_in() -> None:
    desk = sig("desk", SignalKind.DESK_OCCUPIED, at(MONDAY, 7, 20))
    booking = sig("bk", SignalKind.BOOKING_CHECK_IN, at(MONDAY, 7, 25))
    alone = day_of(MONDAY, [booking, desk])
    assert alone.clock_in == desk.at
    assert not alone.missing_clock_in and alone.missing_clock_out
    badge = sig("badge", SignalKind.BADGE_IN, at(MONDAY, 7, 40))
    with_badge = day_of(MONDAY, [desk, booking, badge])
    assert with_badge.clock_in == badge.at
    assert with_badge.late_minutes == 10
    assert with_badge.signals == ("desk", "bk", "badge")


def test_a_correction_counts_as_a_clock_in_and_out() -> None:
    record = day_of(
        MONDAY,
        [
            sig("tap", SignalKind.BADGE_IN, at(MONDAY, 7, 50)),
            sig("c1", SignalKind.CORRECTION_IN, at(MONDAY, 7, 30)),
            sig("c2", SignalKind.CORRECTION_OUT, at(MONDAY, 16, 0)),
        ],
    )
    assert (record.late_minutes, record.early_departure_minutes) == (0, 0)
    assert record.minutes_worked == 450


def national(**changes: object) -> Policy:
    """The national policy with some fields changed (``start`` as "HH:MM")."""
    base = POLICIES.in_force(MONDAY)
    if "start" in changes:
        start = time.fromisoformat(str(changes.pop("start")))
        changes["regular"] = replace(base.regular, start=start)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_lateness_tolerance_forgives_small_delays() -> None:
    policy = national(late_tolerance_minutes=5)
    five = day_of(MONDAY, [sig("i", SignalKind.BADGE_IN, at(MONDAY, 7, 35))], policy=policy)
    six = day_of(MONDAY, [sig("i", SignalKind.BADGE_IN, at(MONDAY, 7, 36))], policy=policy)
    assert (five.late_minutes, six.late_minutes) == (0, 6)


def test_naive_times_and_unknown_kinds_are_refused() -> None:
    with pytest.raises(SignalError) as naive:
        Signal("s", SignalKind.BADGE_IN, datetime(2026, 11, 23, 7, 30), PlaceType.OFFICE)
    assert naive.value.key == "at"
    with pytest.raises(SignalError) as kind:
        Signal("s", "badge_sideways", at(MONDAY, 7, 30), PlaceType.OFFICE)  # type: ignore[arg-type]
    assert kind.value.key == "kind"
    assert Signal("s", "badge_in", at(MONDAY, 7, 30), "home").kind is SignalKind.BADGE_IN  # type: ignore[arg-type]


def test_remote_days_beyond_the_weekly_cap_are_flagged() -> None:
    week = [MONDAY + timedelta(days=n) for n in range(5)]
    records = [
        day_of(d, [sig(f"h{d.day}", SignalKind.APP_CHECK_IN, at(d, 7, 30), PlaceType.HOME)])
        for d in week
    ]
    over = remote_days_over_cap(reversed(records), POLICIES)
    assert [r.day for r in over] == week[2:]  # the national cap is 2 a week


def test_geofence_accepts_inside_and_refuses_outside_or_vague_fixes() -> None:
    building = Coordinates(-0.9730, 116.7050)
    near = Coordinates(-0.9730, 116.7058, accuracy_m=20)  # about 89 m east
    assert 85 < distance_m(near, building) < 95
    radius = POLICIES.in_force(MONDAY).geofence_radius_m
    assert within_geofence(near, building, radius)
    assert not within_geofence(Coordinates(-0.9730, 116.7060), building, radius)
    assert not within_geofence(Coordinates(-0.9730, 116.7051, accuracy_m=500), building, radius)
    with pytest.raises(SignalError) as bad:
        Coordinates(91.0, 0.0)
    assert bad.value.key == "lat"


def test_a_past_day_is_computed_under_the_policy_then_in_force() -> None:
    later = national(start="08:00", version="v2", effective_from=date(2026, 11, 25))
    policies = Policies.of([later, national(version="v1")])
    tap = [sig("i", SignalKind.BADGE_IN, at(MONDAY, 7, 50))]
    before = compute_day(MONDAY, WITA, AGENCY, tap, policy=policies.in_force(MONDAY))
    assert (before.policy_version, before.late_minutes) == ("v1", 20)
    thursday = MONDAY + timedelta(days=3)
    tap2 = [sig("i", SignalKind.BADGE_IN, at(thursday, 7, 50))]
    after = compute_day(thursday, WITA, AGENCY, tap2, policy=policies.in_force(thursday))
    assert (after.policy_version, after.late_minutes) == ("v2", 0)


def test_as_json_is_ready_for_storage() -> None:
    doc = badge_day(MONDAY, (7, 42), (16, 5)).as_json()
    assert doc["clock_in"] == "2026-11-23T07:42:00+08:00"
    assert doc["mode"] == "wfo"
    assert doc["signals"] == ["in", "out"]
    record = badge_day(FRIDAY, (7, 42), (15, 5))
    assert DailyRecord.from_json(json.loads(json.dumps(record.as_json()))) == record
    with pytest.raises(SignalError) as caught:
        DailyRecord.from_json({"day": "2026-11-23"})
    assert caught.value.key == "policy_version"


def absent_on(days: Iterable[date]) -> list[DailyRecord]:
    return [day_of(d, []) for d in days]


def working_days_from(first: date, count: int) -> list[date]:
    policy = POLICIES.in_force(first)
    out: list[date] = []
    day = first
    while len(out) < count:
        if policy.is_working_day(day):
            out.append(day)
        day += timedelta(days=1)
    return out


def test_absences_accumulate_into_pp_94_2021_levels() -> None:
    days = working_days_from(date(2026, 9, 1), 12)
    scattered = days[::2]  # 6 absences, never two working days in a row
    present = [badge_day(d, (7, 30), (16, 0)) for d in days[1::2]]
    summary = yearly_summary(absent_on(scattered) + present, 2026, POLICIES)
    assert summary.total == 6
    assert summary.longest_run == 1
    assert [(w.level, w.rule, w.reached_on) for w in summary.warnings] == [
        ("teguran_lisan", "3 days a year", scattered[2]),
        ("teguran_tertulis", "4-6 days a year", scattered[3]),
    ]
    assert summary.level == "teguran_tertulis"
    policy = POLICIES.in_force(days[-1])
    assert warning_level(summary.total, summary.longest_run, policy) == "teguran_tertulis"
    assert warning_level(2, 2, policy) is None
    assert warning_level(28, 1, policy) == "pemberhentian"


def test_a_run_spans_weekends_and_holidays_and_ten_in_a_row_is_flagged() -> None:
    # Mon 10 Aug 2026 onwards: the run crosses two weekends and 17 August (a holiday).
    days = working_days_from(date(2026, 8, 10), 10)
    assert date(2026, 8, 17) not in days
    records = absent_on(days) + absent_on([date(2026, 1, 2)])
    summary = yearly_summary(records, 2026, POLICIES)
    assert summary.runs[-1] == AbsenceRun(days[0], days[-1], 10)
    assert summary.warnings[-1] == AbsenceWarning("pemberhentian", "10 days in a row", days[-1])
    assert yearly_summary(records, 2027, POLICIES).total == 0
    nine = yearly_summary(absent_on(days[:9]), 2026, POLICIES)
    assert all(w.rule != "10 days in a row" for w in nine.warnings)


def test_a_present_working_day_breaks_a_run() -> None:
    days = working_days_from(date(2026, 11, 23), 3)
    runs = absence_runs([days[0], days[2]], POLICIES)
    assert [r.days for r in runs] == [1, 1]
    assert unexcused_days(absent_on(days), 2026) == tuple(days)


def test_the_benchmark_runs_and_agrees_with_its_ceiling() -> None:
    from ikn.benchmarks.attendance_rules import Options, run

    figures = run(Options(people=30, days=3))
    assert figures["records"] == 90
    assert figures["late_minutes_agree"] is True
    assert figures["ratio"] > 0


def test_the_documented_reasons_are_what_the_rules_say() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "attendance.md").read_text("utf-8")
    record = day_of(
        MONDAY,
        [
            sig("s17", SignalKind.BADGE_IN, at(MONDAY, 7, 42)),
            sig("s20", SignalKind.BADGE_OUT, at(MONDAY, 16, 5)),
        ],
    )
    block = doc.split("policy national-2026.1\n", 1)[1].split("```", 1)[0]
    assert record.reasons == ("policy national-2026.1", *block.strip().splitlines())
