"""Attendance reports the JSON API and the pages share: a month's days up to today, the
records of people over days, a month's summary per person, a year's unexcused
absences (PP 94/2021), and a unit's e-Kinerja / TPP month (JSON and CSV)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import asyncpg

from ikn_core.attendance import (
    AbsenceSummary,
    BandTally,
    DailyRecord,
    Policies,
    TppMonth,
    WorkMode,
    tpp_month,
    yearly_summary,
)
from ikn_core.fields import InvalidField, parse_month
from ikn_core.spreadsheet import csv_text
from ikn_store.attendance.days import records
from ikn_store.attendance.requests import excuse_kinds
from ikn_store.people import Person


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


def wfa_over_cap(found: Sequence[DailyRecord]) -> int:
    """The WFA days beyond their week's remote-work cap (marked when read)."""
    return sum(r.over_remote_cap for r in found)


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


def tpp_month_covered(policies: Policies, first: date) -> bool:
    """Whether a policy is in force on some day of the month of ``first``."""
    return month_end(first) > policies.versions[0].effective_from


async def unit_tpp(
    conn: asyncpg.Connection,
    policies: Policies,
    people: Sequence[Person],
    first: date,
    *,
    now: datetime,
    today: date,
) -> list[tuple[Person, TppMonth]]:
    """Each person's e-Kinerja / TPP month of ``first`` up to ``today``
    (``ikn_core.attendance.tpp_month``): their records from the Monday of the month's
    first week, so a week cut by the 1st counts its WFA days towards the weekly cap."""
    monday = first - timedelta(days=first.weekday())
    days = until_today(policies, monday, month_end(first), today)
    found = await by_person(conn, policies, [p.id for p in people], days, now)
    ids = [r.excuse_id for rs in found.values() for r in rs if r.excuse_id]
    kinds = await excuse_kinds(conn, ids)
    return [(p, tpp_month(first, found[p.id], kinds, policies)) for p in people]


def tpp_json(rows: Sequence[tuple[Person, TppMonth]]) -> list[dict[str, object]]:
    """The people of a TPP export: id (NIP), name, then the month (docs/api.md)."""
    return [{"person": p.id, "name": p.name, **m.as_json()} for p, m in rows]


TPP_CSV_HEAD = (
    "person",
    "name",
    "month",
    "working_days",
    "days_present",
    "wfo_days",
    "wfo_other_agency_days",
    "wfa_days",
    "wfa_over_weekly_cap_days",
    "late_days",
    "late_minutes",
)
TPP_CSV_TAIL = (
    "missing_clock_in",
    "missing_clock_out",
    "unexcused_absences",
    "excused_days",
    "leave_days",
    "official_travel_days",
    "deduction_late_percent",
    "deduction_early_departure_percent",
    "deduction_absence_percent",
    "deduction_uncapped_percent",
    "deduction_cap_percent",
    "deduction_percent",
    "deduction_capped",
    "policy_versions",
)


def _band_codes(rows: Sequence[tuple[Person, TppMonth]], early: bool) -> list[str]:
    codes: dict[str, None] = {}
    for _, m in rows:
        for b in m.early_departure_bands if early else m.late_bands:
            codes.setdefault(b.code, None)
    return list(codes)


def _percent(hundredths: int | None) -> str:
    return "" if hundredths is None else f"{hundredths / 100:.2f}"


def tpp_csv(rows: Sequence[tuple[Person, TppMonth]]) -> str:
    """One row per person; per band (by the policy's codes) ``late_<code>_days`` and
    ``_minutes``, then ``early_departure_<code>_days`` and ``_minutes`` (docs/api.md)."""
    late_codes, early_codes = _band_codes(rows, False), _band_codes(rows, True)
    columns = [
        *TPP_CSV_HEAD,
        *(f"late_{c}_{x}" for c in late_codes for x in ("days", "minutes")),
        "early_departure_days",
        "early_departure_minutes",
        *(f"early_departure_{c}_{x}" for c in early_codes for x in ("days", "minutes")),
        *TPP_CSV_TAIL,
    ]
    body = []
    for p, m in rows:
        late = {b.code: b for b in m.late_bands}
        early = {b.code: b for b in m.early_departure_bands}
        d = m.deduction
        body.append(
            [
                p.id,
                p.name,
                m.month.strftime("%Y-%m"),
                m.working_days,
                m.days_present,
                m.wfo_days,
                m.wfo_other_agency_days,
                m.wfa_days,
                len(m.wfa_over_cap),
                m.late_days,
                m.late_minutes,
                *_band_cells(late, late_codes),
                m.early_departure_days,
                m.early_departure_minutes,
                *_band_cells(early, early_codes),
                m.missing_clock_in,
                m.missing_clock_out,
                m.unexcused_absences,
                m.excused_days,
                m.leave_days,
                m.official_travel_days,
                _percent(d.late if d else None),
                _percent(d.early_departure if d else None),
                _percent(d.absence if d else None),
                _percent(d.uncapped if d else None),
                _percent(d.cap if d else None),
                _percent(d.total if d else None),
                "" if d is None else str(d.capped).lower(),
                " ".join(m.policy_versions),
            ]
        )
    return csv_text(columns, body)


def _band_cells(found: dict[str, BandTally], codes: Sequence[str]) -> list[int]:
    return [n for c in codes for n in ((found[c].days, found[c].minutes) if c in found else (0, 0))]
