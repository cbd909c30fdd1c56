"""The attendance policy file: the shipped national figures, versions, precise errors."""

from __future__ import annotations

import fnmatch
import tomllib
from datetime import date, time
from pathlib import Path

import pytest

from ikn_core.attendance import DayOffKind, Policies, PolicyError
from ikn_core.attendance.policy import FRI, MON, SAT, SUN, THU

ROOT = Path(__file__).resolve().parent.parent
NATIONAL = ROOT / "ikn_core" / "attendance" / "policies" / "national.toml"

MINIMAL = """
[[policy]]
version = "v1"
effective_from = 2026-01-01
working_days = ["mon", "tue", "wed", "thu", "fri"]
location = { geofence_radius_m = 100, retention_days = "none" }
remote_work = { max_days_per_week = 2 }

[policy.hours]
start = 07:30:00
hours_per_week = 37.5
break_minutes = 60
break_minutes_by_day = { fri = 90 }

[policy.ramadan]
start = 08:00:00
hours_per_week = 32.5
break_minutes = 30
periods = [ { start = 2026-02-19, end = 2026-03-20 } ]

[policy.days_off]
public_holidays = [ { date = 2026-08-17, name = "Proklamasi" } ]
collective_leave = []

[policy.lateness]
tolerance_minutes = 0
missing_clock_in_minutes = 91
missing_clock_out_minutes = 91

[policy.absence]
consecutive_days = 10
consecutive_level = "pemberhentian"
bands = [
    { min_days = 3, max_days = 3, level = "teguran_lisan" },
    { min_days = 4, level = "lebih" },
]
"""


def error_of(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        Policies.parse(text, "test.toml")
    return caught.value


def test_the_national_policy_holds_the_perpres_21_2023_figures() -> None:
    policy = Policies.default().in_force(date(2026, 11, 23))
    assert policy.working_days == frozenset({1, 2, 3, 4, 5})
    assert policy.regular.minutes_per_week == 37 * 60 + 30
    assert policy.regular.start == time(7, 30)
    assert policy.regular.breaks[MON - 1] == 60
    assert policy.regular.breaks[FRI - 1] == 90
    assert policy.ramadan.minutes_per_week == 32 * 60 + 30
    assert policy.ramadan.start == time(8, 0)
    monday, friday = policy.schedule(date(2026, 11, 23)), policy.schedule(date(2026, 11, 27))
    assert monday is not None and friday is not None
    assert (monday.start, monday.end, monday.work_minutes) == (time(7, 30), time(16), 450)
    assert friday.end == time(16, 30)
    ramadan = policy.schedule(date(2026, 3, 5))
    assert ramadan is not None and ramadan.ramadan
    assert (ramadan.start, ramadan.end, ramadan.work_minutes) == (time(8), time(15), 390)
    assert policy.schedule(date(2026, 11, 28)) is None
    assert SAT not in policy.working_days and SUN not in policy.working_days


def test_the_national_policy_holds_the_other_clauses() -> None:
    policy = Policies.default().in_force(date(2027, 6, 1))
    assert policy.missing_clock_in_minutes > 90
    assert policy.location_retention_days is None and not policy.stores_coordinates
    assert policy.geofence_radius_m > 0
    bands = [(b.min_days, b.max_days) for b in policy.absence_bands]
    assert bands == [(3, 3), (4, 6), (7, 10), (11, 20), (21, 27), (28, None)]
    assert policy.consecutive_absence_days == 10
    assert policy.absence_band(2) is None
    band = policy.absence_band(5)
    assert band is not None and band.level == "teguran_tertulis"
    holiday = policy.day_off(date(2026, 8, 17))
    assert holiday is not None and holiday.kind is DayOffKind.PUBLIC_HOLIDAY
    leave = policy.day_off(date(2026, 12, 24))
    assert leave is not None and leave.kind is DayOffKind.COLLECTIVE_LEAVE
    assert policy.day_off(date(2027, 12, 25)) is not None
    assert not policy.is_working_day(date(2026, 1, 1))


def test_the_national_policy_is_packaged_as_data() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["ikn_core"]
    relative = NATIONAL.relative_to(ROOT / "ikn_core").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)


def test_a_later_version_inherits_what_it_does_not_set(tmp_path: Path) -> None:
    text = MINIMAL + (
        '\n[[policy]]\nversion = "v2"\neffective_from = 2026-07-01\n'
        "[policy.hours]\nstart = 08:00:00\n"
        "[policy.location]\nretention_days = 30\n"
    )
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    policies = Policies.load(path)
    v1, v2 = policies.in_force(date(2026, 6, 30)), policies.in_force(date(2026, 7, 1))
    assert (v1.version, v1.regular.start, v1.location_retention_days) == ("v1", time(7, 30), None)
    assert (v2.version, v2.regular.start, v2.location_retention_days) == ("v2", time(8), 30)
    assert v2.regular.breaks[THU] == 90  # Friday's break, inherited
    assert v2.geofence_radius_m == 100
    assert v2.stores_coordinates


