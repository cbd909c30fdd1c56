"""Commands sent to devices (table ``device_commands``) and their results.

Refusals raise ``ikn_core.fleet.CommandError``.

A command is stored before it is published, so its result can never arrive for a
command the platform does not know. Its status is read, not kept: ``succeeded`` or
``failed`` once the device answered (the trigger on ``readings``), else ``expired``
past ``expires_at``, else ``pending``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import orjson

from ikn_core.fleet import CommandError

CommandStatus = Literal["pending", "succeeded", "failed", "expired"]


@dataclass(frozen=True, slots=True)
class NewCommand:
    id: str
    device_id: str
    cmd: str
    payload: dict[str, Any]
    issued_by: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CommandView(NewCommand):
    """A command as stored, with what became of it."""

    status: CommandStatus
    detail: str | None
    answered_at: datetime | None


async def add_command(conn: asyncpg.Connection, command: NewCommand) -> None:
    """Store ``command`` for an enabled device, before it is published."""
    enabled = await conn.fetchval("SELECT enabled FROM devices WHERE id = $1", command.device_id)
    if enabled is None:
        raise CommandError("unknown-device", f"no device {command.device_id}")
    if not enabled:
        raise CommandError("disabled", f"device {command.device_id} is disabled")
    try:
        await conn.execute(
            """INSERT INTO device_commands
               (id, device_id, cmd, payload, issued_by, issued_at, expires_at)
               VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)""",
            command.id,
            command.device_id,
            command.cmd,
            orjson.dumps(command.payload).decode(),
            command.issued_by,
            command.issued_at,
            command.expires_at,
        )
    except asyncpg.UniqueViolationError as exc:
        raise CommandError("exists", f"command {command.id} exists") from exc


_SELECT = """
SELECT id, device_id, cmd, payload, issued_by, issued_at, expires_at, detail, answered_at,
       CASE WHEN ok THEN 'succeeded' WHEN NOT ok THEN 'failed'
            WHEN expires_at < $2 THEN 'expired' ELSE 'pending' END AS status
FROM device_commands
"""


def _view(row: asyncpg.Record) -> CommandView:
    values = dict(row)
    raw = values["payload"]
    values["payload"] = orjson.loads(raw) if isinstance(raw, str) else raw
    return CommandView(**values)


async def device_known(conn: asyncpg.Connection, device_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM devices WHERE id = $1", device_id))


async def list_commands(
    conn: asyncpg.Connection, device_id: str, now: datetime, limit: int = 100
) -> list[CommandView]:
    """The device's newest commands first, with their status at ``now``."""
    rows = await conn.fetch(
        _SELECT + "WHERE device_id = $1 ORDER BY issued_at DESC, id LIMIT $3",
        device_id,
        now,
        limit,
    )
    return [_view(r) for r in rows]


async def get_command(
    conn: asyncpg.Connection, command_id: str, now: datetime
) -> CommandView | None:
    row = await conn.fetchrow(_SELECT + "WHERE id = $1", command_id, now)
    return None if row is None else _view(row)


async def fail_command(conn: asyncpg.Connection, command_id: str, detail: str) -> None:
    """Mark a command failed by the platform itself (it could not be published)."""
    await conn.execute(
        "UPDATE device_commands SET ok = false, detail = $2 WHERE id = $1 AND ok IS NULL",
        command_id,
        detail,
    )
