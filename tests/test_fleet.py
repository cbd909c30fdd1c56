"""The device fleet: registration with credentials shown once, health and alerts,
disabling, and the broker files (hashes Mosquitto's own tools agree with)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn.broker_config import Account, acl_file, password_file, write_config
from ikn_store.fleet.broker_auth import (
    ServiceAccount,
    ServiceRole,
    broker_users,
    mosquitto_hash,
    verify,
)
from tests.helpers import api_settings, bearer, fetch, ikn_command, seed

Client = TestClient[web.Request, web.Application]
PROBLEM = "application/problem+json"


def test_hashes_are_mosquittos_own() -> None:
    hashed = mosquitto_hash("s3cret")
    assert verify("s3cret", hashed)
    assert not verify("s3cret!", hashed)
    assert not verify("s3cret", "$6$nonsense")


def test_a_hash_from_mosquitto_passwd_verifies(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "u", "pw-1"], check=True)
    _, hashed = path.read_text().strip().split(":", 1)
    assert verify("pw-1", hashed)
    assert not verify("pw-2", hashed)


def test_the_acl_confines_devices_and_lists_services() -> None:
    accounts = [Account("svc.ingest", "$7$1$a$b", "ingest"), Account("dev-1", "$7$1$c$d")]
    assert password_file(accounts) == "svc.ingest:$7$1$a$b\ndev-1:$7$1$c$d\n"
    acl = acl_file(accounts)
    assert "user dev-1" not in acl  # devices are covered by the patterns alone
    assert acl.endswith(
        "pattern write ikn/v1/dev/%u/up\n"
        "pattern write ikn/v1/dev/%u/status\n"
        "pattern read ikn/v1/dev/%u/down\n"
    )
    with pytest.raises(ValueError, match="password file"):
        password_file([Account("a:b", "$7$1$a$b")])


def test_the_files_are_written_through_no_planted_link(tmp_path: Path) -> None:
    """Each file goes through a new temporary file of a unique name (O_EXCL), never
    through whatever waits under a predictable name (``.passwd.tmp`` was the old one)."""
    elsewhere = tmp_path / "readable-by-all"
    elsewhere.write_text("")
    elsewhere.chmod(0o644)
    out = tmp_path / "auth"
    out.mkdir()
    for name in ("passwd", "acl"):
        (out / f".{name}.tmp").symlink_to(elsewhere)
    accounts = [Account("svc.ingest", "$7$1$a$b", "ingest"), Account("dev-1", "$7$1$c$d")]
    passwd, acl = write_config(out, accounts)
    assert elsewhere.read_text() == ""  # nothing written through the links
    assert passwd.read_text() == password_file(accounts) and not passwd.is_symlink()
    assert acl.read_text() == acl_file(accounts) and not acl.is_symlink()
    assert {oct(p.stat().st_mode & 0o777) for p in (passwd, acl)} == {"0o600"}
    again = write_config(out, accounts[1:])  # replaced, and no temporary file left behind
    assert again[0].read_text() == "dev-1:$7$1$c$d\n"
    assert sorted(p.name for p in out.iterdir()) == [".acl.tmp", ".passwd.tmp", "acl", "passwd"]


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    await seed(database_url)
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with TestClient(TestServer(app)) as c:
        yield c


async def _headers(database_url: str, role: str) -> dict[str, str]:
    return await bearer(database_url, role, role)


NEW = {"id": "env-1", "kind": "environment", "building": "b1", "zone": "b1-f1-a"}


async def test_registering_returns_the_password_once_and_keeps_only_a_hash(
    client: Client, database_url: str
) -> None:
    admin = await _headers(database_url, "admin")
    response = await client.post("/api/v1/devices", json=NEW, headers=admin)
    assert response.status == 201
    body = await response.json()
    assert (body["id"], body["state"], body["mqtt"]["username"]) == ("env-1", "unknown", "env-1")
    password = body["mqtt"]["password"]
    (row,) = await fetch(database_url, "SELECT * FROM device_credentials")
    assert password not in str(dict(row))
    assert verify(password, row["password_hash"])
    listed = await (await client.get("/api/v1/devices", headers=admin)).json()
    assert "mqtt" not in orjson.dumps(listed).decode()
    again = await client.post("/api/v1/devices", json=NEW, headers=admin)
    assert again.status == 409
    assert (await again.json())["invalid_params"][0]["name"] == "id"


async def test_health_and_alerts(client: Client, database_url: str) -> None:
    now = datetime.now(UTC)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE devices SET expected_interval_s = 60")
        await conn.executemany(
            """INSERT INTO device_status (device_id, online, status, status_at, last_seen)
               VALUES ($1, $2, $3, $4, $4)""",
            [
                ("desk-d1", True, '{"fw": "1.2.0", "outbox": 3, "dropped": 1}', now),
                ("desk-d2", False, '{"state": "offline"}', now - timedelta(minutes=5)),
            ],
        )
    finally:
        await conn.close()
    fm = await _headers(database_url, "facility_manager")
    devices = {
        d["id"]: d
        for d in (await (await client.get("/api/v1/devices", headers=fm)).json())["devices"]
    }
    d1, d2, d3 = devices["desk-d1"], devices["desk-d2"], devices["desk-d3"]
    assert (d1["state"], d1["firmware"], d1["outbox"], d1["dropped"]) == ("online", "1.2.0", 3, 1)
    assert d1["alerts"] == ["no-credentials"]  # the seed registers no credentials
    assert (d2["state"], d2["alerts"]) == ("offline", ["offline", "no-credentials"])
    assert d2["silent_s"] >= 300
    assert (d3["state"], d3["alerts"]) == ("unknown", ["never-seen", "no-credentials"])
    alerting = await (await client.get("/api/v1/devices/alerts?building=b1", headers=fm)).json()
    assert [d["id"] for d in alerting["devices"]] == ["desk-d1", "desk-d2", "desk-d3"]


async def test_disabling_takes_a_device_out_of_the_broker_files(
    client: Client, database_url: str
) -> None:
    admin = await _headers(database_url, "admin")
    await client.post("/api/v1/devices", json=NEW, headers=admin)
    conn = await asyncpg.connect(database_url)
    try:
        assert [u.username for u in await broker_users(conn)] == ["env-1"]
        response = await client.patch(
            "/api/v1/devices/env-1", json={"enabled": False}, headers=admin
        )
        assert response.status == 200
        assert ((await response.json())["state"], (await response.json())["alerts"]) == (
            "disabled",
            [],
        )
        assert await broker_users(conn) == []
        from ikn_store.fleet.broker_auth import set_service_password

        await set_service_password(conn, ServiceAccount.of(ServiceRole.INGEST))
        assert [u.username for u in await broker_users(conn)] == ["svc.ingest"]
    finally:
        await conn.close()
    missing = await client.patch("/api/v1/devices/nope", json={"enabled": False}, headers=admin)
    assert missing.status == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"not json", 400, "body"),
        (b"[]", 400, "body"),
        (orjson.dumps({**NEW, "id": "a b"}), 400, "id"),
        (orjson.dumps({**NEW, "kind": "toaster"}), 400, "kind"),
        (orjson.dumps({**NEW, "building": None}), 400, "building"),
        (orjson.dumps({**NEW, "zone": 7}), 400, "zone"),
        (orjson.dumps({**NEW, "expected_interval_s": 1}), 400, "expected_interval_s"),
        (orjson.dumps({**NEW, "expected_interval_s": True}), 400, "expected_interval_s"),
        (orjson.dumps({**NEW, "colour": "red"}), 400, "colour"),
        (orjson.dumps({**NEW, "kind": "desk_sensor"}), 400, "desk"),
        (orjson.dumps({**NEW, "building": "b9"}), 422, "building"),
        (orjson.dumps({**NEW, "zone": "z9"}), 422, "zone"),
        (orjson.dumps({**NEW, "kind": "desk_sensor", "desk": "d3"}), 422, "desk"),  # other zone
        (orjson.dumps({**NEW, "kind": "desk_sensor", "desk": "d1"}), 409, "desk"),
    ],
)
async def test_bad_registrations_get_a_problem_naming_the_field(
    client: Client, database_url: str, body: bytes, status: int, field: str
) -> None:
    admin = await _headers(database_url, "admin")
    headers = {**admin, "Content-Type": "application/json"}
    response = await client.post("/api/v1/devices", data=body, headers=headers)
    assert response.status == status
    assert response.content_type == PROBLEM
    assert (await response.json())["invalid_params"][0]["name"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{}", "body"),
        (b'{"enabled": "no"}', "enabled"),
        (b'{"enabled": false, "x": 1}', "x"),
        (b'{"zone": "b1-f1-a"}', "building"),  # a move names the building
        (b'{"building": "b1", "desk": "no such"}', "desk"),
    ],
)
async def test_bad_changes_get_a_problem(
    client: Client, database_url: str, body: bytes, field: str
) -> None:
    admin = await _headers(database_url, "admin")
    headers = {**admin, "Content-Type": "application/json"}
    response = await client.patch("/api/v1/devices/desk-d1", data=body, headers=headers)
    assert response.status == 400
    assert (await response.json())["invalid_params"][0]["name"] == field


async def test_moving_a_sensor_to_another_desk_drops_its_old_desks_state(
    client: Client, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO desks (id, zone_id, name, x, y) VALUES ('d4', 'b1-f2-a', 'Meja 4', 2, 2)"
        )
        await conn.execute(
            """INSERT INTO desk_state (desk_id, device_id, occupied, since, reported_at, updated_at)
               VALUES ('d1', 'desk-d1', true, now(), now(), now())"""
        )
    finally:
        await conn.close()
    admin = await _headers(database_url, "admin")
    url = "/api/v1/devices/desk-d1"

    async def refused(body: dict[str, object]) -> tuple[int, str]:
        response = await client.patch(url, json=body, headers=admin)
        assert response.content_type == PROBLEM
        return response.status, (await response.json())["invalid_params"][0]["name"]

    assert await refused({"building": "b1", "zone": "b1-f2-a", "desk": "d3"}) == (409, "desk")
    assert await refused({"building": "b1", "zone": "b1-f1-a", "desk": "d4"}) == (422, "desk")
    assert await refused({"building": "b1", "zone": "b1-f2-a"}) == (422, "desk")  # no desk
    assert await refused({"building": "b9", "desk": "d4"}) == (422, "building")
    assert await refused({"building": "b1", "zone": "z9", "desk": "d4"}) == (422, "zone")
    assert (
        await client.patch("/api/v1/devices/nope", json={"building": "b1"}, headers=admin)
    ).status == 404

    moved = await client.patch(
        url,
        json={"building": "b1", "zone": "b1-f2-a", "desk": "d4", "enabled": True},
        headers=admin,
    )
    assert moved.status == 200
    body = await moved.json()
    assert (body["building"], body["zone"], body["desk"]) == ("b1", "b1-f2-a", "d4")
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM desk_state WHERE desk_id = 'd1'") == 0
    finally:
        await conn.close()


def test_ikn_device_move_places_the_device_and_names_a_bad_place(database_url: str) -> None:
    asyncio.run(seed(database_url))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"IKN_DATABASE_URL": database_url}
        return ikn_command(env, "device", "move", "--id", "desk-d2", *args)

    bad = run("--building", "b1", "--zone", "b1-f2-a", "--desk", "d2")
    assert bad.returncode == 1 and "no such desk in building b1" in bad.stderr
    done = run("--building", "b1", "--zone", "b1-f1-a", "--desk", "d2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "desk-d2 moved to b1 / b1-f1-a / d2"
