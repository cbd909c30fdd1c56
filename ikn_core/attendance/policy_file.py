"""Parse and validate a TOML policy file into ``Policy`` versions.

Every problem raises ``PolicyError`` naming the key by its path in the file
(``policy[1].ramadan.periods[0].start: expected a date``). A later version inherits
every key it does not set from the version before it (tables merge key by key,
arrays are replaced whole). The format is documented in ``docs/attendance.md``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from ikn_core.attendance.errors import PolicyError
from ikn_core.attendance.policy import (
    LATE_SIGNAL_AFTER,
    READER_MAX_TOKENS_PER_MINUTE,
    READER_OPENING_MARGIN,
    WEEKDAY_NAMES,
    AbsenceBand,
    DayOff,
    DayOffKind,
    DeductionBand,
    Period,
    Policy,
    TppRules,
    WorkingHours,
    weekday_breaks,
)

_T = TypeVar("_T")


@dataclass
class _Table:
    """A TOML table being read: typed getters that name the key on error, and a
    check that no unknown key is left over."""

    data: Mapping[str, Any]
    path: str
    source: str
    used: set[str] = field(default_factory=set)

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, detail: str) -> PolicyError:
        return PolicyError(self.key(name), detail, self.source)

    def get(self, name: str, check: Callable[[Any], _T | None], expected: str) -> _T:
        self.used.add(name)
        if name not in self.data:
            raise self.fail(name, f"missing (expected {expected})")
        value = check(self.data[name])
        if value is None:
            raise self.fail(name, f"expected {expected}, got {_show(self.data[name])}")
        return value

    def optional(
        self, name: str, check: Callable[[Any], _T | None], expected: str, default: _T
    ) -> _T:
        return self.get(name, check, expected) if name in self.data else default

    def table(self, name: str) -> _Table:
        data = self.get(name, _as_table, "a table")
        return _Table(data, self.key(name), self.source)

    def tables(self, name: str) -> list[_Table]:
        items = self.get(name, _as_list, "an array of tables")
        out = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                key = f"{self.key(name)}[{index}]"
                raise PolicyError(key, f"expected a table, got {_show(item)}", self.source)
            out.append(_Table(item, f"{self.key(name)}[{index}]", self.source))
        return out

    def done(self) -> None:
        for name in self.data:
            if name not in self.used:
                raise self.fail(name, "unknown key")


def parse_policies(text: str, source: str = "") -> list[Policy]:
    """All versions of the file, in file order (``Policies.of`` sorts them)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError("", f"not valid TOML: {exc}", source) from exc
    root = _Table(data, "", source)
    raw = root.get("policy", _as_list, "an array of tables [[policy]]")
    root.done()
    if not raw:
        raise root.fail("policy", "needs at least one [[policy]] version")
    versions: list[Policy] = []
    merged: dict[str, Any] = {}
    for index, item in enumerate(raw):
        key = f"policy[{index}]"
        if not isinstance(item, dict):
            raise PolicyError(key, f"expected a table, got {_show(item)}", source)
        merged = _merge(merged, item)
        versions.append(_policy(_Table(merged, key, source)))
    _check_distinct(versions, source)
    return versions


def _check_distinct(versions: list[Policy], source: str) -> None:
    names: set[str] = set()
    days: set[date] = set()
    for index, version in enumerate(versions):
        if version.version in names:
            raise PolicyError(f"policy[{index}].version", f"{version.version!r} used twice", source)
        if days and version.effective_from <= max(days):
            detail = f"must come after the previous version's ({max(days)}): list versions in order"
            raise PolicyError(f"policy[{index}].effective_from", detail, source)
        names.add(version.version)
        days.add(version.effective_from)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(name), dict):
            out[name] = _merge(out[name], value)
        else:
            out[name] = value
    return out


def _policy(t: _Table) -> Policy:
    version = t.get("version", _as_text, "a non-empty string")
    effective_from = t.get("effective_from", _as_date, "a date")
    working_days = _working_days(t)
    regular = _hours(t.table("hours"), len(working_days), with_periods=False)[0]
    ramadan, periods = _hours(t.table("ramadan"), len(working_days), with_periods=True)
    days_off = _days_off(t.table("days_off"))
    location = t.table("location")
    radius = location.get("geofence_radius_m", _positive_number, "a number > 0 (metres)")
    retention = location.get("retention_days", _retention, 'a whole number of days >= 1 or "none"')
    location.done()
    remote = t.table("remote_work")
    cap = remote.get("max_days_per_week", _int_range(0, 7), "a whole number from 0 to 7")
    remote.done()
    late = _lateness(t.table("lateness"))
    bands, run_days, run_level = _absence(t.table("absence"))
    late_after = _late_signal_after(t)
    max_tokens, margin = _badge_readers(t)
    tpp = _tpp(t)
    t.done()
    return Policy(
        version=version,
        effective_from=effective_from,
        working_days=working_days,
        regular=regular,
        ramadan=ramadan,
        ramadan_periods=periods,
        days_off=days_off,
        geofence_radius_m=float(radius),
        remote_days_per_week=cap,
        location_retention_days=retention or None,
        late_tolerance_minutes=late[0],
        missing_clock_in_minutes=late[1],
        missing_clock_out_minutes=late[2],
        absence_bands=bands,
        consecutive_absence_days=run_days,
        consecutive_absence_level=run_level,
        late_signal_after=late_after,
        reader_max_tokens_per_minute=max_tokens,
        reader_opening_margin=margin,
        tpp=tpp,
    )


