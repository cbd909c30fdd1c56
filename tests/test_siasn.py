"""SIASN sync against a fake SIASN (gateway + SSO + unit lists) and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from ikn.brokers import free_port
from ikn_service import siasn

GW, SSO = "gw-token-123", "sso-token-456"
SECRET, PASSWORD = "client-secret-xyz", "password-xyz"


def emp(nip: str, name: str, boss: str | None = None, status: str = "Aktif") -> dict[str, Any]:
    return {
        "nipBaru": nip,
        "nama": name,
        "unorId": "U1",
        "jabatanNama": "Analis",
        "atasanNip": boss,
        "kedudukanPnsNama": status,
    }


class Fake:
    def __init__(self) -> None:
        self.units: dict[str, list[dict[str, Any]]] = {"U1": []}
        self.fail = 0

    async def gw_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        ok = form.get("grant_type") == "client_credentials" and request.headers.get(
            "Authorization", ""
        ).startswith("Basic ")
        return web.json_response({"access_token": GW} if ok else {}, status=200 if ok else 401)

    async def sso_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        ok = form.get("password") == PASSWORD
        return web.json_response({"access_token": SSO} if ok else {}, status=200 if ok else 401)

    async def unit(self, request: web.Request) -> web.Response:
        if self.fail:
            return web.json_response({}, status=self.fail)
        if (
            request.headers.get("Authorization") != f"Bearer {GW}"
            or request.headers.get("Auth") != f"bearer {SSO}"
        ):
            return web.json_response({}, status=401)
        return web.json_response({"data": self.units[request.match_info["unit"]]})


@pytest.fixture
async def fake() -> AsyncIterator[tuple[Fake, siasn.Credentials]]:
    f = Fake()
    app = web.Application()
    app.router.add_post(siasn.GATEWAY_TOKEN_PATH, f.gw_token)
    app.router.add_post(siasn.SSO_TOKEN_PATH, f.sso_token)
    app.router.add_get("/apisiasn/1.0/unor/{unit}/pns", f.unit)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    yield f, siasn.Credentials(url, url, "cid", SECRET, "user", PASSWORD)
    await runner.cleanup()


async def run(url: str, creds: siasn.Credentials, dry: bool = False) -> siasn.Changes:
    emps = await siasn.fetch_employees(creds, ["U1"])
    conn = await asyncpg.connect(url)
    try:
        return await siasn.sync(conn, emps, "bkn", date(2026, 12, 7), dry)
    finally:
        await conn.close()


async def test_sync_adds_updates_and_deactivates(fake: Any, database_url: str, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    f, creds = fake
    f.units["U1"] = [emp("1", "Ani", "3"), emp("2", "Budi", "3"), emp("3", "Sari")]
    first = await run(database_url, creds)
    assert [p.id for p in first.added] == ["1", "2", "3"]
    f.units["U1"] = [emp("1", "Ani R", "3"), emp("3", "Sari"), emp("2", "Budi", status="Pensiun")]
    dry = await run(database_url, creds, dry=True)
    assert dry.deactivated == ["2"] and [c[1] for c in dry.changed] == [["name"]]
    second = await run(database_url, creds)
    assert second == dry
    conn = await asyncpg.connect(database_url)
    rows = {r["id"]: r for r in await conn.fetch("SELECT * FROM people")}
    await conn.close()
    assert rows["1"]["name"] == "Ani R" and rows["3"]["role"] == "supervisor"
    assert rows["2"]["employment_end"] == date(2026, 12, 7)
    assert SECRET not in caplog.text and PASSWORD not in caplog.text and GW not in caplog.text
    f.units["U1"][2] = emp("2", "Budi")  # back again: active, counted as added
    assert [p.id for p in (await run(database_url, creds)).added] == ["2"]
    conn = await asyncpg.connect(database_url)
    assert await conn.fetchval("SELECT employment_end FROM people WHERE id = '2'") is None
    await conn.close()


async def test_dry_run_changes_nothing(fake: Any, database_url: str) -> None:
    f, creds = fake
    f.units["U1"] = [emp("1", "Ani")]
    assert len((await run(database_url, creds, dry=True)).added) == 1
    conn = await asyncpg.connect(database_url)
    assert await conn.fetchval("SELECT count(*) FROM people WHERE id = '1'") == 0
    await conn.close()


async def test_wrong_password_is_a_clear_error(fake: Any) -> None:
    _, creds = fake
    bad = siasn.Credentials(creds.gateway_url, creds.sso_url, "cid", SECRET, "user", "nope")
    with pytest.raises(siasn.SiasnError, match="refused"):
        await siasn.fetch_employees(bad, ["U1"])
    assert "nope" not in repr(bad)


async def test_gateway_5xx_is_a_clear_error(fake: Any) -> None:
    f, creds = fake
    f.fail = 503
    with pytest.raises(siasn.SiasnError, match="HTTP 503"):
        await siasn.fetch_employees(creds, ["U1"])


@pytest.mark.skipif(
    not os.environ.get("IKN_SIASN_CLIENT_SECRET"),
    reason="no real SIASN credentials in the environment (IKN_SIASN_* unset)",
)
async def test_contract_real_siasn() -> None:
    e = os.environ
    creds = siasn.Credentials(
        e["IKN_SIASN_GATEWAY_URL"],
        e["IKN_SIASN_SSO_URL"],
        e["IKN_SIASN_CLIENT_ID"],
        e["IKN_SIASN_CLIENT_SECRET"],
        e["IKN_SIASN_USERNAME"],
        e["IKN_SIASN_PASSWORD"],
    )
    emps = await siasn.fetch_employees(creds, e["IKN_SIASN_UNITS"].split(","))
    assert all(x.nip and x.name for x in emps)


def command_env(creds: siasn.Credentials, url: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "IKN_DATABASE_URL": url,
        "IKN_SIASN_GATEWAY_URL": creds.gateway_url,
        "IKN_SIASN_SSO_URL": creds.sso_url,
        "IKN_SIASN_CLIENT_ID": "cid",
        "IKN_SIASN_CLIENT_SECRET": SECRET,
        "IKN_SIASN_USERNAME": "user",
        "IKN_SIASN_PASSWORD": PASSWORD,
        "IKN_SIASN_UNITS": "U1",
        "IKN_SIASN_AGENCY": "bkn",
    }


async def ikn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ikn", *args]
    return await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True)


async def test_command_dry_run_then_real(fake: Any, database_url: str) -> None:
    f, creds = fake
    f.units["U1"] = [emp("1", "Ani", "3"), emp("3", "Sari")]
    env = command_env(creds, database_url)
    dry = await ikn(env, "sync", "siasn", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "added 1 Ani" in dry.stdout and "dry run, nothing changed: 2 added" in dry.stdout
    real = await ikn(env, "sync", "siasn")
    assert real.returncode == 0 and "2 added, 0 changed, 0 deactivated" in real.stdout
    assert SECRET not in real.stderr + dry.stderr and PASSWORD not in real.stderr


async def test_command_names_a_missing_setting(fake: Any, database_url: str) -> None:
    _, creds = fake
    env = command_env(creds, database_url)
    del env["IKN_SIASN_UNITS"]
    out = await ikn(env, "sync", "siasn")
    assert out.returncode != 0 and "IKN_SIASN_UNITS is required" in out.stderr
