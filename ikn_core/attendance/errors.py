"""The exceptions of the attendance rules.

    IknError
    └── AttendanceError        base of everything raised on purpose here
        ├── PolicyError        a policy file (or one of its keys) is wrong, or no
        │                      policy is in force on a day
        ├── SignalError        a signal or excuse that cannot be used (naive time, ...)
        └── OutsideGeofence    an office check-in outside every building's geofence

Both carry structured fields: ``key`` is the dotted path of the offending policy key
(``policy[1].ramadan.periods[0].start``) or signal field (``at``), ``detail`` says what
was wrong in words.
"""

from __future__ import annotations

from ikn_core.errors import IknError


class AttendanceError(IknError):
    """Base of the errors of ``ikn_core.attendance``."""

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        self.detail = detail
        super().__init__(f"{key}: {detail}" if key else detail)


class PolicyError(AttendanceError):
    """A policy file does not parse or validate; ``source`` names the file if known."""

    def __init__(self, key: str, detail: str, source: str = "") -> None:
        self.source = source
        super().__init__(key, detail)

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.source}: {text}" if self.source else text


class SignalError(AttendanceError):
    """A signal or excuse that the rules cannot use (``key`` names the field)."""


class OutsideGeofence(AttendanceError):
    """An ``office`` check-in from a point (or with a fix) not within ``radius_m`` of
    any building."""

    def __init__(self, radius_m: float) -> None:
        self.radius_m = radius_m
        within = f"within {radius_m:g} m of a building, with a fix that precise"
        super().__init__("lat", f"an office check-in must be {within}")
