"""Attendance policy: the regulation's figures, kept as configuration.

A policy file (TOML, see ``docs/attendance.md``) holds one or more *versions*, each
with an ``effective_from`` date. ``Policies.in_force(day)`` picks the version in force
on a day (``versions.py``), so re-computing a past day applies the rules of that day.

Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

MON, TUE, WED, THU, FRI, SAT, SUN = range(1, 8)  # ISO weekdays, as date.isoweekday()
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The default of corrections.late_signal_hours: the correction window of a device's signal.
LATE_SIGNAL_AFTER = timedelta(hours=24)
# The defaults of badge_readers.*: a reader's taps look implausible past this many
# distinct tokens in a minute, or outside the working hours widened by the margin.
READER_MAX_TOKENS_PER_MINUTE = 30
READER_OPENING_MARGIN = timedelta(hours=1)


class DayOffKind(StrEnum):
    PUBLIC_HOLIDAY = "public_holiday"
    COLLECTIVE_LEAVE = "collective_leave"  # cuti bersama


@dataclass(frozen=True, slots=True)
class DayOff:
    """A public holiday or a day of collective leave (cuti bersama)."""

    day: date
    name: str
    kind: DayOffKind


@dataclass(frozen=True, slots=True)
class Period:
    """A span of days, both ends included (a Ramadan month)."""

    start: date
    end: date
    name: str = ""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a period must not end before it starts")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """A timetable: start time, hours per week, and the break of each ISO weekday.

    ``breaks[0]`` is Monday's break in minutes, ``breaks[6]`` Sunday's.
    """

    start: time
    minutes_per_week: int
    breaks: tuple[int, int, int, int, int, int, int]

    def break_minutes(self, day: date) -> int:
        return self.breaks[day.isoweekday() - 1]


@dataclass(frozen=True, slots=True)
class DaySchedule:
    """The timetable of one working day (derived, see ``Policy.schedule``).

    ``end`` = ``start`` + ``work_minutes`` + ``break_minutes``; ``work_minutes`` is the
    week's hours spread evenly over the working days (37.5 h / 5 = 450 min).
    """

    day: date
    start: time
    end: time
    work_minutes: int
    break_minutes: int
    ramadan: bool

    def start_at(self, zone: ZoneInfo) -> datetime:
        """The start of this day as an aware datetime in ``zone``."""
        return datetime.combine(self.day, self.start, tzinfo=zone)

    def end_at(self, zone: ZoneInfo) -> datetime:
        """The expected end of this day as an aware datetime in ``zone``."""
        return datetime.combine(self.day, self.end, tzinfo=zone)


@dataclass(frozen=True, slots=True)
class AbsenceBand:
    """PP 94/2021: ``min_days``..``max_days`` (None: no upper bound) unexcused days a
    year reach ``level`` (a stable code such as ``teguran_lisan``); ``sanction`` says it
    in words."""

    min_days: int
    max_days: int | None
    level: str
    sanction: str = ""

    def __contains__(self, days: object) -> bool:
        if not isinstance(days, int):
            return False
        return self.min_days <= days and (self.max_days is None or days <= self.max_days)


@dataclass(frozen=True, slots=True)
class DeductionBand:
    """A TPP deduction band: a day with ``min_minutes``..``max_minutes`` (None: no upper
    bound) late (or of early departure) costs ``hundredths`` hundredths of a percent of
    the month's allowance (``TL1``: 1-30 min, 0.5 % is 50)."""

    code: str
    min_minutes: int
    max_minutes: int | None
    hundredths: int

    def __contains__(self, minutes: object) -> bool:
        if not isinstance(minutes, int):
            return False
        return self.min_minutes <= minutes and (
            self.max_minutes is None or minutes <= self.max_minutes
        )


@dataclass(frozen=True, slots=True)
class TppRules:
    """The deductions from the performance allowance (TPP / tunjangan kinerja) a month's
    attendance costs, in hundredths of a percent: per late day by its band, per early
    departure by its band, per unexcused absent day, capped per month (``tpp.*``)."""

    late_bands: tuple[DeductionBand, ...]  # ascending, not overlapping
    early_departure_bands: tuple[DeductionBand, ...]
    absence_day_hundredths: int
    monthly_cap_hundredths: int

    def late_band(self, minutes: int) -> DeductionBand | None:
        return next((b for b in self.late_bands if minutes in b), None)

    def early_departure_band(self, minutes: int) -> DeductionBand | None:
        return next((b for b in self.early_departure_bands if minutes in b), None)


