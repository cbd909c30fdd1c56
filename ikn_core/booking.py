"""Booking rules and the domain errors of booking.

Times are always aware: a naive datetime is refused, and every "day" or "hour"
is computed in the building's IANA zone with ``zoneinfo``.

    IknError
    └── BookingError           kind: a stable code, the problem ``type`` of the API
        ├── RuleBroken         the request breaks a booking rule (in-the-past, too-far-ahead, ...)
        ├── DeskAlreadyBooked  another active booking holds the desk for an overlapping time
        ├── PersonAlreadyBooked  the person already holds an overlapping booking
        ├── IdempotencyKeyReused  the key was used before for a different booking
        ├── UnknownDesk        no such desk
        ├── UnknownPerson      no such person
        ├── BookingNotFound    no such booking (or not one the caller may see)
        ├── BookingNotActive   the booking was cancelled or released; it cannot change
        ├── OutsideCheckInWindow  too early or too late to check in
        ├── NotCheckedIn       check-out of a booking that is not checked in
        ├── ZoneRestricted     the desk's zone is only for some agencies or units
        ├── CancelTooLate      past the cancellation cut-off (a facility manager still may)
        ├── NotYourDelegation  a delegate books only for people of their own agency and unit
        ├── UnknownPlace       no such site, building or zone (to set booking rules of)
        └── BookingContended   the database kept refusing under contention; retry
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from ikn_core.errors import IknError

MINUTES_PER_DAY = 1440


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    CANCELLED = "cancelled"
    RELEASED = "released"


ACTIVE = frozenset({BookingStatus.BOOKED, BookingStatus.CHECKED_IN})


class CheckInSignal(StrEnum):
    APP = "app"
    BADGE = "badge"
    SENSOR = "sensor"
    DOOR = "door"  # a scan of the kiosk's door code (issue 19)


class BookingError(IknError):
    kind = "booking-error"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class RuleBroken(BookingError):
    """``kind`` names the rule; ``field`` the request field it concerns."""

    def __init__(self, kind: str, detail: str, field: str = "start") -> None:
        super().__init__(detail)
        self.kind = kind
        self.field = field


class DeskAlreadyBooked(BookingError):
    kind = "desk-taken"


class PersonAlreadyBooked(BookingError):
    kind = "person-already-booked"


class IdempotencyKeyReused(BookingError):
    kind = "idempotency-key-reused"


class UnknownDesk(BookingError):
    kind = "unknown-desk"


class UnknownPerson(BookingError):
    kind = "unknown-person"


class BookingNotFound(BookingError):
    kind = "booking-not-found"


class BookingNotActive(BookingError):
    kind = "booking-not-active"


class OutsideCheckInWindow(BookingError):
    kind = "outside-check-in-window"


class NotCheckedIn(BookingError):
    kind = "not-checked-in"


class ZoneRestricted(BookingError):
    kind = "zone-restricted"


class CancelTooLate(BookingError):
    kind = "cancel-cut-off"


class NotYourDelegation(BookingError):
    kind = "not-your-delegation"


class UnknownPlace(BookingError):
    """No ``level`` (site, building, zone) ``place_id``."""

    kind = "unknown-place"

    def __init__(self, level: str, place_id: str) -> None:
        super().__init__(f"{level} {place_id!r}")
        self.level = level
        self.place_id = place_id


class BookingContended(BookingError):
    kind = "booking-contended"


class DeskDisabled(BookingError):
    kind = "desk-disabled"


class DeskAssigned(BookingError):
    kind = "desk-assigned"


@dataclass(frozen=True, slots=True)
class BookDesk:
    """Book ``desk_id`` for [start, end) for a person of ``agency``/``unit``;
    ``manager``: the booker is a facility manager (may book a desk assigned to another).
    The command of ``ikn_service.booking.book``; the storage adapter's writes take it."""

    desk_id: str
    person_id: str
    agency: str
    unit: str
    start: datetime
    end: datetime
    created_by: str
    idempotency_key: str | None = None
    series_id: UUID | None = None
    manager: bool = False


CHECK_IN_OPENS_BEFORE = timedelta(minutes=15)
# A booking not checked in this long after its start is released (a no-show).
RELEASE_AFTER = timedelta(minutes=15)


def check_in_window(start: datetime, end: datetime, now: datetime) -> None:
    """Check-in is open from 15 minutes before the start until the end."""
    if not check_in_opens(start) <= now < end:
        raise OutsideCheckInWindow(
            "check-in opens 15 minutes before the start and closes at the end of the booking"
        )


def check_in_opens(start: datetime) -> datetime:
    """When check-in to a booking starting at ``start`` opens."""
    return start - CHECK_IN_OPENS_BEFORE


# A walk-up booking (made at the desk, from its QR code) lasts from now until the end of
# the working day in the desk's building's zone, or until the desk's next booking.
WALK_UP_UNTIL = time(17)


def walk_up_end(now: datetime, tz: ZoneInfo, next_start: datetime | None) -> datetime | None:
    """When a walk-up booking made ``now`` ends; None: none can be made (the working
    day is over, or the desk's next booking has begun)."""
    end = datetime.combine(now.astimezone(tz).date(), WALK_UP_UNTIL, tz)
    if next_start is not None:
        end = min(end, next_start)
    return end if end > now else None


