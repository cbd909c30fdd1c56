"""The Find-a-desk page's query (``web.desks``): a floor or zone of a building and a
time window on a day in the building's zone, read from the filter form (or a booking
form) with the defaults for what it leaves out; a value that cannot be used is a
``BadField`` naming the field, which the page shows (400)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from ikn_core.fields import FIRST_YEAR, LAST_YEAR
from ikn_store.people import Person
from ikn_store.spaces import PlanZone
from web import i18n

T = TypeVar("T")
DAY_START, DAY_END = time(8), time(17)  # the default window's bounds
TAG = re.compile(r"[a-z0-9_-]{1,32}")
FIELDS = {
    "building": i18n.gettext_noop("Building"),
    "floor": i18n.gettext_noop("Floor"),
    "zone": i18n.gettext_noop("Zone"),
    "date": i18n.gettext_noop("Date"),
    "start": i18n.gettext_noop("From"),
    "end": i18n.gettext_noop("Until"),
    "equipment": i18n.gettext_noop("Equipment"),
}
NO_PLACE = i18n.gettext_noop("there is no such place here.")
NOT_A_DATE = i18n.gettext_noop("not a date (YYYY-MM-DD).")
NOT_A_TIME = i18n.gettext_noop("not a time (HH:MM).")
OUT_OF_YEARS = i18n.gettext_noop("a date in the years 2000 to 2100.")  # FIRST_YEAR, LAST_YEAR
NOT_AFTER = i18n.gettext_noop("the end is not after the start.")
BAD_TAGS = i18n.gettext_noop(
    "lower-case letters, digits, '-' or '_', separated by commas (monitor,dock)."
)


class BadField(ValueError):
    """A value of the form that cannot be used: its field and why (a message)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field)
        self.field, self.reason = field, reason


@dataclass(frozen=True, slots=True)
class Query:
    """What the page shows: a floor (and maybe one zone) for a window on a day."""

    building: str
    floor: str
    zone: str | None
    day: date
    start: time
    end: time
    equipment: tuple[str, ...]
    tz: ZoneInfo  # the building's

    @property
    def window(self) -> tuple[datetime, datetime]:
        return (
            datetime.combine(self.day, self.start, self.tz),
            datetime.combine(self.day, self.end, self.tz),
        )

    def when(self) -> dict[str, str]:
        """The window as the form's fields (``date``, ``start``, ``end``)."""
        return {
            "date": self.day.isoformat(),
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }

    def form(self) -> dict[str, str]:
        """Every field of the filter form, as it would be sent."""
        return {
            "building": self.building,
            "floor": self.floor,
            "zone": self.zone or "",
            **self.when(),
            "equipment": ",".join(self.equipment),
        }


def default_window(now: datetime, zone: ZoneInfo) -> tuple[date, time, time]:
    """The next full hour until 17:00 in the building's zone (not before 08:00); after
    16:00, tomorrow from 08:00 to 17:00."""
    local = now.astimezone(zone)
    past = (local.minute, local.second, local.microsecond) != (0, 0, 0)
    hour = max(local.hour + past, DAY_START.hour)
    if hour >= DAY_END.hour:
        return local.date() + timedelta(days=1), DAY_START, DAY_END
    return local.date(), time(hour), DAY_END


def read_query(
    values: Mapping[str, str], places: list[PlanZone], person: Person, now: datetime
) -> Query:
    """The page's query from the form's ``values``, with the defaults for what is
    absent (the person's building, its first floor or the zone's, the default window);
    ``BadField``."""
    building = _one(values, "building", person.home_building_id, places, "building_id")
    here = [p for p in places if p.building_id == building]
    zone = values.get("zone") or None
    of_zone = next((p.floor_id for p in here if zone is not None and p.zone_id == zone), None)
    floor = _one(values, "floor", of_zone, here, "floor_id")
    if zone is not None and zone not in {p.zone_id for p in here if p.floor_id == floor}:
        raise BadField("zone", NO_PLACE)
    tz = ZoneInfo(here[0].tz)
    day, start, end = read_window(values, tz, now)
    return Query(building, floor, zone, day, start, end, _tags(values.get("equipment", "")), tz)


def read_window(values: Mapping[str, str], tz: ZoneInfo, now: datetime) -> tuple[date, time, time]:
    """The day and times of ``values`` (``date``, ``start``, ``end``) or their defaults
    (``default_window``; another day starts at 08:00); ``BadField``."""
    today, first, last = default_window(now, tz)
    day = _parsed(values, "date", date.fromisoformat, today)
    if not FIRST_YEAR <= day.year <= LAST_YEAR:  # as the API's days: beyond, no timestamptz
        raise BadField("date", OUT_OF_YEARS)
    start = _parsed(values, "start", _clock, first if day == today else DAY_START)
    end = _parsed(values, "end", _clock, last)
    if end <= start:
        raise BadField("end", NOT_AFTER)
    return day, start, end


def _one(
    values: Mapping[str, str], field: str, default: str | None, places: list[PlanZone], key: str
) -> str:
    """The place ``field`` names (one of ``places``' ``key``), else ``default`` if it is
    one of them, else the first."""
    known: list[str] = list(dict.fromkeys(getattr(p, key) for p in places))
    asked = values.get(field) or None
    if not known or (asked is not None and asked not in known):
        raise BadField(field, NO_PLACE)
    if asked is not None:
        return asked
    return default if default is not None and default in known else known[0]


def _clock(text: str) -> time:
    if not re.fullmatch(r"\d\d:\d\d", text):
        raise ValueError(text)
    return time.fromisoformat(text)


def _parsed(values: Mapping[str, str], field: str, parse: Callable[[str], T], default: T) -> T:
    raw = values.get(field) or None
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise BadField(field, NOT_A_DATE if field == "date" else NOT_A_TIME) from None


def _tags(raw: str) -> tuple[str, ...]:
    tags = tuple(t.strip() for t in raw.split(",") if t.strip())
    if not all(TAG.fullmatch(t) for t in tags):
        raise BadField("equipment", BAD_TAGS)
    return tags
