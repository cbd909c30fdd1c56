"""Display tokens (issue 19): what a lobby kiosk or a desk display signs in with. A
random secret shown once; only its SHA-256 is stored (``display_tokens``, migration
0052), with its unique name and the one building it is bound to. Revoking deletes it.
A display token is not an API token: the API's bearer check never finds it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ikn_core.access import TokenError
from ikn_store.people import USE_GRAIN

PREFIX = "iknd_"  # a display token, told apart from an API token (ikn_) at a glance


@dataclass(frozen=True, slots=True)
class Display:
    """A display's token, never the token or its hash."""

    name: str
    building_id: str
    created_at: datetime
    last_used_at: datetime | None  # to within USE_GRAIN


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_display_token(conn: asyncpg.Connection, name: str, building_id: str) -> str:
    """A new token named ``name`` (unique) for the displays of ``building_id``."""
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        await conn.execute(
            "INSERT INTO display_tokens (token_hash, name, building_id) VALUES ($1, $2, $3)",
            _hash(token),
            name,
            building_id,
        )
    except asyncpg.UniqueViolationError as exc:
        raise TokenError("name-taken", f"a display named {name!r} exists; choose another") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise TokenError("unknown-building", f"no building {building_id!r}") from exc
    except asyncpg.CheckViolationError as exc:
        raise TokenError("bad-name", "a display's name has 1 to 100 characters") from exc
    return token


async def display_of(conn: asyncpg.Connection, token: str) -> Display | None:
    """The display ``token`` signs in (None: no such token, or revoked), noting its use."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    row = await conn.fetchrow(
        f"""WITH found AS (SELECT * FROM display_tokens WHERE token_hash = $1),
                 used AS (UPDATE display_tokens t SET last_used_at = now() FROM found f
                          WHERE t.token_hash = f.token_hash
                            AND (t.last_used_at IS NULL
                                 OR t.last_used_at < now() - interval '{USE_GRAIN}'))
            SELECT name, building_id, created_at, last_used_at FROM found""",
        _hash(token),
    )
    return Display(**dict(row)) if row else None


async def list_displays(conn: asyncpg.Connection) -> list[Display]:
    rows = await conn.fetch(
        "SELECT name, building_id, created_at, last_used_at FROM display_tokens ORDER BY name"
    )
    return [Display(**dict(r)) for r in rows]


async def revoke_display_token(conn: asyncpg.Connection, name: str) -> None:
    """Deletes the display token named ``name``: its display is refused at its next
    request (an open stream at its next re-check)."""
    gone = await conn.fetchval("DELETE FROM display_tokens WHERE name = $1 RETURNING name", name)
    if gone is None:
        raise TokenError("unknown-token", f"no display named {name!r} (ikn display list)")
