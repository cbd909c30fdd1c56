"""Signals, excuses and the daily attendance record of one person.

``compute_day`` turns the signals of one local day into a ``DailyRecord``. The rules
(documented in ``docs/attendance.md``):

- The day of a signal is its local date in the person's home building zone.
- Clock-in is the earliest *clock-in* signal (``badge_in``, ``app_check_in``); when
  there is none, the earliest *presence* signal (``booking_check_in``,
  ``desk_occupied``, ``door_qr``) stands in for it. Clock-out is the latest *clock-out* signal
  (``badge_out``, ``app_check_out``) after the clock-in; presence signals never stand
  in for a clock-out (they prove someone was there, not when they left).
- Work mode: any signal in a building of the home agency makes it WFO; else any in
  another agency's building (or declared ``other_office``) WFO at another office; else
  home/field signals make it WFA. No signal on a working day: absent. An excuse (cuti,
  dinas luar) makes the day excused; a weekend, holiday or collective leave day is a
  non-working day (its signals are still recorded).
- Lateness counts whole minutes after the day's start (08:00 in Ramadan); lateness
  within the policy's tolerance counts as 0; a missing clock-in counts as the policy's
  ``missing_clock_in_minutes`` (91: "more than 90 minutes late").
- Early departure counts whole minutes before the day's derived end; a missing
  clock-out counts as the policy's ``missing_clock_out_minutes``.
- Minutes worked: clock-out minus clock-in, less the day's break, never below 0.

The record is the same whatever the order of the signals and whatever zone their
datetimes are expressed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from ikn_core.attendance.errors import SignalError

_E = TypeVar("_E", bound=StrEnum)


class SignalKind(StrEnum):
    BADGE_IN = "badge_in"
    BADGE_OUT = "badge_out"
    DESK_OCCUPIED = "desk_occupied"  # the desk sensor during the person's booking
    BOOKING_CHECK_IN = "booking_check_in"
    APP_CHECK_IN = "app_check_in"
    APP_CHECK_OUT = "app_check_out"
    CORRECTION_IN = "correction_in"  # a supervisor-approved correction of the clock-in
    CORRECTION_OUT = "correction_out"  # a supervisor-approved correction of the clock-out
    DOOR_QR = "door_qr"  # the rotating code of a building's door kiosk, scanned


CLOCK_IN_KINDS = frozenset({SignalKind.BADGE_IN, SignalKind.APP_CHECK_IN, SignalKind.CORRECTION_IN})
PRESENCE_KINDS = frozenset(
    {SignalKind.DESK_OCCUPIED, SignalKind.BOOKING_CHECK_IN, SignalKind.DOOR_QR}
)
CLOCK_OUT_KINDS = frozenset(
    {SignalKind.BADGE_OUT, SignalKind.APP_CHECK_OUT, SignalKind.CORRECTION_OUT}
)


class PlaceType(StrEnum):
    OFFICE = "office"  # a building; own agency or not is decided by building_agency
    OTHER_OFFICE = "other_office"  # declared: another agency's office
    HOME = "home"
    FIELD = "field"  # another place the agency needs (PermenPANRB 4/2025)


class WorkMode(StrEnum):
    WFO = "wfo"  # in a building of the person's own agency
    WFO_OTHER = "wfo_other"  # in another agency's building
    WFA = "wfa"  # remote: home or field
    ABSENT = "absent"  # a working day without any signal nor excuse (unexcused)
    EXCUSED = "excused"  # leave (cuti) or official travel (dinas luar)
    NON_WORKING_DAY = "non_working_day"  # weekend, public holiday, collective leave
    NOT_YET = "not_yet"  # a working day not over yet, no presence so far (counts nothing)
    NOT_COUNTED = "not_counted"  # outside the person's counted days (counting.py)


class ExcuseKind(StrEnum):
    CUTI = "cuti"  # leave of any type (annual, sick, ...): see Excuse.detail
    DINAS_LUAR = "dinas_luar"  # official travel


def require_aware(value: datetime, key: str) -> datetime:
    """``value`` unchanged if aware; SignalError naming ``key`` if naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise SignalError(key, "needs an aware datetime (with a UTC offset)")
    return value


@dataclass(frozen=True, slots=True)
class Signal:
    """Evidence that a person worked: a tap, a sensor, a booking or app check-in.

    ``id`` is stable (the audit trail names it); ``at`` must be aware. For an
    ``office`` signal ``building_agency`` is the agency owning the building;
    ``also_within`` the other buildings whose geofence held an app check-in (the
    nearest is ``building_id``).
    """

    id: str
    kind: SignalKind
    at: datetime
    place: PlaceType
    building_id: str | None = None
    building_agency: str | None = None
    also_within: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id:
            raise SignalError("id", "must not be empty")
        object.__setattr__(self, "kind", _enum(SignalKind, self.kind, "kind"))
        object.__setattr__(self, "place", _enum(PlaceType, self.place, "place"))
        require_aware(self.at, "at")


