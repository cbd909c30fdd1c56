"""The fields of import files: each parser takes a raw value (a str from CSV, any
JSON value) and returns it typed, or raises ValueError with the reason (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ikn_core.contract.identifiers import ID, PERSON_ID

_TAG = re.compile(r"[a-z0-9_-]{1,32}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ROLES = ("employee", "delegate", "supervisor", "facility_manager", "admin")
MAX_TEXT = 200  # Absent values never reach a parser.


def _id(value: object) -> str:
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise ValueError("must be 1-64 letters, digits, '-' or '_'")
    return value


def _person_id(value: object) -> str:
    if not isinstance(value, str) or not PERSON_ID.fullmatch(value):
        raise ValueError("must be 1-64 letters, digits, '.', '@', '-' or '_'")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise ValueError(f"must be text of 1-{MAX_TEXT} characters")
    if "\x00" in value:  # PostgreSQL's text cannot hold it
        raise ValueError("must not contain a NUL character")
    return value.strip()


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _between(low: float, high: float) -> Callable[[object], float]:
    def parse(value: object) -> float:
        number = _number(value)
        if not low <= number <= high:
            raise ValueError(f"must be from {low:g} to {high:g}")
        return number

    return parse


def _level(value: object) -> int:
    number = _number(value)
    if number != int(number) or not -20 <= number <= 300:
        raise ValueError("must be a whole number from -20 to 300")
    return int(number)


def _tz(value: object) -> str:
    try:
        ZoneInfo(_text(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Makassar)") from None
    return str(value).strip()


def _tags(value: object) -> tuple[str, ...]:
    items = re.split(r"[;,\s]+", value) if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError("must be a list of tags")
    tags = tuple(sorted({t for t in items if t != ""}))
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise ValueError(f"{tag!r}: a tag is 1-32 lower-case letters, digits, '-' or '_'")
    return tags


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError("must be true or false")


def _date(value: object) -> date:
    if isinstance(value, date):
        return value
    try:
        if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
            raise ValueError
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a date YYYY-MM-DD") from None
    if not 1950 <= day.year <= 2100:
        raise ValueError("must be a date from 1950 to 2100")
    return day


def _role(value: object) -> str:
    if value not in ROLES:
        raise ValueError(f"must be one of {', '.join(ROLES)}")
    return str(value)


Parser = Callable[[object], object]
# field → (parser, required) for each kind; "parent" is checked against the hierarchy.
FIELDS: dict[str, dict[str, tuple[Parser, bool]]] = {
    "site": {"id": (_id, True), "name": (_text, True)},
    "building": {
        "id": (_id, True),
        "parent": (_id, False),
        "name": (_text, True),
        "tz": (_tz, False),
        "lat": (_between(-90, 90), False),
        "lon": (_between(-180, 180), False),
        "agency": (_text, False),
        "live_from": (_date, False),
    },
    "floor": {
        "id": (_id, True),
        "parent": (_id, True),
        "name": (_text, True),
        "level": (_level, True),
    },
    "zone": {
        "id": (_id, True),
        "parent": (_id, True),
        "name": (_text, True),
        "agency": (_text, False),
    },
    "desk": {
        "id": (_id, True),
        "parent": (_id, True),
        "name": (_text, True),
        "x": (_number, True),
        "y": (_number, True),
        "equipment": (_tags, False),
        "disabled": (_bool, False),
        "assigned_to": (_person_id, False),
    },
    "person": {
        "id": (_person_id, True),
        "name": (_text, True),
        "agency": (_text, True),
        "unit": (_text, True),
        "role": (_role, False),
        "home_building": (_id, False),
        "employment_start": (_date, False),
        "employment_end": (_date, False),
        "duty_station_tz": (_tz, False),
    },
}

# A desk's fields as the floor-plan editor checks them (ikn_core.floor_plans), as here.
number, tags, person_id = _number, _tags, _person_id
