"""Which days of a person count, and whether a day is over yet (issue 21).

``compute_day`` says what the signals of a day show. Two facts it does not know
decide whether that may count against anyone:

- **The counted span.** A person is counted from the latest of their employment
  start, the first day the platform knew them and the day their home building went
  live, up to their employment end (``CountedSpan.of``). A day outside is
  ``not_counted``: its times are shown, nothing is counted (no absence, lateness,
  early departure or missing clock-in/out).
- **The end of the day.** A day is over at midnight after it, in the person's zone
  (``day_over``): a signal of the day can still come until then. A working day with
  no presence that is not over is ``not_yet``, not ``absent``; a missing clock-out
  of such a day is not counted yet either.

``as_of(record, span, zone, now)`` applies both to a computed or stored record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ikn_core.attendance.record import DailyRecord, WorkMode, require_aware


@dataclass(frozen=True, slots=True)
class CountedSpan:
    """The days ``first``..``last`` (both included; None: unbounded) that count, and
    why each bound is what it is (``since``: ``"employment start"``, ...)."""

    first: date | None = None
    last: date | None = None
    since: str = ""
    until: str = ""

    def __post_init__(self) -> None:
        if self.first is not None and self.last is not None and self.last < self.first:
            # employment ended before the person was counted: no day counts
            object.__setattr__(self, "last", self.first - timedelta(days=1))

    @classmethod
    def of(
        cls,
        *,
        employment_start: date | None = None,
        employment_end: date | None = None,
        known_from: date | None = None,
        building_live_from: date | None = None,
    ) -> CountedSpan:
        """The span from the latest of the three starts, to the employment end."""
        starts = [
            (day, why)
            for day, why in (
                (employment_start, "employment start"),
                (known_from, "first day known to the platform"),
                (building_live_from, "home building live"),
            )
            if day is not None
        ]
        first, since = max(starts, key=lambda s: s[0]) if starts else (None, "")
        return cls(first, employment_end, since, "employment end" if employment_end else "")

    def covers(self, day: date) -> bool:
        return (self.first is None or self.first <= day) and (self.last is None or day <= self.last)

    def reason(self, day: date) -> str:
        """Why ``day`` is outside (the span must not cover it)."""
        if self.first is not None and day < self.first:
            return f"before {self.first} ({self.since}): not counted"
        return f"after {self.last} ({self.until}): not counted"


def day_ends_at(day: date, zone: ZoneInfo) -> datetime:
    """Midnight after ``day`` in ``zone``: from then on the day is over."""
    return datetime.combine(day + timedelta(days=1), time(), zone)


def day_over(day: date, zone: ZoneInfo, now: datetime) -> bool:
    return require_aware(now, "now") >= day_ends_at(day, zone)


def as_of(record: DailyRecord, span: CountedSpan, zone: ZoneInfo, now: datetime) -> DailyRecord:
    """``record`` as it counts at ``now`` (see the module doc); unchanged when its day
    is counted and over."""
    if not span.covers(record.day):
        return _not_counted(record, span.reason(record.day))
    if day_over(record.day, zone, now):
        return record
    ends = day_ends_at(record.day, zone).strftime("%Y-%m-%d %H:%M %Z")
    if record.mode is WorkMode.ABSENT:
        line = f"no signal and no excuse yet; the day is over at {ends}: not yet absent"
        reasons = (*_without(record.reasons, "no signal and no excuse"), line)
        return dataclasses.replace(record, mode=WorkMode.NOT_YET, reasons=reasons)
    if record.missing_clock_out and record.present:
        line = f"no clock-out yet; the day is over at {ends}: not counted yet"
        return dataclasses.replace(
            record,
            missing_clock_out=False,
            early_departure_minutes=0,
            reasons=(*_without(record.reasons, "no clock-out:"), line),
        )
    return record


def _not_counted(record: DailyRecord, why: str) -> DailyRecord:
    if record.mode is WorkMode.NOT_COUNTED:
        return record
    return dataclasses.replace(
        record,
        mode=WorkMode.NOT_COUNTED,
        late_minutes=0,
        early_departure_minutes=0,
        missing_clock_in=False,
        missing_clock_out=False,
        reasons=(*record.reasons, why),
    )


def _without(reasons: tuple[str, ...], prefix: str) -> tuple[str, ...]:
    return tuple(r for r in reasons if not r.startswith(prefix))