@dataclass(frozen=True, slots=True)
class Excuse:
    """An approved absence covering ``day``: leave (``detail``: annual, sick, ...) or
    official travel. ``id`` names it in the audit trail."""

    day: date
    kind: ExcuseKind
    detail: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _enum(ExcuseKind, self.kind, "kind"))


@dataclass(frozen=True, slots=True)
class DailyRecord:
    """One person's attendance on one local day, with the reasons for every figure.

    ``signals`` are the ids of the day's signals in time order; ``reasons`` are short
    lines such as ``"clock-in 07:42 WITA from badge_in s17: 12 min late against 07:30"``.
    ``clock_in``/``clock_out`` are expressed in the zone the day was computed in.
    """

    day: date
    policy_version: str
    mode: WorkMode
    clock_in: datetime | None
    clock_out: datetime | None
    minutes_worked: int
    late_minutes: int
    early_departure_minutes: int
    missing_clock_in: bool
    missing_clock_out: bool
    signals: tuple[str, ...]
    reasons: tuple[str, ...]
    excuse_id: str | None = None
    # A WFA day beyond its week's remote-work cap (``week.mark_over_cap``, when read):
    # recorded as any day, marked for the supervisor.
    over_remote_cap: bool = False
    # Outage grace (``disruption.mark``): the platform's disruption windows the day's
    # lateness or early departure overlaps ("system disruption"), and the minutes no
    # longer counted because the unit's supervisor excused such a window.
    system_disruption: tuple[str, ...] = ()
    disruption_excused_minutes: int = 0

    @property
    def present(self) -> bool:
        """Worked that day (WFO, WFO at another office, or WFA)."""
        return self.mode in (WorkMode.WFO, WorkMode.WFO_OTHER, WorkMode.WFA)

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict (ISO 8601 dates and datetimes, enum values as strings)."""
        return {
            "day": self.day.isoformat(),
            "policy_version": self.policy_version,
            "mode": self.mode.value,
            "clock_in": self.clock_in.isoformat() if self.clock_in else None,
            "clock_out": self.clock_out.isoformat() if self.clock_out else None,
            "minutes_worked": self.minutes_worked,
            "late_minutes": self.late_minutes,
            "early_departure_minutes": self.early_departure_minutes,
            "missing_clock_in": self.missing_clock_in,
            "missing_clock_out": self.missing_clock_out,
            "signals": list(self.signals),
            "reasons": list(self.reasons),
            "excuse_id": self.excuse_id,
            "over_remote_cap": self.over_remote_cap,
            "system_disruption": list(self.system_disruption),
            "disruption_excused_minutes": self.disruption_excused_minutes,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DailyRecord:
        """The record back from ``as_json()`` (as stored); SignalError names a bad key."""
        try:
            return cls(
                day=date.fromisoformat(doc["day"]),
                policy_version=str(doc["policy_version"]),
                mode=WorkMode(doc["mode"]),
                clock_in=_when(doc["clock_in"]),
                clock_out=_when(doc["clock_out"]),
                minutes_worked=int(doc["minutes_worked"]),
                late_minutes=int(doc["late_minutes"]),
                early_departure_minutes=int(doc["early_departure_minutes"]),
                missing_clock_in=bool(doc["missing_clock_in"]),
                missing_clock_out=bool(doc["missing_clock_out"]),
                signals=tuple(str(s) for s in doc["signals"]),
                reasons=tuple(str(r) for r in doc["reasons"]),
                excuse_id=doc.get("excuse_id"),
                over_remote_cap=bool(doc.get("over_remote_cap", False)),  # stored before: no
                system_disruption=tuple(str(d) for d in doc.get("system_disruption", ())),
                disruption_excused_minutes=int(doc.get("disruption_excused_minutes", 0)),
            )
        except KeyError as exc:
            raise SignalError(str(exc.args[0]), "missing from the stored record") from exc
        except (TypeError, ValueError) as exc:
            raise SignalError("record", f"not a stored daily record: {exc}") from exc


def _when(value: object) -> datetime | None:
    return None if value is None else require_aware(datetime.fromisoformat(str(value)), "at")


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The calendar day of the aware datetime ``at`` in ``zone``."""
    return require_aware(at, "at").astimezone(zone).date()


def _enum(cls: type[_E], value: object, key: str) -> _E:
    try:
        return cls(str(value))
    except ValueError as exc:
        allowed = ", ".join(m.value for m in cls)
        raise SignalError(key, f"unknown value {value!r} (one of {allowed})") from exc
