"""Fleet use cases: send a command to a device, and change a device (move it, enable
or disable it) in one transaction; a device's state as the fleet views show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg

from ikn_core.contract import DownCommand, down_topic, encode_down
from ikn_core.fleet import CommandNotPublished
from ikn_store.fleet.commands import CommandView, NewCommand, add_command, fail_command, get_command
from ikn_store.fleet.devices import DeviceView, move_device, set_enabled

NOT_PUBLISHED = "not published: the broker is unavailable"


class Publisher(Protocol):
    """The MQTT side of sending: publish with QoS 1, True once the broker took it."""

    async def publish(self, topic: str, payload: bytes) -> bool: ...


async def send_command(
    pool: asyncpg.Pool, publisher: Publisher, new: NewCommand, command: DownCommand
) -> CommandView:
    """Store the command, then publish it to the device's ``down`` topic; one the
    broker did not take is marked failed (``CommandNotPublished``). No connection is
    held while publishing."""
    async with pool.acquire() as conn:
        await add_command(conn, new)
    if not await publisher.publish(down_topic(new.device_id), encode_down(command)):
        async with pool.acquire() as conn:
            await fail_command(conn, new.id, NOT_PUBLISHED)
        raise CommandNotPublished(NOT_PUBLISHED)
    async with pool.acquire() as conn:
        view = await get_command(conn, new.id, new.issued_at)
    assert view is not None  # stored above
    return view


async def issue(
    pool: asyncpg.Pool,
    publisher: Publisher,
    device_id: str,
    command: DownCommand,
    *,
    issued_by: str,
    now: datetime,
    ttl: timedelta,
) -> CommandView:
    """Send ``command`` to ``device_id`` for ``issued_by``, expiring ``ttl`` after ``now``
    (``send_command``; the API's POST and the fleet page both come here)."""
    new = NewCommand(
        command.id, device_id, command.cmd, command.to_dict(), issued_by, now, now + ttl
    )
    return await send_command(pool, publisher, new, command)


def device_state(device: DeviceView) -> str:
    """``disabled``, ``unknown`` (no status yet), ``online`` or ``offline``: what the
    device's retained status (and its Will) last said."""
    if not device.enabled:
        return "disabled"
    if device.online is None:
        return "unknown"
    return "online" if device.online else "offline"


@dataclass(frozen=True, slots=True)
class ChangeDevice:
    """Move ``device_id`` to ``building`` (and ``zone``, ``desk``) when a building is
    given; set ``enabled`` when given."""

    device_id: str
    building: str | None = None
    zone: str | None = None
    desk: str | None = None
    enabled: bool | None = None


async def change_device(conn: asyncpg.Connection, cmd: ChangeDevice) -> None:
    """Both changes or neither (``DeviceError`` names the field refused)."""
    async with conn.transaction():
        if cmd.building is not None:
            await move_device(conn, cmd.device_id, cmd.building, cmd.zone, cmd.desk)
        if cmd.enabled is not None:
            await set_enabled(conn, cmd.device_id, cmd.enabled)
