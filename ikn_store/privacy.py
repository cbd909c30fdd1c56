"""Everything the platform stores about one person, for their right of access
(UU 27/2022 on personal data protection, Article 7): ``GET /api/v1/me/data``.

Each table that holds a person's data is read by the columns that are theirs; secrets
are not data about the person and are left out (an API token's, a session's and a
calendar address's hash, a session's CSRF token). A table added with a person's data
must be added here too: tests/test_privacy.py fails on a table with a ``person_id``
column that is not read.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

# What is read, by section: each query takes the person's id as $1.
SECTIONS: dict[str, str] = {
    "person": "SELECT * FROM people WHERE id = $1",
    "badges": "SELECT * FROM badges WHERE person_id = $1 ORDER BY enrolled_at",
    "api_tokens": """SELECT name, role, created_at, expires_at, last_used_at FROM api_tokens
                     WHERE person_id = $1 ORDER BY created_at""",
    "web_sessions": """SELECT created_at, seen_at, expires_at FROM web_sessions
                       WHERE person_id = $1 ORDER BY created_at""",
    "booking_feeds": "SELECT created_at FROM booking_feeds WHERE person_id = $1",
    "bookings": """SELECT id, desk_id, lower(period) AS start, upper(period) AS "end", status,
                          created_by, created_at, checked_in_at, check_in_signal, series_id
                   FROM bookings WHERE person_id = $1 OR created_by = $1
                   ORDER BY lower(period)""",
    "attendance_signals": """SELECT id, kind, at, received_at, place_type, building_id, source,
                                    lat, lon, accuracy_m, also_within
                             FROM attendance_signals WHERE person_id = $1 ORDER BY at""",
    "attendance_days": "SELECT * FROM attendance_days WHERE person_id = $1 ORDER BY day",
    "attendance_requests": """SELECT id, person_id, kind, lower(days) AS first,
                                     upper(days) - 1 AS last, clock_in, clock_out, reason,
                                     status, requested_by, requested_at, decided_by,
                                     decided_at, evidence
                              FROM attendance_requests
                              WHERE $1 IN (person_id, requested_by, decided_by)
                              ORDER BY requested_at""",
    "attendance_audit": """SELECT at, actor, action, request_id, day, before, after
                           FROM attendance_audit WHERE person_id = $1 OR actor = $1
                           ORDER BY at""",
    # who viewed my attendance, and whose I viewed
    "attendance_access": """SELECT at, subject_id, viewer_id, viewer_name, viewer_role, what,
                                   period, channel
                            FROM attendance_access WHERE $1 IN (subject_id, viewer_id)
                            ORDER BY at""",
}
# Tables with a person_id column that hold nothing more about the person than the
# sections above (a queue of days to compute again).
DERIVED = frozenset({"attendance_dirty"})


async def personal_data(conn: asyncpg.Connection, person_id: str) -> dict[str, Any] | None:
    """Every section's rows about ``person_id`` (None: no such person)."""
    found: dict[str, Any] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):  # one moment
        for section, query in SECTIONS.items():
            found[section] = [_plain(r) for r in await conn.fetch(query, person_id)]
    if not found["person"]:
        return None
    found["person"] = found["person"][0]
    return found


def _plain(row: asyncpg.Record) -> dict[str, Any]:
    """A row as JSON can take it (asyncpg's UUIDs are its own type)."""
    return {k: str(v) if isinstance(v, UUID) else v for k, v in row.items()}
