"""Floors' plan drawings (``floor_plans``, migration 0054) and the desks the floor-plan
editor changes, in PostgreSQL."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ikn_core.floor_plans import DeskChange, PlanImage


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """A floor's plan without its bytes: what a page needs to draw it."""

    floor_id: str
    content_type: str
    width: float
    height: float
    sha256: str
    uploaded_at: datetime


async def put_plan(conn: asyncpg.Connection, floor_id: str, plan: PlanImage) -> bool:
    """Store (or replace) the floor's plan; False when there is no such floor."""
    return bool(
        await conn.fetchval(
            """INSERT INTO floor_plans (floor_id, content_type, image, width, height, sha256)
               SELECT id, $2, $3, $4, $5, $6 FROM floors WHERE id = $1
               ON CONFLICT (floor_id) DO UPDATE SET content_type = EXCLUDED.content_type,
                   image = EXCLUDED.image, width = EXCLUDED.width, height = EXCLUDED.height,
                   sha256 = EXCLUDED.sha256, uploaded_at = now()
               RETURNING true""",
            floor_id,
            plan.content_type,
            plan.data,
            plan.width,
            plan.height,
            hashlib.sha256(plan.data).hexdigest(),
        )
    )


async def plan_of(conn: asyncpg.Connection, floor_id: str) -> StoredPlan | None:
    row = await conn.fetchrow(
        """SELECT floor_id, content_type, width, height, sha256, uploaded_at
           FROM floor_plans WHERE floor_id = $1""",
        floor_id,
    )
    return StoredPlan(**dict(row)) if row is not None else None


async def plan_image(conn: asyncpg.Connection, floor_id: str) -> tuple[str, bytes, str] | None:
    """The plan's type, bytes and SHA-256 (None: the floor has none)."""
    row = await conn.fetchrow(
        "SELECT content_type, image, sha256 FROM floor_plans WHERE floor_id = $1", floor_id
    )
    return (row["content_type"], row["image"], row["sha256"]) if row is not None else None


@dataclass(frozen=True, slots=True)
class EditorDesk:
    """A desk as the editor shows it: where, what it has, its state and assignment
    (never who is at it or has booked it)."""

    desk_id: str
    name: str
    zone_id: str
    x: float
    y: float
    equipment: tuple[str, ...]
    disabled: bool
    assigned_to: str | None


async def floor_desks(conn: asyncpg.Connection, floor_id: str) -> list[EditorDesk]:
    rows = await conn.fetch(
        """SELECT d.id AS desk_id, d.name, d.zone_id, d.x, d.y, d.equipment, d.disabled,
                  d.assigned_to
           FROM desks d JOIN zones z ON z.id = d.zone_id
           WHERE z.floor_id = $1 ORDER BY d.zone_id, d.id""",
        floor_id,
    )
    return [EditorDesk(**{**dict(r), "equipment": tuple(sorted(r["equipment"]))}) for r in rows]


async def desk_floor(conn: asyncpg.Connection, desk_id: str) -> str | None:
    """The floor the desk is on (None: no such desk)."""
    found: str | None = await conn.fetchval(
        "SELECT z.floor_id FROM desks d JOIN zones z ON z.id = d.zone_id WHERE d.id = $1",
        desk_id,
    )
    return found


async def person_exists(conn: asyncpg.Connection, person_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM people WHERE id = $1", person_id))


async def set_desk(conn: asyncpg.Connection, change: DeskChange) -> None:
    await conn.execute(
        """UPDATE desks SET x = $2, y = $3, equipment = $4, disabled = $5, assigned_to = $6
           WHERE id = $1""",
        change.desk_id,
        change.x,
        change.y,
        list(change.equipment),
        change.disabled,
        change.assigned_to,
    )
