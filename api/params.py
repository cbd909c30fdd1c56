"""The dates and times requests carry (query, body, path), parsed by the one parser
(``ikn_core.fields``, which the pages share), and the test of a whole number written
in digits. A value that cannot be used is a 400 ``invalid-parameter`` naming the field.
"""

from __future__ import annotations

from datetime import date, datetime

from api.problems import invalid_parameter
from ikn_core import fields
from ikn_core.fields import InvalidField


def digits(text: str) -> bool:
    """Whether ``text`` is a whole number in ASCII digits (``str.isdigit`` also takes
    ``'²'``, which ``int()`` refuses)."""
    return text.isascii() and text.isdigit()


def parse_day(name: str, value: object) -> date:
    """A calendar day ``YYYY-MM-DD`` (``ikn_core.fields.parse_day``)."""
    try:
        return fields.parse_day(name, value)
    except InvalidField as exc:
        raise invalid_parameter(exc.name, exc.reason) from None


def parse_time(name: str, value: object) -> datetime:
    """An ISO 8601 date-time with a UTC offset (``ikn_core.fields.parse_time``)."""
    try:
        return fields.parse_time(name, value)
    except InvalidField as exc:
        raise invalid_parameter(exc.name, exc.reason) from None