def check_access(allowed: tuple[str, ...] | None, agency: str, unit: str) -> None:
    """A restricted zone lists ``agency`` or ``agency/unit`` entries; None: open to all."""
    if allowed is not None and agency not in allowed and f"{agency}/{unit}" not in allowed:
        raise ZoneRestricted(f"this desk's zone is reserved for: {', '.join(allowed)}")


def require_aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field}: needs a UTC offset (Z or +08:00)")
    return value


@dataclass(frozen=True, slots=True)
class BookingRules:
    """The rules of one building; the defaults apply where a building sets none."""

    max_days_ahead: int = 14
    min_minutes: int = 30
    max_minutes: int = 12 * 60
    opens_minute: int = 6 * 60  # 06:00 local
    closes_minute: int = 20 * 60  # 20:00 local
    cancel_cutoff_minutes: int = 0  # 0: cancel any time while active

    def __post_init__(self) -> None:
        if not 0 <= self.opens_minute < self.closes_minute <= MINUTES_PER_DAY:
            raise ValueError("allowed hours: need 0 <= opens < closes <= 1440 minutes")
        if not 0 < self.min_minutes <= self.max_minutes:
            raise ValueError("durations: need 0 < min_minutes <= max_minutes")
        if self.max_days_ahead < 0 or self.cancel_cutoff_minutes < 0:
            raise ValueError("max_days_ahead and cancel_cutoff_minutes must not be negative")

    @property
    def all_day(self) -> bool:
        return self.opens_minute == 0 and self.closes_minute == MINUTES_PER_DAY

    def check(self, start: datetime, end: datetime, now: datetime, tz: ZoneInfo) -> None:
        """Raise ``RuleBroken`` for the first rule the window [start, end) breaks."""
        for value, name in ((start, "start"), (end, "end"), (now, "now")):
            require_aware(value, name)
        if end <= start:
            raise RuleBroken("end-before-start", "end must be after start", "end")
        if start < now:
            raise RuleBroken("in-the-past", "start is in the past", "start")
        local_start = start.astimezone(tz)
        last_day = now.astimezone(tz).date() + timedelta(days=self.max_days_ahead)
        if local_start.date() > last_day:
            raise RuleBroken(
                "too-far-ahead",
                f"bookable at most {self.max_days_ahead} days ahead (until {last_day} included)",
            )
        minutes = (end - start) / timedelta(minutes=1)
        if minutes < self.min_minutes:
            raise RuleBroken("too-short", f"a booking lasts at least {self.min_minutes} min", "end")
        if minutes > self.max_minutes:
            raise RuleBroken("too-long", f"a booking lasts at most {self.max_minutes} min", "end")
        self._check_hours(local_start, end.astimezone(tz))

    def check_cancel(self, start: datetime, now: datetime) -> None:
        """With a cut-off of N minutes, cancelling closes N minutes before the start."""
        cutoff = timedelta(minutes=self.cancel_cutoff_minutes)
        if cutoff and now > start - cutoff:
            raise CancelTooLate(
                f"cancelling closes {self.cancel_cutoff_minutes} min before the start; "
                "ask a facility manager"
            )

    def _check_hours(self, local_start: datetime, local_end: datetime) -> None:
        if self.all_day:
            return
        start_minute = local_start.hour * 60 + local_start.minute
        end_minute = local_end.hour * 60 + local_end.minute
        if local_end.date() != local_start.date():
            # Only an end at the next midnight stays within one local day.
            next_midnight = local_end.date() == local_start.date() + timedelta(days=1)
            if not (next_midnight and end_minute == 0 and local_end.second == 0):
                raise RuleBroken("outside-allowed-hours", self._hours_detail(), "end")
            end_minute = MINUTES_PER_DAY
        if start_minute < self.opens_minute:
            raise RuleBroken("outside-allowed-hours", self._hours_detail(), "start")
        if end_minute > self.closes_minute or (
            end_minute == self.closes_minute and local_end.second + local_end.microsecond > 0
        ):
            raise RuleBroken("outside-allowed-hours", self._hours_detail(), "end")

    def _hours_detail(self) -> str:
        def clock(minute: int) -> str:
            return f"{minute // 60:02d}:{minute % 60:02d}"

        return (
            f"bookable between {clock(self.opens_minute)} and {clock(self.closes_minute)} "
            "local time in the building, within one day"
        )


class Repeat(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


MAX_OCCURRENCES = 60


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A series: the first occurrence [start, end), repeated every day or week at the
    same local wall-clock times in the building's zone, ``count`` times, skipping the
    local dates in ``skip`` (a skipped date still counts as one of the ``count``)."""

    start: datetime
    end: datetime
    repeat: Repeat
    count: int
    skip: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        require_aware(self.start, "start")
        require_aware(self.end, "end")
        if not 1 <= self.count <= MAX_OCCURRENCES:
            raise ValueError(f"count: 1 to {MAX_OCCURRENCES} occurrences")

    def occurrences(self, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
        local_start, local_end = self.start.astimezone(tz), self.end.astimezone(tz)
        step = timedelta(days=1 if self.repeat is Repeat.DAILY else 7)
        found = []
        for n in range(self.count):
            day, end_day = local_start.date() + n * step, local_end.date() + n * step
            if day in self.skip:
                continue
            start = datetime.combine(day, local_start.timetz().replace(tzinfo=tz))
            end = datetime.combine(end_day, local_end.timetz().replace(tzinfo=tz))
            found.append((start, end))
        return found
