"""``ikn token create --person P``: a newcomer's token in one command, that books; token
names are unique (api_tokens_name_unique), with a clear error on a duplicate. Tokens expire
(90 days for a person's by default), can be listed, revoked and linked from the CLI, and
a token's role is its person's current role (issue 16)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
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


async def _migrate_before(conn: asyncpg.Connection, version: int, tmp_path: Path) -> None:
    """Applies the migrations before ``version`` only (copied to ``tmp_path``)."""
    for migration in discover():
        if migration.version < version:
            name = f"{migration.version:04d}_{migration.name}.sql"
            shutil.copy(MIGRATIONS_DIR / name, tmp_path)
    await migrate(conn, tmp_path)


async def test_names_given_twice_before_0022_are_numbered(
    empty_database_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        await _migrate_before(conn, 22, tmp_path)
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


# -- expiry, list, revoke, link, the person's current role (issue 16) -------------------

DEAD_LETTERS = "/api/v1/dead-letters"  # facility managers and admins only


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _sql(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def _created(world: World, *args: str) -> str:
    code, out, err = await _ikn(world.url, "token", "create", *args)
    assert code == 0, err
    return out.strip()


def _about(moment: datetime, expected: datetime) -> bool:
    return abs(moment - expected) < timedelta(minutes=5)


async def test_a_persons_token_expires_in_90_days_by_default_and_days_says_otherwise(
    world: World,
) -> None:
    await _created(world, "--person", "budi")
    await _created(world, "--person", "ani", "--days", "7")
    await _created(world, "--name", "ops", "--role", "admin")  # a service: no expiry
    await _created(world, "--name", "bot", "--role", "employee", "--days", "30")
    rows = await _sql(world.url, "SELECT name, expires_at FROM api_tokens")
    expires = {r["name"]: r["expires_at"] for r in rows}
    now = datetime.now(UTC)
    assert _about(expires["budi"], now + timedelta(days=90))
    assert _about(expires["ani"], now + timedelta(days=7))
    assert expires["ops"] is None
    assert _about(expires["bot"], now + timedelta(days=30))


async def test_token_days_setting_changes_the_default(world: World) -> None:
    env = {**os.environ, "IKN_DATABASE_URL": world.url, "IKN_TOKEN_DAYS": "14"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ikn", "token", "create", "--person", "budi", env=env
    )
    assert await asyncio.wait_for(proc.wait(), timeout=60) == 0
    (row,) = await _sql(world.url, "SELECT expires_at FROM api_tokens WHERE name = 'budi'")
    assert _about(row["expires_at"], datetime.now(UTC) + timedelta(days=14))


async def test_an_expired_token_is_401_saying_it_expired(world: World) -> None:
    token = await _created(world, "--person", "budi", "--days", "1")
    assert (await world.client.get("/api/v1/bookings", headers=_bearer(token))).status == 200
    await _sql(
        world.url, "UPDATE api_tokens SET expires_at = now() - interval '1 s' WHERE name = 'budi'"
    )
    answer = await world.client.get("/api/v1/bookings", headers=_bearer(token))
    assert answer.status == 401
    assert answer.content_type == "application/problem+json"
    body = await answer.json()
    assert body["type"].endswith("/unauthenticated")
    assert body["title"] == "The bearer token expired"  # not "unknown or expired"


async def test_list_shows_each_token_but_never_the_token_or_its_hash(world: World) -> None:
    token = await _created(world, "--person", "budi")
    await _created(world, "--name", "ops", "--role", "admin")
    assert (await world.client.get("/api/v1/bookings", headers=_bearer(token))).status == 200
    code, out, err = await _ikn(world.url, "token", "list")
    assert code == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == ["name", "person", "role", "created", "expires", "last used"]
    by_name = {line[0]: line for line in lines[1:]}
    assert by_name["budi"][1:3] == ["budi", "employee"]
    assert by_name["budi"][5] != "never"  # used just now
    assert by_name["ops"][1:3] == ["-", "admin"]
    assert by_name["ops"][4:] == ["never", "never"]
    (hashed,) = await _sql(world.url, "SELECT token_hash FROM api_tokens WHERE name = 'budi'")
    assert token not in out
    assert bytes(hashed["token_hash"]).hex() not in out


async def test_a_revoked_token_stops_at_once(world: World) -> None:
    token = await _created(world, "--person", "budi")
    assert (await world.client.get("/api/v1/bookings", headers=_bearer(token))).status == 200
    code, out, err = await _ikn(world.url, "token", "revoke", "budi")
    assert (code, out.strip()) == (0, "revoked token 'budi'"), err
    assert (await world.client.get("/api/v1/bookings", headers=_bearer(token))).status == 401
    code, out, err = await _ikn(world.url, "token", "revoke", "budi")
    assert (code, out) == (1, "")
    assert "no token named 'budi'" in err
    assert "Traceback" not in err


async def test_link_makes_a_token_act_for_a_person_with_their_role(world: World) -> None:
    token = await _created(world, "--name", "kiosk", "--role", "employee", "--days", "1")
    assert (await world.client.get(DEAD_LETTERS, headers=_bearer(token))).status == 403
    code, _, err = await _ikn(world.url, "token", "link", "kiosk", "--person", "fajar")
    assert code == 0, err
    assert (await world.client.get(DEAD_LETTERS, headers=_bearer(token))).status == 200
    mine = await world.client.get("/api/v1/bookings", headers=_bearer(token))
    assert mine.status == 200
    for args, message in (
        (("nothing", "--person", "fajar"), "no token named 'nothing'"),
        (("kiosk", "--person", "nobody"), "no person 'nobody'"),
    ):
        code, out, err = await _ikn(world.url, "token", "link", *args)
        assert (code, out) == (1, "")
        assert message in err
        assert "Traceback" not in err


async def test_a_demoted_person_loses_the_role_at_once(world: World) -> None:
    token = await _created(world, "--person", "fajar")
    assert (await world.client.get(DEAD_LETTERS, headers=_bearer(token))).status == 200
    await _sql(world.url, "UPDATE people SET role = 'employee' WHERE id = 'fajar'")
    assert (await world.client.get(DEAD_LETTERS, headers=_bearer(token))).status == 403
    # the fixture's token made with a role column that says facility_manager, too
    await _sql(world.url, "UPDATE people SET role = 'facility_manager' WHERE id = 'budi'")
    answer = await world.client.get(DEAD_LETTERS, headers=world.headers["budi"])
    assert answer.status == 200


async def test_a_persons_token_takes_no_role_of_its_own(world: World) -> None:
    code, out, err = await _ikn(world.url, "token", "create", "--person", "budi", "--role", "admin")
    assert (code, out) == (1, "")
    assert "a person's token has the person's role" in err


async def test_0028_gives_a_persons_token_without_expiry_one_in_90_days(
    empty_database_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        await _migrate_before(conn, 28, tmp_path)
        await conn.execute(
            "INSERT INTO people (id, name, agency, unit, role) VALUES ('budi', 'Budi', 'a', 'u',"
            " 'employee')"
        )
        await conn.execute(
            "INSERT INTO api_tokens (token_hash, name, role, person_id) VALUES"
            " ($1, 'budi', 'employee', 'budi'), ($2, 'ops', 'admin', NULL)",
            b"b" * 32,
            b"o" * 32,
        )
        await migrate(conn)
        rows = await conn.fetch("SELECT name, expires_at, last_used_at FROM api_tokens")
    finally:
        await conn.close()
    by_name = {r["name"]: r for r in rows}
    assert _about(by_name["budi"]["expires_at"], datetime.now(UTC) + timedelta(days=90))
    assert by_name["ops"]["expires_at"] is None  # a service token keeps no expiry
    assert by_name["budi"]["last_used_at"] is None
