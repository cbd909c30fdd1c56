"""Reading the dead letters back: newest first, filtered, with counts per reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes


async def list_dead_letters(
    conn: asyncpg.Connection,
    *,
    reason: str | None,
    device: str | None,
    before: int | None,
    limit: int,
) -> list[StoredDeadLetter]:
    rows = await conn.fetch(
        """SELECT id, received_at, topic, device_id, reason, detail, payload FROM dead_letters
           WHERE ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR device_id = $2)
             AND ($3::bigint IS NULL OR id < $3)
           ORDER BY id DESC LIMIT $4""",
        reason,
        device,
        before,
        limit,
    )
    return [StoredDeadLetter(**{**dict(r), "payload": bytes(r["payload"])}) for r in rows]


async def count_by_reason(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT reason, count(*) FROM dead_letters GROUP BY reason")
    return {r[0]: int(r[1]) for r in rows}