@dataclass(frozen=True, slots=True)
class Policy:
    """One version of the attendance policy. Build it with ``Policies.parse/load``."""

    version: str
    effective_from: date
    working_days: frozenset[int]  # ISO weekdays
    regular: WorkingHours
    ramadan: WorkingHours
    ramadan_periods: tuple[Period, ...]
    days_off: tuple[DayOff, ...]  # public holidays and collective leave, by day
    geofence_radius_m: float
    remote_days_per_week: int  # cap of WFA days in an ISO week
    location_retention_days: int | None  # None: never store coordinates
    late_tolerance_minutes: int  # lateness up to this is not counted
    missing_clock_in_minutes: int  # a missing clock-in counts as this many minutes late
    missing_clock_out_minutes: int  # a missing clock-out counts as this early departure
    absence_bands: tuple[AbsenceBand, ...]  # ascending, not overlapping
    consecutive_absence_days: int  # this many unexcused working days in a row ...
    consecutive_absence_level: str  # ... reach this level
    # A device's signal received later than this after its time is late evidence: it
    # counts only through an approved correction citing it (corrections.late_signal_hours).
    late_signal_after: timedelta = LATE_SIGNAL_AFTER
    reader_max_tokens_per_minute: int = READER_MAX_TOKENS_PER_MINUTE
    reader_opening_margin: timedelta = READER_OPENING_MARGIN
    tpp: TppRules | None = None  # None: the policy sets no TPP deductions
    _off: dict[date, DayOff] = field(init=False, repr=False, compare=False)
    _schedules: dict[date, DaySchedule | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_off", {d.day: d for d in self.days_off})
        object.__setattr__(self, "_schedules", {})  # a memo: schedule() is pure

    @property
    def stores_coordinates(self) -> bool:
        """False when the policy says coordinates must not be stored at all."""
        return self.location_retention_days is not None

    def day_off(self, day: date) -> DayOff | None:
        """The public holiday or collective-leave day on ``day``, if any."""
        return self._off.get(day)

    def non_working_reason(self, day: date) -> str | None:
        """Why ``day`` is not a working day (``"weekend (sat)"``, ``"public holiday:
        Hari Raya Natal"``, ``"collective leave: ..."``), or None on a working day."""
        off = self.day_off(day)
        if off is not None:
            label = (
                "public holiday" if off.kind is DayOffKind.PUBLIC_HOLIDAY else "collective leave"
            )
            return f"{label}: {off.name}"
        if day.isoweekday() not in self.working_days:
            return f"weekend ({WEEKDAY_NAMES[day.isoweekday() - 1]})"
        return None

    def is_working_day(self, day: date) -> bool:
        return self.non_working_reason(day) is None

    def in_ramadan(self, day: date) -> bool:
        return any(day in period for period in self.ramadan_periods)

    def schedule(self, day: date) -> DaySchedule | None:
        """The timetable of ``day`` (Ramadan hours in Ramadan), None if not a working day."""
        if day not in self._schedules:
            if len(self._schedules) > 4096:
                self._schedules.clear()
            self._schedules[day] = self._derive_schedule(day)
        return self._schedules[day]

    def _derive_schedule(self, day: date) -> DaySchedule | None:
        if not self.is_working_day(day):
            return None
        ramadan = self.in_ramadan(day)
        hours = self.ramadan if ramadan else self.regular
        work = hours.minutes_per_week // len(self.working_days)
        pause = hours.break_minutes(day)
        start = datetime.combine(day, hours.start)
        end = (start + timedelta(minutes=work + pause)).time()
        return DaySchedule(day, hours.start, end, work, pause, ramadan)

    def opening_hours(self, day: date) -> tuple[time, time]:
        """When a building is open in the week from ``day``: the earliest start and the
        latest end of its working days, widened by ``reader_opening_margin`` (within the
        day). Taps outside them look implausible (a fleet alert)."""
        schedules = [s for n in range(7) if (s := self.schedule(day + timedelta(n)))]
        if not schedules:
            return time(0, 0), time(23, 59, 59)
        margin = self.reader_opening_margin
        first = datetime.combine(day, min(s.start for s in schedules))
        last = datetime.combine(day, max(s.end for s in schedules))
        opens = max(first - margin, datetime.combine(day, time(0, 0)))
        closes = min(last + margin, datetime.combine(day, time(23, 59, 59)))
        return opens.time(), closes.time()

    def absence_band(self, days: int) -> AbsenceBand | None:
        """The PP 94/2021 band that ``days`` unexcused days in a year fall in, if any."""
        return next((band for band in self.absence_bands if days in band), None)


def weekday_breaks(
    default: int, overrides: Sequence[tuple[int, int]] = ()
) -> tuple[int, int, int, int, int, int, int]:
    """Seven break lengths: ``default`` everywhere but the (ISO weekday, minutes) given."""
    table = dict(overrides)
    b = [table.get(day, default) for day in range(1, 8)]
    return (b[0], b[1], b[2], b[3], b[4], b[5], b[6])
