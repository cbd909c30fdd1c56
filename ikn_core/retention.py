"""How long each kind of personal data is kept (UU 27/2022 on personal data protection,
Article 43: no longer than the purpose needs): the one declaration of the purposes.

Each ``Purpose`` names the data, where it is stored, why, and the setting whose value
is its period (``RetentionSettings``; coordinates: the attendance policy's
``location.retention_days``). The retention job (``ikn_service.retention``) deletes what
is past each period; the retention table of docs/privacy.md is generated from here
(``python -m ikn_core.retention --write docs/privacy.md``; tests/test_retention.py fails
when it is stale).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta

from ikn_core import generated
from ikn_core.attendance.policy import Policy
from ikn_core.attendance.versions import Policies
from ikn_core.setting import SETTING
from ikn_core.settings import RetentionSettings


@dataclass(frozen=True, slots=True)
class Purpose:
    name: str  # the job's key, in its log line and its counts
    data: str  # what is deleted
    stored: str  # tables (columns)
    why: str  # the purpose it serves while kept
    field: str  # the RetentionSettings field of its period; "": the attendance policy


COORDINATES = "coordinates"
PURPOSES: tuple[Purpose, ...] = (
    Purpose(
        COORDINATES,
        "coordinates (and their accuracy) of a remote check-in",
        "`attendance_signals` (`lat`, `lon`, `accuracy_m`)",
        "show where a remote clock-in was made, when the agency's policy asks for it",
        "",
    ),
    Purpose(
        "readings",
        "readings of the devices, badge taps among them (the badge's keyed hash)",
        "`readings` (daily partitions)",
        "derive desk state, occupancy and attendance signals; diagnose devices",
        "readings_days",
    ),
    Purpose(
        "signals",
        (
            "attendance signals: badge taps, app, desk and booking check-ins, door codes "
            "scanned, corrections"
        ),
        "`attendance_signals`",
        "the evidence behind each attendance day, for corrections and disputes",
        "signals_days",
    ),
    Purpose(
        "attendance",
        "attendance days and requests (leave, official travel, corrections)",
        "`attendance_days`, `attendance_requests`, `attendance_dirty`",
        "attendance records for TPP, the PP 94/2021 discipline thresholds and appeals",
        "attendance_days",
    ),
    Purpose(
        "audit",
        "the attendance audit trail: who decided or changed what",
        "`attendance_audit`",
        "accountability of supervisors' decisions and of corrections",
        "audit_days",
    ),
    Purpose(
        "access_log",
        "who viewed whose attendance, when, what",
        "`attendance_access`",
        "let each person see who looked at their attendance",
        "access_log_days",
    ),
    Purpose(
        "dead_letters",
        "messages that did not fit the contract (may hold badge tokens)",
        "`dead_letters`, `dead_letter_counts`",
        "diagnose devices and the ingest",
        "dead_letters_days",
    ),
    Purpose(
        "sessions",
        "staff-page sessions (with their OIDC sign-in and ID token) and a person's API tokens",
        "`web_sessions`, `api_tokens` (of a person)",
        "keep a person signed in; counted from when it can no longer be used",
        "sessions_days",
    ),
)
BY_NAME = {p.name: p for p in PURPOSES}


def setting_of(purpose: Purpose) -> str:
    """The variable (or policy key) that sets the purpose's period."""
    if not purpose.field:
        return "policy `location.retention_days`"
    field = next(f for f in dataclasses.fields(RetentionSettings) if f.name == purpose.field)
    return f"`{field.metadata[SETTING].var}`"


def days_of(purpose: Purpose, settings: RetentionSettings, policy: Policy) -> int | None:
    """The purpose's period in days (None: coordinates not stored at all)."""
    if not purpose.field:
        return policy.location_retention_days
    days: int = getattr(settings, purpose.field)
    return days


def cutoffs(settings: RetentionSettings, policy: Policy, now: datetime) -> dict[str, datetime]:
    """Per purpose, the moment before which its data is past its period (coordinates:
    ``now`` when the policy keeps none)."""
    return {p.name: now - timedelta(days=days_of(p, settings, policy) or 0) for p in PURPOSES}


def _kept(purpose: Purpose, days: int | None) -> str:
    if days is None:
        return "not stored (`none`)"
    if purpose.name == "sessions":
        return f"{days} days after it ends"
    return f"{days} days"


def markdown(settings: RetentionSettings | None = None, policy: Policy | None = None) -> str:
    """The retention table of docs/privacy.md, with the shipped defaults."""
    settings = settings or RetentionSettings()
    policy = policy or Policies.default().versions[-1]  # the shipped national one
    lines = [
        "| purpose | personal data | stored in | kept (default) | set by |",
        "|---|---|---|---|---|",
    ]
    for p in PURPOSES:
        kept = _kept(p, days_of(p, settings, policy))
        lines.append(f"| `{p.name}` | {p.data} | {p.stored} | {kept} | {setting_of(p)} |")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- retention table: generated by python -m ikn_core.retention --write -->\n"
END = "<!-- end of the retention table -->\n"


def with_table(doc: str) -> str:
    """``doc`` with the text between the markers replaced by the table."""
    return generated.between(doc, BEGIN, END, markdown())


if __name__ == "__main__":  # python -m ikn_core.retention --write docs/privacy.md
    sys.exit(generated.main(sys.argv[1:], markdown, with_table))
