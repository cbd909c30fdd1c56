"""Attendance reports the JSON API and the pages share: a month's days up to today, the
records of people over days, a month's summary per person, and a year's unexcused
absences (PP 94/2021)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import asyncpg

from ikn_core.attendance import AbsenceSummary, DailyRecord, Policies, WorkMode, yearly_summary
from ikn_core.fields import InvalidField, parse_month
from ikn_store.attendance.days import records


def month_start(text: str) -> date | None:
    """The first day of ``YYYY-MM`` (years 2000-2100), or None when it is not one."""
    try:
        return parse_month("month", text)
    except InvalidField:
        return None


def month_end(first: date) -> date:
    """The first day of the month after ``first``'s."""
    return (first + timedelta(days=32)).replace(day=1)


def until_today(policies: Policies, first: date, end: date, today: date) -> list[date]:
    """The days of [first, end) up to ``today`` that a policy is in force on."""
    return policies.reported_days(first, end, today)


def summary(found: Sequence[DailyRecord]) -> dict[str, int]:
    """Days present, the WFO/WFA split, late minutes and unexcused absences."""
    modes = [r.mode for r in found]
    return {
        "days_present": sum(r.present for r in found),
        "wfo": modes.count(WorkMode.WFO) + modes.count(WorkMode.WFO_OTHER),
        "wfo_other_agency": modes.count(WorkMode.WFO_OTHER),
        "wfa": modes.count(WorkMode.WFA),
        "late_minutes": sum(r.late_minutes for r in found),
        "early_departure_minutes": sum(r.early_departure_minutes for r in found),
        "excused": modes.count(WorkMode.EXCUSED),
        "unexcused_absences": modes.count(WorkMode.ABSENT),
    }


def late_days(found: Sequence[DailyRecord]) -> int:
    """The days with late minutes (a missing clock-in counts as late)."""
    return sum(r.late_minutes > 0 for r in found)


async def by_person(
    conn: asyncpg.Connection,
    policies: Policies,
    people: Sequence[str],
    days: Sequence[date],
    now: datetime,
) -> dict[str, list[DailyRecord]]:
    """Each person's records of ``days`` as they count at ``now``, in ``people``'s order."""
    found = await records(conn, policies, people, days, now)
    return {p: [found[(p, d)] for d in days if (p, d) in found] for p in people}


async def year_absences(
    conn: asyncpg.Connection,
    policies: Policies,
    people: Sequence[str],
    year: int,
    *,
    now: datetime,
    today: date,
) -> dict[str, AbsenceSummary]:
    """Each person's unexcused absences of ``year`` up to ``today`` (PP 94/2021)."""
    days = until_today(policies, date(year, 1, 1), date(year + 1, 1, 1), today)
    found = await by_person(conn, policies, people, days, now)
    return {p: yearly_summary(rs, year, policies) for p, rs in found.items()}
