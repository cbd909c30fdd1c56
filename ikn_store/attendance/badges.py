"""Badge enrolment: the contract's pseudonymous badge token -> the person holding it.

Only the token is stored (the edge agent's HMAC of the card number with the site's
key, ``edge_agent.badge.badge_token``); the card number never reaches the database.
Enrolling a token again moves it to the new person and clears a revocation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ikn_core.access import UnknownBadgePerson
from ikn_core.contract.identifiers import ENROLLED_BADGE


@dataclass(frozen=True, slots=True)
class Badge:
    token: str
    person_id: str
    enrolled_at: datetime
    revoked_at: datetime | None


async def enrol(conn: asyncpg.Connection, token: str, person_id: str) -> Badge:
    if not ENROLLED_BADGE.fullmatch(token):
        raise ValueError("not a badge token (b1: and 43 base64url characters)")
    try:
        row = await conn.fetchrow(
            """INSERT INTO badges (token, person_id) VALUES ($1, $2)
               ON CONFLICT (token) DO UPDATE SET person_id = EXCLUDED.person_id,
                   enrolled_at = now(), revoked_at = NULL
               RETURNING *""",
            token,
            person_id,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise UnknownBadgePerson(f"no person {person_id!r}") from exc
    assert row is not None
    return Badge(row["token"], row["person_id"], row["enrolled_at"], row["revoked_at"])


async def revoke(conn: asyncpg.Connection, token: str) -> bool:
    """Stop mapping ``token`` (taps after now are unknown); False when it was not enrolled."""
    status: str = await conn.execute(
        "UPDATE badges SET revoked_at = now() WHERE token = $1 AND revoked_at IS NULL", token
    )
    return status != "UPDATE 0"
