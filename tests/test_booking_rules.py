"""Booking rules, in the building's zone: day boundaries, offsets, other zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ikn_core.booking import (
    BookingRules,
    CancelTooLate,
    OutsideCheckInWindow,
    Recurrence,
    Repeat,
    RuleBroken,
    ZoneRestricted,
    check_access,
    check_in_window,
)

WITA = ZoneInfo("Asia/Makassar")
WIB = ZoneInfo("Asia/Jakarta")
# 00:30 on 24 November in WITA, still 23 November in UTC.
NOW = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)
RULES = BookingRules()


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _broken(rules: BookingRules, start: str, end: str, tz: ZoneInfo = WITA) -> str | None:
    try:
        rules.check(_t(start), _t(end), NOW, tz)
    except RuleBroken as exc:
        return exc.kind
    return None


@pytest.mark.parametrize(
    ("start", "end", "kind"),
    [
        ("2026-11-24T08:00:00+08:00", "2026-11-24T17:00:00+08:00", None),
        # Z and +08:00 name the same instants: 00:00Z is 08:00 WITA.
        ("2026-11-24T00:00:00Z", "2026-11-24T09:00:00Z", None),
        ("2026-11-23T21:00:00Z", "2026-11-24T07:00:00+08:00", "outside-allowed-hours"),
        ("2026-11-24T05:59:00+08:00", "2026-11-24T09:00:00+08:00", "outside-allowed-hours"),
        ("2026-11-24T06:00:00+08:00", "2026-11-24T20:00:00+08:00", "too-long"),
        ("2026-11-24T12:00:00+08:00", "2026-11-24T20:00:01+08:00", "outside-allowed-hours"),
        ("2026-11-24T19:00:00+08:00", "2026-11-24T20:00:00+08:00", None),
        ("2026-11-24T08:00:00+08:00", "2026-11-24T08:29:00+08:00", "too-short"),
        ("2026-11-24T08:00:00+08:00", "2026-11-24T08:00:00+08:00", "end-before-start"),
        # Earlier the same WITA day (the UTC date is still the 23rd): in the past.
        ("2026-11-24T00:00:00+08:00", "2026-11-24T07:00:00+08:00", "in-the-past"),
        # Maximum days ahead counts WITA days: today is the 24th, so 8 December is the last.
        ("2026-12-08T19:00:00+08:00", "2026-12-08T20:00:00+08:00", None),
        ("2026-12-09T06:00:00+08:00", "2026-12-09T07:00:00+08:00", "too-far-ahead"),
        # ... even written in UTC, where 8 December 19:00 WITA is 11:00Z.
        ("2026-12-08T11:00:00Z", "2026-12-08T12:00:00Z", None),
        ("2026-12-08T22:00:00Z", "2026-12-08T23:00:00Z", "too-far-ahead"),
    ],
)
def test_default_rules_in_wita(start: str, end: str, kind: str | None) -> None:
    assert _broken(RULES, start, end) == kind


def test_across_midnight_wita_needs_an_all_day_building() -> None:
    start, end = "2026-11-24T22:00:00+08:00", "2026-11-25T02:00:00+08:00"
    assert _broken(RULES, start, end) == "outside-allowed-hours"
    all_day = BookingRules(opens_minute=0, closes_minute=1440)
    assert _broken(all_day, start, end) is None
    # The same night written across the UTC date line: 14:00Z to 18:00Z.
    assert _broken(all_day, "2026-11-24T14:00:00Z", "2026-11-24T18:00:00Z") is None


def test_ending_at_midnight_when_the_building_closes_at_midnight() -> None:
    late = BookingRules(opens_minute=6 * 60, closes_minute=1440)
    assert _broken(late, "2026-11-24T20:00:00+08:00", "2026-11-25T00:00:00+08:00") is None
    assert (
        _broken(late, "2026-11-24T20:00:00+08:00", "2026-11-25T00:01:00+08:00")
        == "outside-allowed-hours"
    )


def test_a_building_in_another_zone_uses_its_own_hours() -> None:
    # 05:30 WIB is 06:30 WITA: open in Nusantara, still closed in Jakarta.
    start, end = "2026-11-24T05:30:00+07:00", "2026-11-24T08:00:00+07:00"
    assert _broken(RULES, start, end, WITA) is None
    assert _broken(RULES, start, end, WIB) == "outside-allowed-hours"
    # 19:30 WIB ends at 21:30 WITA: closed in Nusantara, open in Jakarta.
    evening = ("2026-11-24T18:00:00+07:00", "2026-11-24T19:30:00+07:00")
    assert _broken(RULES, *evening, WIB) is None
    assert _broken(RULES, *evening, WITA) == "outside-allowed-hours"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="start"):
        RULES.check(datetime(2026, 11, 24, 8), _t("2026-11-24T09:00:00+08:00"), NOW, WITA)


def test_rules_check_themselves() -> None:
    with pytest.raises(ValueError, match="allowed hours"):
        BookingRules(opens_minute=600, closes_minute=600)
    with pytest.raises(ValueError, match="durations"):
        BookingRules(min_minutes=60, max_minutes=30)


def test_check_in_window() -> None:
    start = _t("2026-11-24T08:00:00+08:00")
    end = start + timedelta(hours=2)
    check_in_window(start, end, start - timedelta(minutes=15))
    check_in_window(start, end, end - timedelta(seconds=1))
    for now in (start - timedelta(minutes=16), end):
        with pytest.raises(OutsideCheckInWindow):
            check_in_window(start, end, now)


@given(
    start=st.datetimes(
        min_value=datetime(2026, 11, 24), max_value=datetime(2026, 12, 10), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=1, max_value=24 * 60),
    tz=st.sampled_from([WITA, WIB, ZoneInfo("America/New_York"), ZoneInfo("Pacific/Kiritimati")]),
)
def test_an_accepted_booking_keeps_every_rule(start: datetime, minutes: int, tz: ZoneInfo) -> None:
    end = start + timedelta(minutes=minutes)
    try:
        RULES.check(start, end, NOW, tz)
    except RuleBroken:
        return
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    assert RULES.min_minutes <= minutes <= RULES.max_minutes
    assert local_start.date() == local_end.date()
    assert (local_start.hour, local_start.minute) >= (6, 0)
    assert local_end.time() <= datetime(2000, 1, 1, 20).time()
    assert local_start.date() <= NOW.astimezone(tz).date() + timedelta(days=14)


def test_the_cancellation_cut_off_closes_n_minutes_before_the_start() -> None:
    start = _t("2026-11-24T08:00:00+08:00")
    rules = BookingRules(cancel_cutoff_minutes=60)
    rules.check_cancel(start, _t("2026-11-24T07:00:00+08:00"))  # exactly N before: allowed
    with pytest.raises(CancelTooLate):
        rules.check_cancel(start, _t("2026-11-23T23:00:01Z"))  # 07:00:01 WITA
    BookingRules().check_cancel(start, start + timedelta(hours=1))  # no cut-off: any time


def test_a_restricted_zone_lists_agencies_or_agency_units() -> None:
    check_access(None, "bappenas", "ti")  # open zone
    check_access(("kemenpan/sdm", "bappenas"), "bappenas", "ti")
    check_access(("kemenpan/sdm",), "kemenpan", "sdm")
    for agency, unit in (("kemenpan", "ti"), ("otorita", "sdm")):
        with pytest.raises(ZoneRestricted):
            check_access(("kemenpan/sdm", "bappenas"), agency, unit)


@given(count=st.integers(min_value=1, max_value=60), weekly=st.booleans())
def test_occurrences_keep_the_local_wall_clock(count: int, weekly: bool) -> None:
    tz = ZoneInfo("America/New_York")  # DST changes: the UTC offset moves, local time does not
    start = datetime(2026, 10, 20, 9, tzinfo=tz)
    series = Recurrence(
        start, start + timedelta(hours=8), Repeat("weekly" if weekly else "daily"), count
    )
    found = series.occurrences(tz)
    assert len(found) == count
    assert all((s.hour, e.hour, s.date() == e.date()) == (9, 17, True) for s, e in found)
