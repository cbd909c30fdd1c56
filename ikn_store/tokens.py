"""API bearer tokens: random secrets shown once; only their SHA-256 is stored.
Each token has a unique name, may act for a person (``person_id``), and may expire
(``expires_at``); revoking a token deletes it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ikn_core.access import TokenError


@dataclass(frozen=True, slots=True)
class TokenOwner:
    name: str
    role: str


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What ``ikn token list`` shows of a token: never the token or its hash."""

    name: str
    person_id: str | None
    role: str  # the person's current role for a token of a person
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None  # to within a few minutes (ikn_store.people)


async def create_token(
    conn: asyncpg.Connection,
    name: str,
    role: str,
    person_id: str | None = None,
    *,
    days: int | None = None,
) -> str:
    """A new token named ``name`` (unique), acting for ``person_id`` when given, expiring
    ``days`` days from now (None: never)."""
    token = "ikn_" + secrets.token_urlsafe(32)
    try:
        await conn.execute(
            """INSERT INTO api_tokens (token_hash, name, role, person_id, expires_at)
               VALUES ($1, $2, $3, $4, now() + $5::int * interval '1 day')""",
            _hash(token),
            name,
            role,
            person_id,
            days,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "api_tokens_name_unique":
            raise
        taken = f"a token named {name!r} exists; choose another name"
        raise TokenError("name-taken", taken) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise TokenError("unknown-person", f"no person {person_id!r}") from exc
    return token


async def free_name(conn: asyncpg.Connection, base: str) -> str:
    """``base`` if no token has that name, else the first free of ``base (2)``, ``(3)``..."""
    rows = await conn.fetch(
        "SELECT name FROM api_tokens WHERE name = $1 OR starts_with(name, $1 || ' (')", base
    )
    taken = {r["name"] for r in rows}
    return next(
        n for n in (base, *(f"{base} ({k})" for k in range(2, len(taken) + 2))) if n not in taken
    )


async def token_owner(conn: asyncpg.Connection, token: str) -> TokenOwner | None:
    row = await conn.fetchrow(
        """SELECT name, role FROM api_tokens
           WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > now())""",
        _hash(token),
    )
    return TokenOwner(row["name"], row["role"]) if row else None


async def list_tokens(conn: asyncpg.Connection) -> list[TokenInfo]:
    rows = await conn.fetch(
        """SELECT t.name, t.person_id, coalesce(p.role, t.role) AS role, t.created_at,
                  t.expires_at, t.last_used_at
           FROM api_tokens t LEFT JOIN people p ON p.id = t.person_id
           ORDER BY t.name"""
    )
    return [TokenInfo(**dict(r)) for r in rows]


async def revoke_token(conn: asyncpg.Connection, name: str) -> None:
    """Deletes the token named ``name``: it stops working at once (an open event stream
    at its next re-check)."""
    if await conn.fetchval("DELETE FROM api_tokens WHERE name = $1 RETURNING name", name) is None:
        raise TokenError("unknown-token", f"no token named {name!r} (ikn token list)")


async def link_named_token(conn: asyncpg.Connection, name: str, person_id: str) -> None:
    """Makes the token named ``name`` act for ``person_id``, with that person's role."""
    try:
        linked = await conn.fetchval(
            "UPDATE api_tokens SET person_id = $2 WHERE name = $1 RETURNING name",
            name,
            person_id,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise TokenError("unknown-person", f"no person {person_id!r}") from exc
    if linked is None:
        raise TokenError("unknown-token", f"no token named {name!r} (ikn token list)")
