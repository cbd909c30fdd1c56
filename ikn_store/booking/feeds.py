"""Secret calendar addresses (``booking_feeds``, migration 0044_booking_feeds): one per
person, a random secret of which only the SHA-256 is stored (as API tokens,
``ikn_store.tokens``). Replacing it revokes the old one in the same statement."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import asyncpg

SECRET_BYTES = 32


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def replace_feed(conn: asyncpg.Connection, person_id: str, now: datetime) -> str:
    """A new secret for ``person_id``'s feed; the one they had, if any, no longer works."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    await conn.execute(
        """INSERT INTO booking_feeds (person_id, secret_hash, created_at) VALUES ($1, $2, $3)
           ON CONFLICT (person_id)
           DO UPDATE SET secret_hash = EXCLUDED.secret_hash, created_at = EXCLUDED.created_at""",
        person_id,
        _hash(secret),
        now,
    )
    return secret


async def feed_created(conn: asyncpg.Connection, person_id: str) -> datetime | None:
    """When ``person_id``'s present feed address was made (None: they have none)."""
    found: datetime | None = await conn.fetchval(
        "SELECT created_at FROM booking_feeds WHERE person_id = $1", person_id
    )
    return found


async def feed_owner(conn: asyncpg.Connection, secret: str) -> str | None:
    """The person whose feed ``secret`` opens (None: unknown or replaced). One lookup of
    the hash by its unique index: nothing compares the secret itself."""
    owner: str | None = await conn.fetchval(
        "SELECT person_id FROM booking_feeds WHERE secret_hash = $1", _hash(secret)
    )
    return owner
