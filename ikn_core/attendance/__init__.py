"""Attendance rules (issue 7): pure, typed, no I/O beyond reading a policy file.

Public names (import them from ``ikn_core.attendance``):

- versions: ``Policies`` (``default()``, ``load(path)``, ``parse(text)``, ``in_force(day)``)
- policy:   ``Policy``, ``DaySchedule``, ``WorkingHours``, ``Period``, ``DayOff``,
            ``DayOffKind``, ``AbsenceBand``
- record:   ``Signal``, ``SignalKind``, ``PlaceType``, ``Excuse``, ``ExcuseKind``,
            ``WorkMode``, ``DailyRecord``, ``local_day``
- daily:    ``compute_day``
- disruption: ``Disruption``, ``Cause`` (outage grace: a lateness inside one is marked)
- absences: ``yearly_summary``, ``AbsenceSummary``, ``AbsenceWarning``, ``AbsenceRun``,
            ``unexcused_days``, ``absence_runs``,
            ``warning_level``, ``next_band``, ``near_threshold``
- week:     ``remote_days_over_cap``, ``mark_over_cap``
- tpp:      ``tpp_month``, ``TppMonth``, ``BandTally``, ``Deduction`` (policy: ``TppRules``,
            ``DeductionBand``)
- counting: ``CountedSpan``, ``as_of``, ``day_over``, ``day_ends_at``
- geo:      ``Coordinates``, ``distance_m``, ``within_geofence``, ``within_geofences``
- errors:   ``AttendanceError`` > ``PolicyError``, ``SignalError``

Notes for callers: docs/attendance.md, "The Python interface"; changes: CHANGELOG.md.
"""

from ikn_core.attendance.absences import (
    AbsenceRun,
    AbsenceSummary,
    AbsenceWarning,
    absence_runs,
    near_threshold,
    next_band,
    unexcused_days,
    warning_level,
    yearly_summary,
)
from ikn_core.attendance.counting import CountedSpan, as_of, day_ends_at, day_over
from ikn_core.attendance.daily import compute_day
from ikn_core.attendance.disruption import Cause, Disruption
from ikn_core.attendance.errors import AttendanceError, PolicyError, SignalError
from ikn_core.attendance.geo import Coordinates, distance_m, within_geofence, within_geofences
from ikn_core.attendance.policy import (
    AbsenceBand,
    DayOff,
    DayOffKind,
    DaySchedule,
    DeductionBand,
    Period,
    Policy,
    TppRules,
    WorkingHours,
)
from ikn_core.attendance.record import (
    DailyRecord,
    Excuse,
    ExcuseKind,
    PlaceType,
    Signal,
    SignalKind,
    WorkMode,
    local_day,
)
from ikn_core.attendance.tpp import BandTally, Deduction, TppMonth, tpp_month
from ikn_core.attendance.versions import Policies
from ikn_core.attendance.week import mark_over_cap, remote_days_over_cap

__all__ = [
    "AbsenceBand",
    "AbsenceRun",
    "AbsenceSummary",
    "AbsenceWarning",
    "AttendanceError",
    "BandTally",
    "Cause",
    "Coordinates",
    "CountedSpan",
    "DailyRecord",
    "DayOff",
    "DayOffKind",
    "DaySchedule",
    "Deduction",
    "DeductionBand",
    "Disruption",
    "Excuse",
    "ExcuseKind",
    "Period",
    "PlaceType",
    "Policies",
    "Policy",
    "PolicyError",
    "Signal",
    "SignalError",
    "SignalKind",
    "TppMonth",
    "TppRules",
    "WorkMode",
    "WorkingHours",
    "absence_runs",
    "as_of",
    "compute_day",
    "day_ends_at",
    "day_over",
    "distance_m",
    "local_day",
    "mark_over_cap",
    "near_threshold",
    "next_band",
    "remote_days_over_cap",
    "tpp_month",
    "unexcused_days",
    "warning_level",
    "within_geofence",
    "within_geofences",
    "yearly_summary",
]
