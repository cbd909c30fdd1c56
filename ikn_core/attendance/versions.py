"""``Policies``: every version of an attendance policy, and the one in force on a day.

The shipped national default (Perpres 21/2023 figures) is ``Policies.default()``; the
only I/O is reading a file in ``Policies.load`` and ``Policies.default``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

from ikn_core.attendance.errors import PolicyError
from ikn_core.attendance.policy import Policy
from ikn_core.attendance.policy_file import parse_policies


@dataclass(frozen=True, slots=True)
class Policies:
    """All versions of a policy, ordered by ``effective_from`` (no two on one day).
    ``kept_days``: how long attendance days are kept (``IKN_ATTENDANCE_RETENTION_DAYS``;
    None: for ever): older days are not reported, their records are deleted, and
    computed afresh from no signal they would say absent."""

    versions: tuple[Policy, ...]
    kept_days: int | None = None

    def __post_init__(self) -> None:
        if not self.versions:
            raise PolicyError("policy", "at least one policy version is needed")
        days = [v.effective_from for v in self.versions]
        if days != sorted(set(days)):
            raise PolicyError("policy", "effective_from dates must be distinct and ascending")

    def in_force(self, day: date) -> Policy:
        """The version in force on ``day``; PolicyError if ``day`` precedes them all."""
        index = bisect.bisect_right([v.effective_from for v in self.versions], day) - 1
        if index < 0:
            first = self.versions[0].effective_from
            raise PolicyError(
                "effective_from", f"no policy in force on {day} (the first starts {first})"
            )
        return self.versions[index]

    def reported_days(self, first: date, end: date, today: date) -> list[date]:
        """The days of [first, end) up to ``today`` on which a version is in force, and
        within ``kept_days`` of ``today``: the days a report lists (the API's, the pages')."""
        first = max(first, self.versions[0].effective_from)
        if self.kept_days is not None:
            first = max(first, today - timedelta(days=self.kept_days))
        last = min(end, today + timedelta(days=1))
        return [first + timedelta(n) for n in range(max(0, (last - first).days))]

    def keeping(self, days: int | None) -> Policies:
        """These versions, reporting only the days of the last ``days`` (retention)."""
        return replace(self, kept_days=days)

    @classmethod
    def of(cls, versions: Iterable[Policy]) -> Policies:
        return cls(tuple(sorted(versions, key=lambda v: v.effective_from)))

    @classmethod
    def parse(cls, text: str, source: str = "") -> Policies:
        """Parse a TOML policy file; PolicyError names the key (``policy[0].start``)."""
        return cls.of(parse_policies(text, source))

    @classmethod
    def load(cls, path: str | Path) -> Policies:
        """Read and parse the policy file at ``path``."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError("", f"cannot read the policy file: {exc}", str(path)) from exc
        return cls.parse(text, str(path))

    @classmethod
    def default(cls) -> Policies:
        """The shipped national policy (``policies/national.toml``)."""
        text = resources.files("ikn_core.attendance").joinpath("policies", "national.toml")
        return cls.parse(text.read_text(encoding="utf-8"), "national.toml")
