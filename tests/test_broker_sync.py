"""``ikn broker-sync`` on a real Mosquitto (deploy/mosquitto/mosquitto.conf) and the real
API: a device disabled through ``PATCH /api/v1/devices/{id}`` is disconnected and cannot
reconnect within seconds, and a rotated password replaces the old one, with nobody
running ``ikn broker-config`` or sending SIGHUP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn.brokers import BrokerProcess
from tests.helpers import api_settings, bearer, eventually
from tests.test_broker_acl import (
    Client,
    _accounts,
    _connects,
    ikn,
    password_of,
    start_production_mosquitto,
)

WITHIN_S = 10.0  # "within a few seconds"; measured: see the test's printed figure


class Synced:
    def __init__(
        self, broker: BrokerProcess, passwords: dict[str, str], log: Path, pid_file: Path
    ) -> None:
        self.broker, self.passwords, self.log = broker, passwords, log
        self.pid_file = pid_file  # the one broker-sync was given

    def connects(self, user: str, password: str | None = None) -> bool:
        return _connects(self.broker.port, user, password or self.passwords[user])


@pytest.fixture
def synced(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Synced]:
    """The production broker with dev-a, dev-b and two ingest accounts, and a running
    ``ikn broker-sync`` signalling it through its pid file (or, indirectly
    parametrized with "not yet", through a pid file that does not exist yet)."""
    auth = tmp_path / "auth"
    passwords = _accounts(database_url, auth)  # as the broker-init step writes them
    broker = start_production_mosquitto(tmp_path / "mosquitto", auth)
    pid_file = tmp_path / "mosquitto" / "run" / "mosquitto.pid"
    assert int(pid_file.read_text()) == broker.proc.pid
    if getattr(request, "param", None) == "not yet":
        pid_file = tmp_path / "later" / "mosquitto.pid"
    log = tmp_path / "broker-sync.log"
    command = ["broker-sync", "--out", str(auth), "--pid-file", str(pid_file)]
    with log.open("wb") as out:
        sync = subprocess.Popen(
            [sys.executable, "-m", "ikn", *command],
            env={**os.environ, "IKN_DATABASE_URL": database_url, "IKN_LOG_LEVEL": "INFO"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while b"listening for broker account changes" not in log.read_bytes():
            assert sync.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield Synced(broker, passwords, log, pid_file)
    finally:
        sync.terminate()
        assert sync.wait(30) == 0, log.read_text()
        broker.stop()


Api = TestClient[web.Request, web.Application]


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with TestClient(TestServer(app)) as client:
        yield client


async def dropped(client: Client) -> bool:
    return bool(client.dropped)


async def test_a_device_disabled_through_the_api_is_shut_out_by_itself(
    synced: Synced, api: Api, database_url: str
) -> None:
    device = Client(synced.broker.port, "dev-b", synced.passwords["dev-b"])
    other = Client(synced.broker.port, "dev-a", synced.passwords["dev-a"])
    try:
        assert device.connected and other.connected
        admin = await bearer(database_url, "admin", "admin")
        started = time.monotonic()
        patched = await api.patch("/api/v1/devices/dev-b", json={"enabled": False}, headers=admin)
        assert patched.status == 200, await patched.text()
        await eventually(lambda: dropped(device), bool, WITHIN_S)
        print(f"dev-b disconnected {time.monotonic() - started:.2f} s after the PATCH")
        assert not await asyncio.to_thread(synced.connects, "dev-b"), "it connected again"
        assert other.dropped == [], "a device still enabled was disconnected"
        assert await asyncio.to_thread(synced.connects, "dev-a")
        enabled = await api.patch("/api/v1/devices/dev-b", json={"enabled": True}, headers=admin)
        assert enabled.status == 200
        await eventually(lambda: asyncio.to_thread(synced.connects, "dev-b"), bool, WITHIN_S)
    finally:
        device.close()
        other.close()


async def test_a_rotated_password_replaces_the_old_one_by_itself(
    synced: Synced, database_url: str
) -> None:
    device = Client(synced.broker.port, "dev-a", synced.passwords["dev-a"])
    try:
        new = password_of(ikn(database_url, "device", "rotate-password", "--id", "dev-a"))
        assert new != synced.passwords["dev-a"]
        await eventually(lambda: asyncio.to_thread(synced.connects, "dev-a", new), bool, WITHIN_S)
        assert not await asyncio.to_thread(synced.connects, "dev-a"), "the old password works"
        await eventually(lambda: dropped(device), bool, WITHIN_S)
    finally:
        device.close()


@pytest.mark.parametrize("synced", ["not yet"], indirect=True)
async def test_a_reload_that_failed_is_tried_again(synced: Synced, database_url: str) -> None:
    """The broker's pid file missing (the broker restarting): the files are written, the
    reload is tried again every second, and done once the pid file is there."""
    device = Client(synced.broker.port, "dev-b", synced.passwords["dev-b"])
    try:
        ikn(database_url, "device", "disable", "--id", "dev-b")
        await eventually(
            lambda: asyncio.to_thread(synced.log.read_bytes),
            lambda text: text.count(b"cannot reload the broker") >= 2,
            WITHIN_S,
        )
        assert device.dropped == [], "no reload reached the broker, so it kept the device"
        synced.pid_file.parent.mkdir()
        synced.pid_file.write_text(f"{synced.broker.proc.pid}\n")
        await eventually(lambda: dropped(device), bool, WITHIN_S)
        assert not await asyncio.to_thread(synced.connects, "dev-b")
    finally:
        device.close()
