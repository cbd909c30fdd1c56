"""The e-Kinerja / TPP month of one person: what their attendance counts for the
performance allowance (tunjangan kinerja, TPP), and the deduction it costs under the
policy's ``tpp`` rules (``TppRules``; docs/attendance.md, "The TPP month").

- Only the days of the month count, and of those only the counted ones: ``not_yet`` and
  ``not_counted`` days (``counting.py``) and non-working days count nothing.
- A late day costs the percent of its lateness band (a missing clock-in counts its 91
  minutes, so it falls in the last band); an early departure the percent of its band;
  an unexcused absent day ``absence_day_percent``. Each day under the policy in force
  on it (a day whose policy has no ``tpp`` table costs nothing).
- The month's total is capped at the ``monthly_cap_percent`` of the policy in force on
  the month's last counted day.
- WFA days beyond the week's remote-work cap (``week.remote_days_over_cap``) are listed:
  pass the records from the Monday of the month's first week so a week cut by the 1st
  counts its earlier WFA days.

Percentages are kept in hundredths of a percent (0.5 % is 50): sums are exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from ikn_core.attendance.policy import DeductionBand, Policy
from ikn_core.attendance.record import DailyRecord, ExcuseKind, WorkMode
from ikn_core.attendance.versions import Policies
from ikn_core.attendance.week import remote_days_over_cap

COUNTED_MODES = frozenset(
    {WorkMode.WFO, WorkMode.WFO_OTHER, WorkMode.WFA, WorkMode.ABSENT, WorkMode.EXCUSED}
)


@dataclass(frozen=True, slots=True)
class BandTally:
    """The days of a month in one deduction band, their minutes and what they cost."""

    code: str
    min_minutes: int
    max_minutes: int | None
    percent_hundredths: int
    days: int
    minutes: int
    deduction_hundredths: int

    def as_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "min_minutes": self.min_minutes,
            "max_minutes": self.max_minutes,
            "percent_per_day": percent(self.percent_hundredths),
            "days": self.days,
            "minutes": self.minutes,
            "deduction_percent": percent(self.deduction_hundredths),
        }


@dataclass(frozen=True, slots=True)
class Deduction:
    """The month's deduction, in hundredths of a percent of the allowance."""

    late: int
    early_departure: int
    absence: int
    uncapped: int  # the sum of the three
    cap: int
    total: int  # min(uncapped, cap)

    @property
    def capped(self) -> bool:
        return self.uncapped > self.cap

    def as_json(self) -> dict[str, object]:
        return {
            "late_percent": percent(self.late),
            "early_departure_percent": percent(self.early_departure),
            "absence_percent": percent(self.absence),
            "uncapped_percent": percent(self.uncapped),
            "cap_percent": percent(self.cap),
            "percent": percent(self.total),
            "capped": self.capped,
        }


@dataclass(frozen=True, slots=True)
class TppMonth:
    """One person's month for e-Kinerja / TPP (``tpp_month``)."""

    month: date  # its first day
    working_days: int  # counted working days: present, absent or excused
    days_present: int
    wfo_days: int  # in an office, own agency's or another's
    wfo_other_agency_days: int
    wfa_days: int
    wfa_over_cap: tuple[date, ...]  # WFA days beyond their week's remote-work cap
    late_days: int
    late_minutes: int
    late_bands: tuple[BandTally, ...]
    early_departure_days: int
    early_departure_minutes: int
    early_departure_bands: tuple[BandTally, ...]
    missing_clock_in: int
    missing_clock_out: int
    unexcused_absences: int
    excused_days: int
    leave_days: int  # cuti
    official_travel_days: int  # dinas luar
    policy_versions: tuple[str, ...]
    deduction: Deduction | None  # None: the policy sets no TPP rules

    def as_json(self) -> dict[str, object]:
        return {
            "month": self.month.strftime("%Y-%m"),
            "working_days": self.working_days,
            "days_present": self.days_present,
            "wfo_days": self.wfo_days,
            "wfo_other_agency_days": self.wfo_other_agency_days,
            "wfa_days": self.wfa_days,
            "wfa_over_weekly_cap": [d.isoformat() for d in self.wfa_over_cap],
            "late": {
                "days": self.late_days,
                "minutes": self.late_minutes,
                "bands": [b.as_json() for b in self.late_bands],
            },
            "early_departure": {
                "days": self.early_departure_days,
                "minutes": self.early_departure_minutes,
                "bands": [b.as_json() for b in self.early_departure_bands],
            },
            "missing_clock_in": self.missing_clock_in,
            "missing_clock_out": self.missing_clock_out,
            "unexcused_absences": self.unexcused_absences,
            "excused": {
                "days": self.excused_days,
                "leave": self.leave_days,
                "official_travel": self.official_travel_days,
            },
            "policy_versions": list(self.policy_versions),
            "deduction": None if self.deduction is None else self.deduction.as_json(),
        }


