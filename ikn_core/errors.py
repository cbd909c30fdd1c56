"""The exceptions of the shared core.

    IknError
    ├── ContractError      a payload or topic does not fit the MQTT contract v1
    └── SettingsError      the environment does not describe a runnable service

Each carries structured fields (a stable ``reason`` code, the ``path`` of the
offending field, the list of ``problems``) so callers never parse messages.
"""

from __future__ import annotations

from collections.abc import Sequence


class IknError(Exception):
    """Base of every error raised on purpose by IKN Workspace code."""


class ContractError(IknError):
    """A payload or topic that does not fit the contract.

    ``reason`` is a short stable code (``not_json``, ``too_large``, ``bad_version``,
    ``unknown_kind``, ``bad_field``, ``missing_field``, ``unknown_field``,
    ``bad_topic``) used for dead-letter counts; ``path`` locates the field
    (``readings[3].seq``); ``detail`` says what was wrong in words.
    """

    def __init__(self, reason: str, detail: str, path: str = "") -> None:
        self.reason = reason
        self.detail = detail
        self.path = path
        super().__init__(f"{path}: {detail}" if path else detail)

    def at(self, prefix: str) -> ContractError:
        """The same error, located under ``prefix`` (``readings[3]``)."""
        path = f"{prefix}.{self.path}" if self.path else prefix
        return ContractError(self.reason, self.detail, path)


class SettingsError(IknError):
    """One or more environment variables are missing or malformed."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")