def test_no_policy_is_in_force_before_the_first_version() -> None:
    with pytest.raises(PolicyError) as caught:
        Policies.parse(MINIMAL).in_force(date(2025, 12, 31))
    assert "no policy in force on 2025-12-31" in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "key", "detail"),
    [
        (
            "end = 2026-03-20",
            "end = 2026-02-01",
            "policy[0].ramadan.periods[0].end",
            "before the start",
        ),
        (
            "start = 2026-02-19",
            'start = "soon"',
            "policy[0].ramadan.periods[0].start",
            "expected a date",
        ),
        ("start = 07:30:00", "start = 730", "policy[0].hours.start", "expected a time of day"),
        (
            "hours_per_week = 37.5",
            "hours_per_week = 37.4",
            "policy[0].hours.hours_per_week",
            "whole number of minutes",
        ),
        (
            "fri = 90",
            "friday = 90",
            "policy[0].hours.break_minutes_by_day.friday",
            "expected a day name",
        ),
        ('"thu", "fri"]', '"thu", "thu"]', "policy[0].working_days[4]", "listed twice"),
        (
            'retention_days = "none"',
            'retention_days = "never"',
            "policy[0].location.retention_days",
            '"none"',
        ),
        (
            "max_days_per_week = 2",
            "max_days_per_week = 8",
            "policy[0].remote_work.max_days_per_week",
            "0 to 7",
        ),
        (
            "tolerance_minutes = 0",
            "tolerance_minutes = true",
            "policy[0].lateness.tolerance_minutes",
            "got bool",
        ),
        (
            "min_days = 4,",
            "min_days = 3,",
            "policy[0].absence.bands[1].min_days",
            "without overlapping",
        ),
        (
            "geofence_radius_m = 100,",
            "geofence_radius_m = 100, radius = 5,",
            "policy[0].location.radius",
            "unknown key",
        ),
        ('version = "v1"\n', "", "policy[0].version", "missing"),
        ("hours_per_week = 37.5", "hours_per_week = 150", "policy[0].hours.start", "pass midnight"),
    ],
)
def test_errors_name_the_key(old: str, new: str, key: str, detail: str) -> None:
    assert old in MINIMAL
    error = error_of(MINIMAL.replace(old, new, 1))
    assert error.key == key
    assert detail in error.detail
    assert str(error).startswith(f"test.toml: {key}: ")


def test_file_level_errors() -> None:
    assert "not valid TOML" in error_of("policy = [").detail
    assert error_of("").key == "policy"
    assert error_of("policy = []").key == "policy"
    assert error_of("extra = 1\n" + MINIMAL).key == "extra"
    assert error_of(MINIMAL + "extra = 1\n").key == "policy[0].absence.extra"
    twice = error_of(MINIMAL + MINIMAL.replace("2026-01-01", "2026-06-01"))
    assert (twice.key, twice.detail) == ("policy[1].version", "'v1' used twice")
    same_day = error_of(MINIMAL + MINIMAL.replace('"v1"', '"v2"'))
    assert same_day.key == "policy[1].effective_from"
    earlier = error_of(
        MINIMAL + MINIMAL.replace('"v1"', '"v0"').replace("2026-01-01", "2025-01-01")
    )
    assert (earlier.key, "list versions in order" in earlier.detail) == (
        "policy[1].effective_from",
        True,
    )
    holiday = '{ date = 2026-08-17, name = "Proklamasi" }'
    dup = error_of(MINIMAL.replace(f"[ {holiday} ]", f"[ {holiday}, {holiday} ]"))
    assert dup.key == "policy[0].days_off.public_holidays[1].date"


def test_an_unreadable_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        Policies.load(tmp_path / "absent.toml")
    assert caught.value.source.endswith("absent.toml")


def test_every_key_of_the_national_policy_is_documented() -> None:
    doc = (ROOT / "docs" / "attendance.md").read_text(encoding="utf-8")
    national = tomllib.loads(NATIONAL.read_text(encoding="utf-8"))["policy"][0]
    keys = {
        f"{name}.{sub}"
        for name, value in national.items()
        if isinstance(value, dict)
        for sub in value
    }
    keys |= {name for name, value in national.items() if not isinstance(value, dict)}
    assert keys, "nothing to check"
    missing = sorted(k for k in keys if f"`{k}`" not in doc and f"`{k.split('.')[-1]}`" not in doc)
    assert missing == []