def percent(hundredths: int) -> float:
    """Hundredths of a percent as a percent (50 -> 0.5)."""
    return hundredths / 100


def _in_month(day: date, first: date) -> bool:
    return (day.year, day.month) == (first.year, first.month)


def _tally(
    found: list[tuple[DeductionBand, int]], order: Iterable[DeductionBand]
) -> tuple[BandTally, ...]:
    """One tally per band code: the bands of ``order`` first (even empty), then others met."""
    bands: dict[str, DeductionBand] = {}
    for band in [*order, *(b for b, _ in found)]:
        bands.setdefault(band.code, band)
    out = []
    for code, band in bands.items():
        mine = [(b, m) for b, m in found if b.code == code]
        out.append(
            BandTally(
                code,
                band.min_minutes,
                band.max_minutes,
                band.hundredths,
                len(mine),
                sum(m for _, m in mine),
                sum(b.hundredths for b, _ in mine),
            )
        )
    return tuple(out)


def tpp_month(
    first: date,
    records: Iterable[DailyRecord],
    excuse_kinds: Mapping[str, str],
    policies: Policies,
) -> TppMonth:
    """ONE person's month of ``first`` from their ``records`` (as they count now, see
    ``as_of``); ``excuse_kinds`` gives the kind (``cuti``, ``dinas_luar``) of each
    excuse id. Records of other months only feed the weekly remote-work cap."""
    given = sorted(records, key=lambda r: r.day)
    over = tuple(r.day for r in remote_days_over_cap(given, policies) if _in_month(r.day, first))
    counted = [r for r in given if _in_month(r.day, first) and r.mode in COUNTED_MODES]
    late: list[tuple[DeductionBand, int]] = []
    early: list[tuple[DeductionBand, int]] = []
    absence = 0
    for r in counted:
        rules = policies.in_force(r.day).tpp
        if rules is None:
            continue
        if r.late_minutes > 0 and (band := rules.late_band(r.late_minutes)):
            late.append((band, r.late_minutes))
        if r.early_departure_minutes > 0 and (
            band := rules.early_departure_band(r.early_departure_minutes)
        ):
            early.append((band, r.early_departure_minutes))
        if r.mode is WorkMode.ABSENT:
            absence += rules.absence_day_hundredths
    start = max(first, policies.versions[0].effective_from)  # a month before any: the first
    last: Policy = policies.in_force(counted[-1].day if counted else start)
    modes = [r.mode for r in counted]
    excused = [excuse_kinds.get(r.excuse_id or "") for r in counted if r.mode is WorkMode.EXCUSED]
    late_tally = _tally(late, last.tpp.late_bands if last.tpp else ())
    early_tally = _tally(early, last.tpp.early_departure_bands if last.tpp else ())
    return TppMonth(
        month=first.replace(day=1),
        working_days=len(counted),
        days_present=sum(r.present for r in counted),
        wfo_days=modes.count(WorkMode.WFO) + modes.count(WorkMode.WFO_OTHER),
        wfo_other_agency_days=modes.count(WorkMode.WFO_OTHER),
        wfa_days=modes.count(WorkMode.WFA),
        wfa_over_cap=over,
        late_days=sum(r.late_minutes > 0 for r in counted),
        late_minutes=sum(r.late_minutes for r in counted),
        late_bands=late_tally,
        early_departure_days=sum(r.early_departure_minutes > 0 for r in counted),
        early_departure_minutes=sum(r.early_departure_minutes for r in counted),
        early_departure_bands=early_tally,
        missing_clock_in=sum(r.missing_clock_in for r in counted),
        missing_clock_out=sum(r.missing_clock_out for r in counted),
        unexcused_absences=modes.count(WorkMode.ABSENT),
        excused_days=len(excused),
        leave_days=excused.count(ExcuseKind.CUTI.value),
        official_travel_days=excused.count(ExcuseKind.DINAS_LUAR.value),
        policy_versions=tuple(dict.fromkeys(r.policy_version for r in counted)),
        deduction=_deduction(late_tally, early_tally, absence, last),
    )


def _deduction(
    late: tuple[BandTally, ...], early: tuple[BandTally, ...], absence: int, last: Policy
) -> Deduction | None:
    if last.tpp is None:
        return None
    late_sum = sum(b.deduction_hundredths for b in late)
    early_sum = sum(b.deduction_hundredths for b in early)
    uncapped = late_sum + early_sum + absence
    cap = last.tpp.monthly_cap_hundredths
    return Deduction(late_sum, early_sum, absence, uncapped, cap, min(uncapped, cap))
