"""The domain errors of access: API tokens and enrolled badges.

IknError
├── TokenError           kind: "name-taken" | "unknown-person" | "unknown-token"
└── UnknownBadgePerson   the person to enrol a badge for does not exist
"""

from __future__ import annotations

from ikn_core.errors import IknError


class TokenError(IknError):
    """A token cannot be created or changed: ``kind`` says why."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class UnknownBadgePerson(IknError):
    """The person to enrol a badge for does not exist."""