def _tpp(t: _Table) -> TppRules | None:
    """``tpp.*`` (optional table): the TPP deductions per band, per absent day, the cap."""
    if "tpp" not in t.data:
        t.used.add("tpp")
        return None
    tpp = t.table("tpp")
    expected = "a percent from 0 to 100 with at most 2 decimals"
    absence = tpp.get("absence_day_percent", _hundredths, expected)
    cap = tpp.get("monthly_cap_percent", _hundredths, expected)
    late = _deduction_bands(tpp, "late_bands")
    early = _deduction_bands(tpp, "early_departure_bands")
    tpp.done()
    return TppRules(late, early, absence, cap)


def _deduction_bands(t: _Table, name: str) -> tuple[DeductionBand, ...]:
    bands: list[DeductionBand] = []
    minutes, expected = _int_range(1, 24 * 60), "a whole number of minutes from 1 to 1440"
    for item in t.tables(name):
        code = item.get("code", _as_text, "a non-empty string")
        low = item.get("min_minutes", minutes, expected)
        high = item.optional("max_minutes", minutes, expected, None)
        percent = item.get("percent", _hundredths, "a percent from 0 to 100, 2 decimals at most")
        item.done()
        if high is not None and high < low:
            raise item.fail("max_minutes", f"{high} is below min_minutes {low}")
        if bands and (bands[-1].max_minutes is None or low <= bands[-1].max_minutes):
            raise item.fail("min_minutes", "bands must ascend without overlapping")
        if any(b.code == code for b in bands):
            raise item.fail("code", f"{code!r} used twice")
        bands.append(DeductionBand(code, low, high, percent))
    return tuple(bands)


def _late_signal_after(t: _Table) -> timedelta:
    """``corrections.late_signal_hours`` (optional table and key; 24 h when left out)."""
    if "corrections" not in t.data:
        t.used.add("corrections")
        return LATE_SIGNAL_AFTER
    corrections = t.table("corrections")
    hours = corrections.optional(
        "late_signal_hours",
        _int_range(1, 24 * 366),
        "a whole number of hours from 1 to 8784",
        LATE_SIGNAL_AFTER // timedelta(hours=1),
    )
    corrections.done()
    return timedelta(hours=hours)


def _badge_readers(t: _Table) -> tuple[int, timedelta]:
    """``badge_readers.max_tokens_per_minute`` and ``opening_margin_minutes`` (optional
    table and keys): when a reader's taps look implausible."""
    default_margin = READER_OPENING_MARGIN // timedelta(minutes=1)
    if "badge_readers" not in t.data:
        t.used.add("badge_readers")
        return READER_MAX_TOKENS_PER_MINUTE, READER_OPENING_MARGIN
    readers = t.table("badge_readers")
    tokens = readers.optional(
        "max_tokens_per_minute",
        _int_range(1, 100_000),
        "a whole number from 1 to 100000",
        READER_MAX_TOKENS_PER_MINUTE,
    )
    margin = readers.optional(
        "opening_margin_minutes",
        _int_range(0, 12 * 60),
        "a whole number of minutes from 0 to 720",
        default_margin,
    )
    readers.done()
    return tokens, timedelta(minutes=margin)


def _working_days(t: _Table) -> frozenset[int]:
    names = t.get("working_days", _as_list, 'an array of day names ("mon".."sun")')
    days: set[int] = set()
    for index, name in enumerate(names):
        key = f"{t.key('working_days')}[{index}]"
        if name not in WEEKDAY_NAMES:
            raise PolicyError(
                key, f"expected one of {', '.join(WEEKDAY_NAMES)}, got {_show(name)}", t.source
            )
        if WEEKDAY_NAMES.index(name) + 1 in days:
            raise PolicyError(key, f"{name!r} listed twice", t.source)
        days.add(WEEKDAY_NAMES.index(name) + 1)
    if not days:
        raise t.fail("working_days", "needs at least one day")
    return frozenset(days)


