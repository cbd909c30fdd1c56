"""The checks of a zone's (or building's, site's) booking-rule overrides and of a
zone's access list, pure, shared by the API's PUTs (``api/booking/zones.py``) and the
console's zone page (``web/zones.py``): each refusal an ``InvalidField`` naming its
field, with the API's reason and a stable code for a page's message."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ikn_core.fields import InvalidField

# The ranges of zone_booking_rules' CHECKs, by field.
LIMITS = {
    "max_days_ahead": (0, 366),
    "min_minutes": (1, 1440),
    "max_minutes": (1, 10080),
    "opens_minute": (0, 1439),
    "closes_minute": (1, 1440),
    "cancel_cutoff_minutes": (0, 10080),
}
RULE_FIELDS = tuple(LIMITS)
PAIRS = (("opens_minute", "closes_minute"), ("min_minutes", "max_minutes"))
NAME = re.compile(r"[^/\s](?:[^/]{0,62}[^/\s])?")  # an agency or unit: no '/', trimmed


def check_overrides(body: Mapping[str, object]) -> dict[str, int | None]:
    """Every rule field of ``body`` (absent: None), checked: ranges, pairs together,
    opening before closing, the shortest no longer than the longest."""
    values: dict[str, int | None] = {}
    for name in RULE_FIELDS:
        value = body.get(name)
        low, high = LIMITS[name]
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high
        ):
            raise InvalidField(name, f"an integer from {low} to {high}, or null", "range")
        values[name] = value
    for first, second in PAIRS:
        if (values[first] is None) != (values[second] is None):
            missing = first if values[first] is None else second
            raise InvalidField(missing, f"{first} and {second} are overridden together", "pair")
    opens, closes = values["opens_minute"], values["closes_minute"]
    if opens is not None and closes is not None and opens >= closes:
        raise InvalidField("closes_minute", "must be after opens_minute", "order")
    shortest, longest = values["min_minutes"], values["max_minutes"]
    if shortest is not None and longest is not None and shortest > longest:
        raise InvalidField("max_minutes", "must not be less than min_minutes", "order")
    return values


def check_entry(field: str, agency: object, unit: object) -> tuple[str, str | None]:
    """One entry of an access list: an agency, and a unit of it or None."""
    if not isinstance(agency, str) or not NAME.fullmatch(agency):
        raise InvalidField(f"{field}.agency", "required: 1-64 characters, no '/'", "name")
    if unit is not None and (not isinstance(unit, str) or not NAME.fullmatch(unit)):
        raise InvalidField(f"{field}.unit", "1-64 characters, no '/', or null", "name")
    return agency, unit


def check_access(entries: Sequence[tuple[str, str | None]]) -> None:
    """No entry twice (``allowed[n]`` names the second)."""
    for n, entry in enumerate(entries):
        if entry in entries[:n]:
            raise InvalidField(f"allowed[{n}]", "listed twice", "twice")
