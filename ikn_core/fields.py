"""The one parser of the dates, months and times requests carry, for the API and the pages:
a field that cannot be used is an ``InvalidField`` naming it, with the reason in the
API's words and a stable ``code`` a page translates.

A date or time must fall in the years ``FIRST_YEAR`` to ``LAST_YEAR``: beyond them
Python's date arithmetic overflows (``9999-12-31`` plus a day) and no working day of
the platform lies there.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from ikn_core.errors import IknError

FIRST_YEAR, LAST_YEAR = 2000, 2100
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_RANGE = f"must fall in the years {FIRST_YEAR} to {LAST_YEAR}"


class InvalidField(IknError):
    """``name``'s value cannot be used: ``reason`` says why (the API's problem gives it
    as is), ``code`` is a stable key for a page's message in the person's language."""

    def __init__(self, name: str, reason: str, code: str) -> None:
        self.name = name
        self.reason = reason
        self.code = code
        super().__init__(f"{name}: {reason}")


def _in_range(name: str, value: date) -> None:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InvalidField(name, _RANGE, "year-range")


def parse_day(name: str, value: object) -> date:
    """A calendar day ``YYYY-MM-DD``."""
    if not isinstance(value, str):
        raise InvalidField(name, "required: a date YYYY-MM-DD", "day-required")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidField(name, "a date YYYY-MM-DD", "day-format") from None
    _in_range(name, day)
    return day


def parse_month(name: str, value: object) -> date:
    """A month ``YYYY-MM``: its first day."""
    match = _MONTH.fullmatch(value) if isinstance(value, str) else None
    if not match or not 1 <= int(match[2]) <= 12 or not FIRST_YEAR <= int(match[1]) <= LAST_YEAR:
        raise InvalidField(name, "required: YYYY-MM", "month-format")
    return date(int(match[1]), int(match[2]), 1)


def parse_time(name: str, value: object) -> datetime:
    """An ISO 8601 date-time with a UTC offset (naive times are refused)."""
    if not isinstance(value, str):
        raise InvalidField(name, "required: an ISO 8601 date-time with an offset", "time-required")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidField(name, "not an ISO 8601 date-time", "time-format") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        reason = "needs a UTC offset (Z or +08:00); naive times are refused"
        raise InvalidField(name, reason, "time-offset")
    _in_range(name, parsed)
    return parsed
