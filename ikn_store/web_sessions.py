"""Sessions of the staff pages (``web_sessions``, migrations 0040_web_sessions and
0042_web_sign_in).

A browser holds the session's id; the table holds its SHA-256 only. ``find`` answers
a session that is neither past its absolute end nor idle too long, and notes the
request in the same statement. A visitor's session may hold the OIDC sign-in it started
(``begin_sign_in``), which the callback takes once (``take_sign_in``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from ikn_store.people import Person, person_of


@dataclass(frozen=True, slots=True)
class WebSession:
    csrf_token: str
    expires_at: datetime
    person: Person | None  # None: a visitor who has not signed in


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """An OIDC sign-in a visitor started: what the provider's answer must match."""

    state: str
    nonce: str
    verifier: str  # the PKCE code verifier
    next: str  # the page of ours to return to
    started_at: datetime


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


async def create(
    conn: asyncpg.Connection,
    session_id: str,
    csrf_token: str,
    person_id: str | None,
    *,
    now: datetime,
    lasts: timedelta,
    id_token: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO web_sessions (id_hash, person_id, csrf_token, created_at, seen_at,
                                     expires_at, id_token)
           VALUES ($1, $2, $3, $4, $4, $5, $6)""",
        _hash(session_id),
        person_id,
        csrf_token,
        now,
        now + lasts,
        id_token,
    )


async def begin_sign_in(conn: asyncpg.Connection, session_id: str, pending: PendingSignIn) -> bool:
    """Keep ``pending`` in the visitor's session ``session_id`` (replacing one it held);
    False when that is no visitor's live session."""
    status: str = await conn.execute(
        """UPDATE web_sessions SET oidc_state = $2, oidc_nonce = $3, oidc_verifier = $4,
                                   oidc_next = $5, oidc_started_at = $6
           WHERE id_hash = $1 AND person_id IS NULL""",
        _hash(session_id),
        pending.state,
        pending.nonce,
        pending.verifier,
        pending.next,
        pending.started_at,
    )
    return status == "UPDATE 1"


_TAKE = """
UPDATE web_sessions s
SET oidc_state = NULL, oidc_nonce = NULL, oidc_verifier = NULL, oidc_next = NULL,
    oidc_started_at = NULL
FROM (SELECT id_hash, oidc_state, oidc_nonce, oidc_verifier, oidc_next, oidc_started_at
      FROM web_sessions WHERE id_hash = $1 AND oidc_state IS NOT NULL FOR UPDATE) old
WHERE s.id_hash = old.id_hash
RETURNING old.oidc_state, old.oidc_nonce, old.oidc_verifier, old.oidc_next,
          old.oidc_started_at"""


async def take_sign_in(conn: asyncpg.Connection, session_id: str) -> PendingSignIn | None:
    """The sign-in ``session_id`` started, no longer held there (each is used once)."""
    row = await conn.fetchrow(_TAKE, _hash(session_id))
    if row is None:
        return None
    return PendingSignIn(*row.values())


_FIND = """
WITH s AS (
    UPDATE web_sessions SET seen_at = $2
    WHERE id_hash = $1 AND expires_at > $2 AND seen_at > $2 - $3::interval
    RETURNING person_id, csrf_token, expires_at
)
SELECT s.csrf_token, s.expires_at, p.*
FROM s LEFT JOIN people p ON p.id = s.person_id"""


async def find(
    conn: asyncpg.Connection, session_id: str, now: datetime, idle: timedelta
) -> WebSession | None:
    """The live session of ``session_id`` (None: unknown, ended, expired or idle)."""
    row = await conn.fetchrow(_FIND, _hash(session_id), now, idle)
    if row is None:
        return None
    person = person_of(row) if row["id"] is not None else None
    return WebSession(row["csrf_token"], row["expires_at"], person)


async def end(conn: asyncpg.Connection, session_id: str) -> str | None:
    """Ends the session; the ID token it was opened with, if any (for signing out at the
    identity provider)."""
    id_token: str | None = await conn.fetchval(
        "DELETE FROM web_sessions WHERE id_hash = $1 RETURNING id_token", _hash(session_id)
    )
    return id_token


async def purge(conn: asyncpg.Connection, now: datetime, idle: timedelta) -> int:
    """Delete the sessions that can no longer be used; how many."""
    status = await conn.execute(
        "DELETE FROM web_sessions WHERE expires_at <= $1 OR seen_at <= $1 - $2::interval",
        now,
        idle,
    )
    return int(status.rsplit(" ", 1)[-1])


async def people_by_role(conn: asyncpg.Connection, limit: int = 200) -> list[Person]:
    """People who hold a live API token, by role then name: whom the demo's development
    login offers (the demo gives each of its people a token)."""
    rows = await conn.fetch(
        """SELECT DISTINCT p.* FROM people p JOIN api_tokens t ON t.person_id = p.id
           WHERE t.expires_at IS NULL OR t.expires_at > now()
           ORDER BY p.role, p.name, p.id LIMIT $1""",
        limit,
    )
    return [person_of(r) for r in rows]
