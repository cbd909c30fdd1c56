"""The exceptions of the attendance rules.

    IknError
    └── AttendanceError        base of everything raised on purpose here
        ├── PolicyError        a policy file (or one of its keys) is wrong, or no
        │                      policy is in force on a day
        └── SignalError        a signal or excuse that cannot be used (naive time, ...)

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
