"""The one parser of the dates and times requests carry (query, body, path), and the
test of a whole number written in digits.

A date or time must fall in the years ``FIRST_YEAR`` to ``LAST_YEAR``: beyond them
Python's date arithmetic overflows (``9999-12-31`` plus a day) and no working day of
the platform lies there. Anything else is a 400 ``invalid-parameter`` naming the field.
"""

from __future__ import annotations

from datetime import date, datetime

from api.problems import invalid_parameter

FIRST_YEAR, LAST_YEAR = 2000, 2100
_RANGE = f"must fall in the years {FIRST_YEAR} to {LAST_YEAR}"


def digits(text: str) -> bool:
    """Whether ``text`` is a whole number in ASCII digits (``str.isdigit`` also takes
    ``'²'``, which ``int()`` refuses)."""
    return text.isascii() and text.isdigit()


def _in_range(name: str, value: date) -> None:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise invalid_parameter(name, _RANGE)


def parse_day(name: str, value: object) -> date:
    """A calendar day ``YYYY-MM-DD``."""
    if not isinstance(value, str):
        raise invalid_parameter(name, "required: a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise invalid_parameter(name, "a date YYYY-MM-DD") from None
    _in_range(name, day)
    return day


def parse_time(name: str, value: object) -> datetime:
    """An ISO 8601 date-time with a UTC offset (naive times are refused)."""
    if not isinstance(value, str):
        raise invalid_parameter(name, "required: an ISO 8601 date-time with an offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_parameter(name, "not an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise invalid_parameter(name, "needs a UTC offset (Z or +08:00); naive times are refused")
    _in_range(name, parsed)
    return parsed
