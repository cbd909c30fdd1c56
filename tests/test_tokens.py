"""``ikn token create --person P``: a newcomer's token in one command, that books; token
names are unique (migration 0022), with a clear error on a duplicate."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from ikn_store.migrations import MIGRATIONS_DIR, discover, migrate
from tests.test_booking_api import World, open_world, tomorrow


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with open_world(database_url) as opened:
        yield opened


async def _ikn(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "IKN_DATABASE_URL": database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ikn",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_token_for_a_person_is_one_command_and_books(world: World) -> None:
    code, out, err = await _ikn(world.url, "token", "create", "--person", "budi")
    assert code == 0, err
    token = out.strip()
    assert token.startswith("ikn_")
    start = tomorrow(9)
    body = {
        "desk": "d2",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
    }
    booked = await world.client.post(
        "/api/v1/bookings", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert booked.status == 201, await booked.text()
    assert (await booked.json())["person"] == "budi"

    # A second token for the same person gets the next free name; its role is the person's.
    code, _, err = await _ikn(world.url, "token", "create", "--person", "budi")
    assert code == 0, err
    conn = await asyncpg.connect(world.url)
    try:
        rows = await conn.fetch(
            "SELECT name, role FROM api_tokens WHERE person_id = 'budi' ORDER BY created_at"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [
        ("Budi", "employee"),  # made by the test's world
        ("budi", "employee"),
        ("budi (2)", "employee"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--name", "budi (2)", "--role", "admin"), "a token named 'budi (2)' exists"),
        (("--name", "Budi", "--person", "budi"), "a token named 'Budi' exists"),
        (("--person", "nobody"), "no person 'nobody'"),
        (("--name", "svc"), "give --person P, or --name and --role"),
    ],
)
async def test_a_duplicate_name_or_unknown_person_is_a_clear_error(
    world: World, args: tuple[str, ...], message: str
) -> None:
    assert (await _ikn(world.url, "token", "create", "--person", "budi"))[0] == 0
    assert (await _ikn(world.url, "token", "create", "--person", "budi"))[0] == 0
    code, out, err = await _ikn(world.url, "token", "create", *args)
    assert code == 1
    assert out == ""
    assert message in err
    assert "Traceback" not in err


async def test_names_given_twice_before_0022_are_numbered(
    empty_database_url: str, tmp_path: Path
) -> None:
    for migration in discover():
        if migration.version < 22:
            name = f"{migration.version:04d}_{migration.name}.sql"
            shutil.copy(MIGRATIONS_DIR / name, tmp_path)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, tmp_path)
        for n in range(3):
            await conn.execute(
                "INSERT INTO api_tokens (token_hash, name, role, created_at)"
                " VALUES ($1, 'ops', 'admin', now() + $2 * interval '1 s')",
                bytes([n]) * 32,
                n,
            )
        await migrate(conn)
        names = await conn.fetch("SELECT name FROM api_tokens ORDER BY created_at")
        assert [r["name"] for r in names] == ["ops", "ops (2)", "ops (3)"]
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO api_tokens (token_hash, name, role) VALUES ($1, 'ops', 'admin')",
                b"x" * 32,
            )
    finally:
        await conn.close()
