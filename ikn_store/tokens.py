"""API bearer tokens: random secrets shown once; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class TokenOwner:
    name: str
    role: str


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_token(conn: asyncpg.Connection, name: str, role: str) -> str:
    token = "ikn_" + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO api_tokens (token_hash, name, role) VALUES ($1, $2, $3)",
        _hash(token),
        name,
        role,
    )
    return token


async def token_owner(conn: asyncpg.Connection, token: str) -> TokenOwner | None:
    row = await conn.fetchrow(
        """SELECT name, role FROM api_tokens
           WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > now())""",
        _hash(token),
    )
    return TokenOwner(row["name"], row["role"]) if row else None
