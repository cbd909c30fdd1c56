"""Outage grace: a window in which the platform itself was degraded (``Disruption``),
and what it does to a day's lateness and early departure (``mark``).

A lateness is the span from the day's start to the clock-in (a missing clock-in: the
``missing_clock_in_minutes`` it counts as, from the start); an early departure the span
from the clock-out to the day's end (a missing clock-out: the minutes it counts as,
up to the end). Such a span that overlaps a disruption window of the person's
building (or of all buildings) is marked "system disruption" (the record's
``system_disruption`` names the windows, a reason line says so); when the person's
supervisor excused that window for the unit, the span's minutes no longer count
(``disruption_excused_minutes``), so nothing is deducted for them (``tpp.py``).
Docs: docs/attendance.md, "System disruption".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from ikn_core.attendance.errors import AttendanceError, SignalError
from ikn_core.attendance.policy import Policy
from ikn_core.attendance.record import DailyRecord, require_aware


class DisruptionError(AttendanceError):
    """A refused excuse or declaration; ``kind``: a stable code (the problem type)."""

    kind = "disruption-error"

    def __init__(self, detail: str) -> None:
        super().__init__("", detail)


class DisruptionNotFound(DisruptionError):
    """No such window, or none touching the unit (another unit's look absent)."""

    kind = "disruption-not-found"


class NotTheUnitsSupervisor(DisruptionError):
    kind = "not-your-unit"


class Cause(StrEnum):
    DATABASE_UNAVAILABLE = "database_unavailable"
    API_UNAVAILABLE = "api_unavailable"
    INGEST_UNAVAILABLE = "ingest_unavailable"
    API_ERRORS = "api_errors"
    INGEST_LAG = "ingest_lag"
    DECLARED = "declared"  # by an administrator: an outage the platform could not see


@dataclass(frozen=True, slots=True)
class Disruption:
    """The platform degraded from ``start`` to ``end`` in ``building_id`` (None: all);
    ``excused``: the person's supervisor excused it for their unit. ``id`` such as
    ``d12`` names it in the record."""

    id: str
    start: datetime
    end: datetime
    cause: Cause
    building_id: str | None = None
    excused: bool = False

    def __post_init__(self) -> None:
        require_aware(self.start, "start")
        require_aware(self.end, "end")
        if self.end <= self.start:
            raise SignalError("end", "must be after start")
        object.__setattr__(self, "cause", Cause(self.cause))

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


def _hhmm(at: datetime, zone: ZoneInfo) -> str:
    return f"{at.astimezone(zone):%H:%M}"


def _line(d: Disruption, what: str, minutes: int, zone: ZoneInfo) -> str:
    window = f"{_hhmm(d.start, zone)}-{_hhmm(d.end, zone)} {d.end.astimezone(zone):%Z}"
    where = f"building {d.building_id}" if d.building_id else "all buildings"
    head = f"system disruption {d.id} ({d.cause.value}, {window}, {where}) overlaps the {what}"
    if d.excused:
        return f"{head}: excused by the unit's supervisor, {minutes} min not counted"
    return f"{head}: marked system disruption, the supervisor may excuse it"


def mark(
    record: DailyRecord,
    disruptions: Sequence[Disruption],
    policy: Policy,
    zone: ZoneInfo,
) -> DailyRecord:
    """``record`` with its lateness and early departure marked by the ``disruptions``
    they overlap (all of the person's building or of all buildings; any day's)."""
    schedule = policy.schedule(record.day)
    if schedule is None or not disruptions:
        return record
    start, end = schedule.start_at(zone), schedule.end_at(zone)
    spans = []
    if record.late_minutes > 0:
        spans.append(("lateness", start, start + timedelta(minutes=record.late_minutes)))
    if record.early_departure_minutes > 0:
        minutes = record.early_departure_minutes
        spans.append(("early departure", end - timedelta(minutes=minutes), end))
    marked: list[str] = []
    reasons = list(record.reasons)
    late, early, excused = record.late_minutes, record.early_departure_minutes, 0
    for what, first, last in spans:
        touching = sorted(
            (d for d in disruptions if d.overlaps(first, last)), key=lambda d: d.start
        )
        if not touching:
            continue
        minutes = late if what == "lateness" else early
        forgiven = any(d.excused for d in touching)
        for d in touching:
            marked.append(d.id)
            reasons.append(_line(d, what, minutes, zone))
        if forgiven:
            excused += minutes
            late, early = (0, early) if what == "lateness" else (late, 0)
    if not marked:
        return record
    return replace(
        record,
        late_minutes=late,
        early_departure_minutes=early,
        reasons=tuple(reasons),
        system_disruption=tuple(dict.fromkeys(marked)),
        disruption_excused_minutes=excused,
    )