def _hours(
    t: _Table, day_count: int, *, with_periods: bool
) -> tuple[WorkingHours, tuple[Period, ...]]:
    start = t.get("start", _as_time, "a time of day (07:30:00)")
    hours = t.get("hours_per_week", _positive_number, "a number of hours > 0")
    minutes = round(hours * 60)
    if not math.isclose(minutes, hours * 60) or minutes % day_count:
        detail = f"{hours} h over {day_count} working days is not a whole number of minutes a day"
        raise t.fail("hours_per_week", detail)
    default = t.get("break_minutes", _int_range(0, 600), "a whole number of minutes from 0 to 600")
    empty: dict[str, Any] = {}
    by_day = t.optional("break_minutes_by_day", _as_table, "a table such as { fri = 90 }", empty)
    overrides = _breaks_by_day(_Table(by_day, t.key("break_minutes_by_day"), t.source))
    periods = _periods(t) if with_periods else ()
    t.done()
    breaks = weekday_breaks(default, overrides)
    longest = minutes // day_count + max(breaks)
    if start.hour * 60 + start.minute + longest >= 24 * 60:
        raise t.fail("start", "the working day (start + hours + break) would pass midnight")
    return WorkingHours(start, minutes, breaks), periods


def _breaks_by_day(t: _Table) -> list[tuple[int, int]]:
    out = []
    for name in t.data:
        if name not in WEEKDAY_NAMES:
            raise t.fail(name, f"expected a day name ({', '.join(WEEKDAY_NAMES)})")
        minutes = t.get(name, _int_range(0, 600), "a whole number of minutes from 0 to 600")
        out.append((WEEKDAY_NAMES.index(name) + 1, minutes))
    return out


def _periods(t: _Table) -> tuple[Period, ...]:
    periods = []
    for item in t.tables("periods"):
        start = item.get("start", _as_date, "a date")
        end = item.get("end", _as_date, "a date")
        name = item.optional("name", _as_str, "a string", "")
        item.done()
        if end < start:
            raise item.fail("end", f"{end} is before the start {start}")
        periods.append(Period(start, end, name))
    return tuple(periods)


def _days_off(t: _Table) -> tuple[DayOff, ...]:
    seen: set[date] = set()
    out: list[DayOff] = []
    for name, kind in (
        ("public_holidays", DayOffKind.PUBLIC_HOLIDAY),
        ("collective_leave", DayOffKind.COLLECTIVE_LEAVE),
    ):
        for item in t.tables(name):
            day = item.get("date", _as_date, "a date")
            label = item.get("name", _as_text, "a non-empty string")
            item.done()
            if day in seen:
                raise item.fail("date", f"{day} is listed twice")
            seen.add(day)
            out.append(DayOff(day, label, kind))
    t.done()
    return tuple(sorted(out, key=lambda d: d.day))


def _lateness(t: _Table) -> tuple[int, int, int]:
    minutes = _int_range(0, 24 * 60)
    expected = "a whole number of minutes from 0 to 1440"
    out = (
        t.get("tolerance_minutes", minutes, expected),
        t.get("missing_clock_in_minutes", minutes, expected),
        t.get("missing_clock_out_minutes", minutes, expected),
    )
    t.done()
    return out


def _absence(t: _Table) -> tuple[tuple[AbsenceBand, ...], int, str]:
    bands: list[AbsenceBand] = []
    for item in t.tables("bands"):
        low = item.get("min_days", _int_range(1, 366), "a whole number of days from 1 to 366")
        high = item.optional(
            "max_days", _int_range(1, 366), "a whole number of days from 1 to 366", None
        )
        level = item.get("level", _as_text, "a non-empty string")
        sanction = item.optional("sanction", _as_str, "a string", "")
        item.done()
        if high is not None and high < low:
            raise item.fail("max_days", f"{high} is below min_days {low}")
        if bands and (bands[-1].max_days is None or low <= bands[-1].max_days):
            raise item.fail("min_days", "bands must ascend without overlapping")
        bands.append(AbsenceBand(low, high, level, sanction))
    run_days = t.get("consecutive_days", _int_range(1, 366), "a whole number of days from 1 to 366")
    run_level = t.get("consecutive_level", _as_text, "a non-empty string")
    t.done()
    return tuple(bands), run_days, run_level


# Checkers: the value converted, or None when it is of the wrong kind.


def _as_table(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _as_list(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _as_date(value: Any) -> date | None:
    return value if isinstance(value, date) and not isinstance(value, datetime) else None


def _as_time(value: Any) -> time | None:
    if isinstance(value, time) and value.tzinfo is None:
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value) if len(value) in (5, 8) else None
        except ValueError:
            return None
    return None


def _positive_number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) and value > 0 else None


def _int_range(low: int, high: int) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value if ok and low <= value <= high else None

    return check


def _hundredths(value: Any) -> int | None:
    """A percent 0-100 with at most two decimals, as hundredths of a percent (0.5 -> 50)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        return None
    hundredths = round(value * 100)
    return hundredths if math.isclose(hundredths, value * 100, abs_tol=1e-6) else None


def _retention(value: Any) -> int | None:
    """Days to keep coordinates; ``"none"`` (never store them) reads as 0."""
    if value == "none":
        return 0
    return _int_range(1, 100_000)(value)


def _show(value: Any) -> str:
    text = repr(value)
    kind = type(value).__name__
    return f"{kind} {text[:40]}{'...' if len(text) > 40 else ''}"
