"""Use cases of the spaces and people: importing a file (``ikn import`` and the
console's import page, docs/import.md), a floor's plan drawing and the desks placed on
it (the console's floor-plan editor, docs/web.md)."""

from __future__ import annotations

from typing import Literal

import asyncpg

from ikn_core.floor_plans import DeskChange, PlanImage, PlanRefused, check_plan
from ikn_store import floor_plans as store
from ikn_store.io import Written, import_people, import_spaces

What = Literal["spaces", "people"]
FORMATS = ("csv", "json")


async def import_file(conn: asyncpg.Connection, what: What, text: str, fmt: str) -> list[Written]:
    """Check the whole file, then write it in one transaction; ``ImportRejectedError``
    with every problem (its line or path, its field) and nothing written, when any."""
    load = import_spaces if what == "spaces" else import_people
    return await load(conn, text, fmt)


async def upload_plan(conn: asyncpg.Connection, floor_id: str, data: bytes) -> PlanImage:
    """Check ``data`` (``PlanRefused``: field ``file``) and store it as the floor's plan
    (``PlanRefused`` field ``floor``: no such floor)."""
    plan = check_plan(data)
    if not await store.put_plan(conn, floor_id, plan):
        raise PlanRefused("floor", "unknown-floor", f"no floor {floor_id!r}")
    return plan


async def change_desk(conn: asyncpg.Connection, floor_id: str, change: DeskChange) -> None:
    """Set a desk of ``floor_id`` as ``change`` says (``PlanRefused``: no such desk on
    the floor, or no such person to assign it to)."""
    async with conn.transaction():
        if await store.desk_floor(conn, change.desk_id) != floor_id:
            raise PlanRefused("desk", "unknown-desk", f"no desk {change.desk_id!r} on this floor")
        if change.assigned_to is not None and not await store.person_exists(
            conn, change.assigned_to
        ):
            raise PlanRefused("assigned_to", "unknown-person", f"no person {change.assigned_to!r}")
        await store.set_desk(conn, change)
