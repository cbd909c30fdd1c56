"""API bearer tokens: random secrets shown once; only their SHA-256 is stored.
Each token has a unique name, and may act for a person (``person_id``)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

from ikn_store.errors import StoreError


class TokenError(StoreError):
    """A token cannot be created: ``kind`` is ``name-taken`` or ``unknown-person``."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TokenOwner:
    name: str
    role: str


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_token(
    conn: asyncpg.Connection, name: str, role: str, person_id: str | None = None
) -> str:
    """A new token named ``name`` (unique), acting for ``person_id`` when given."""
    token = "ikn_" + secrets.token_urlsafe(32)
    try:
        await conn.execute(
            "INSERT INTO api_tokens (token_hash, name, role, person_id) VALUES ($1, $2, $3, $4)",
            _hash(token),
            name,
            role,
            person_id,
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
