"""Unexcused absences over a year and the PP 94/2021 warning levels they reach.

All functions take ONE person's daily records (any order; one record per day).
An unexcused absence is a record whose mode is ``absent``. A *run* is a stretch of
absent working days with no working day between them that was not absent (weekends,
holidays and collective leave in between neither break nor lengthen a run).

Which policy's thresholds apply: the one in force on the day a threshold is reached.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from ikn_core.attendance.policy import AbsenceBand, Policy
from ikn_core.attendance.record import DailyRecord, WorkMode
from ikn_core.attendance.versions import Policies


@dataclass(frozen=True, slots=True)
class AbsenceRun:
    """Unexcused absent working days in a row: ``first``..``last``, ``days`` of them."""

    first: date
    last: date
    days: int


@dataclass(frozen=True, slots=True)
class AbsenceWarning:
    """A warning level reached on ``reached_on``; ``rule`` says which threshold
    (``"3 days a year"``, ``"4-6 days a year"``, ``"10 days in a row"``)."""

    level: str
    rule: str
    reached_on: date
    sanction: str = ""


@dataclass(frozen=True, slots=True)
class AbsenceSummary:
    """A person's unexcused absences in ``year`` and the warnings they reached.

    ``level`` is the most severe level reached (the last warning), or None.
    """

    year: int
    days: tuple[date, ...]
    runs: tuple[AbsenceRun, ...]
    warnings: tuple[AbsenceWarning, ...]

    @property
    def total(self) -> int:
        return len(self.days)

    @property
    def longest_run(self) -> int:
        return max((run.days for run in self.runs), default=0)

    @property
    def level(self) -> str | None:
        return self.warnings[-1].level if self.warnings else None


def unexcused_days(records: Iterable[DailyRecord], year: int) -> tuple[date, ...]:
    """The days of ``year`` whose record says ``absent``, ascending."""
    return tuple(sorted(r.day for r in records if r.mode is WorkMode.ABSENT and r.day.year == year))


def absence_runs(days: Iterable[date], policies: Policies) -> tuple[AbsenceRun, ...]:
    """Group absent ``days`` into runs of consecutive working days (see module doc)."""
    runs: list[AbsenceRun] = []
    for day in sorted(set(days)):
        if runs and _only_days_off_between(runs[-1].last, day, policies):
            last = runs[-1]
            runs[-1] = AbsenceRun(last.first, day, last.days + 1)
        else:
            runs.append(AbsenceRun(day, day, 1))
    return tuple(runs)


def yearly_summary(records: Iterable[DailyRecord], year: int, policies: Policies) -> AbsenceSummary:
    """Cumulative unexcused absences of ``year``, their runs, and every PP 94/2021
    warning reached, in the order reached (a yearly band, or the run of N days)."""
    days = unexcused_days(records, year)
    runs = absence_runs(days, policies)
    return AbsenceSummary(year, days, runs, _warnings(days, policies))


def warning_level(days_in_year: int, longest_run: int, policy: Policy) -> str | None:
    """The most severe PP 94/2021 level reached by ``days_in_year`` unexcused days and
    a longest run of ``longest_run`` such days in a row, under ``policy``; None if none.

    A run of the policy's ``consecutive_absence_days`` reaches its level (dismissal in
    PP 94/2021) whatever the yearly count.
    """
    if longest_run >= policy.consecutive_absence_days:
        return policy.consecutive_absence_level
    reached = [band for band in policy.absence_bands if band.min_days <= days_in_year]
    return reached[-1].level if reached else None


def next_band(days_in_year: int, policy: Policy) -> AbsenceBand | None:
    """The first of ``policy``'s yearly bands that ``days_in_year`` has not reached."""
    return next((band for band in policy.absence_bands if band.min_days > days_in_year), None)


def near_threshold(summary: AbsenceSummary, policy: Policy, margin: int) -> bool:
    """A level reached, or ``margin`` unexcused days or fewer from the next yearly band
    (or from the run of ``consecutive_absence_days``): someone a supervisor watches."""
    band = next_band(summary.total, policy)
    return (
        summary.level is not None
        or (band is not None and band.min_days - summary.total <= margin)
        or policy.consecutive_absence_days - summary.longest_run <= margin
    )


def _only_days_off_between(before: date, after: date, policies: Policies) -> bool:
    day = before + timedelta(days=1)
    while day < after:
        if policies.in_force(day).is_working_day(day):
            return False
        day += timedelta(days=1)
    return True


def _warnings(days: tuple[date, ...], policies: Policies) -> tuple[AbsenceWarning, ...]:
    warnings: list[AbsenceWarning] = []
    reached: set[tuple[int, str]] = set()
    run, run_warned = 0, False
    for count, day in enumerate(days, start=1):
        policy = policies.in_force(day)
        band = policy.absence_band(count)
        if band is not None and (band.min_days, band.level) not in reached:
            reached.add((band.min_days, band.level))
            rule = _band_rule(band.min_days, band.max_days)
            warnings.append(AbsenceWarning(band.level, rule, day, band.sanction))
        joined = count > 1 and _only_days_off_between(days[count - 2], day, policies)
        run = run + 1 if joined else 1
        if not run_warned and run >= policy.consecutive_absence_days:
            run_warned = True
            rule = f"{policy.consecutive_absence_days} days in a row"
            warnings.append(AbsenceWarning(policy.consecutive_absence_level, rule, day))
    return tuple(warnings)


def _band_rule(low: int, high: int | None) -> str:
    if high is None:
        return f"{low}+ days a year"
    return f"{low} days a year" if low == high else f"{low}-{high} days a year"
