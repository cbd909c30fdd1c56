"""People (staff) and the link from an API token to the person who holds it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ikn_core.domain import Role


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    agency: str
    unit: str
    role: Role
    home_building_id: str | None = None


def person_of(row: asyncpg.Record) -> Person:
    return Person(
        row["id"],
        row["name"],
        row["agency"],
        row["unit"],
        Role(row["role"]),
        row["home_building_id"],
    )


async def upsert_people(conn: asyncpg.Connection, people: list[Person]) -> None:
    await conn.executemany(
        """INSERT INTO people (id, name, agency, unit, role, home_building_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, agency = EXCLUDED.agency,
               unit = EXCLUDED.unit, role = EXCLUDED.role,
               home_building_id = EXCLUDED.home_building_id""",
        [(p.id, p.name, p.agency, p.unit, str(p.role), p.home_building_id) for p in people],
    )


async def get_person(conn: asyncpg.Connection, person_id: str) -> Person | None:
    row = await conn.fetchrow("SELECT * FROM people WHERE id = $1", person_id)
    return person_of(row) if row else None


async def unit_people(conn: asyncpg.Connection, agency: str, unit: str) -> list[Person]:
    """The people of ``agency``'s ``unit``, by id."""
    rows = await conn.fetch(
        "SELECT * FROM people WHERE agency = $1 AND unit = $2 ORDER BY id", agency, unit
    )
    return [person_of(r) for r in rows]


async def link_token(conn: asyncpg.Connection, token: str, person_id: str) -> None:
    """Make ``token`` act for ``person_id``."""
    await conn.execute(
        "UPDATE api_tokens SET person_id = $2 WHERE token_hash = $1",
        hashlib.sha256(token.encode()).digest(),
        person_id,
    )


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """Who a known token speaks for: its name and role (the person's current role for a
    token linked to a person), the person, and when it expired (None: it has not)."""

    name: str
    role: str
    person: Person | None
    expired_at: datetime | None = None


async def prepare_token_lookup(conn: asyncpg.Connection) -> None:
    """Prepares the token lookup on this connection (an empty lookup)."""
    await token_holders(conn, [])


# One statement for many tokens: the holders, and a note of their use. ``last_used_at``
# is written at most every USE_GRAIN per token, so the lookup writes next to nothing.
USE_GRAIN = "5 minutes"
_TOKEN_HOLDERS = f"""
WITH found AS (
    SELECT t.token_hash, t.name AS token_name, t.role AS token_role,
           CASE WHEN t.expires_at <= now() THEN t.expires_at END AS expired_at, p.*
    FROM api_tokens t LEFT JOIN people p ON p.id = t.person_id
    WHERE t.token_hash = ANY($1::bytea[])
), used AS (
    UPDATE api_tokens t SET last_used_at = now()
    FROM found f
    WHERE t.token_hash = f.token_hash AND f.expired_at IS NULL
      AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '{USE_GRAIN}')
)
SELECT * FROM found"""


async def token_holders(
    conn: asyncpg.Connection, tokens: Sequence[str]
) -> list[TokenHolder | None]:
    """Each token's holder, in one query for many tokens (the API's concurrent
    requests); None for an unknown token, ``expired_at`` set for an expired one."""
    hashes = [hashlib.sha256(t.encode()).digest() for t in tokens]
    rows = await conn.fetch(_TOKEN_HOLDERS, hashes)
    holders = {bytes(r["token_hash"]): _holder(r) for r in rows}
    return [holders.get(h) for h in hashes]


def _holder(row: asyncpg.Record) -> TokenHolder:
    person = person_of(row) if row["id"] is not None else None
    role = str(person.role) if person is not None else row["token_role"]
    return TokenHolder(row["token_name"], role, person, row["expired_at"])


async def token_person(conn: asyncpg.Connection, token: str) -> Person | None:
    """The person a live token acts for; None for a token of no one (a service token)."""
    row = await conn.fetchrow(
        """SELECT p.* FROM api_tokens t JOIN people p ON p.id = t.person_id
           WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > now())""",
        hashlib.sha256(token.encode()).digest(),
    )
    return person_of(row) if row else None


async def colleagues(conn: asyncpg.Connection, me: Person) -> list[Person]:
    """The other people of ``me``'s agency and unit, by name: whom a delegate books for."""
    rows = await conn.fetch(
        "SELECT * FROM people WHERE agency = $1 AND unit = $2 AND id <> $3 ORDER BY name, id",
        me.agency,
        me.unit,
        me.id,
    )
    return [person_of(r) for r in rows]
