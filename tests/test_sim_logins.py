"""Simulated devices log in as themselves: ``ikn seed --sim-logins`` gives each of a
scenario's devices a broker password and writes them (0600) for ``IKN_SIM_LOGINS_FILE``;
the broker (client ids bound to user names) then sees each device under its own account."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.runner import run_sim
from firmware_sim.scenario import load_scenario
from ikn.brokers import start_mosquitto
from ikn_core import device_logins
from ikn_core.errors import SettingsError
from ikn_core.settings import SimSettings
from ikn_store.fleet.broker_auth import broker_users, verify
from tests.helpers import eventually

DEVICE_IDS = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
PASSWORDS = st.from_regex(r"[ -~]{1,40}", fullmatch=True)  # printable ASCII, ":" too


def ikn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ikn", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@given(st.dictionaries(DEVICE_IDS, PASSWORDS, max_size=20))
def test_logins_round_trip(logins: dict[str, str]) -> None:
    assert device_logins.parse(device_logins.render(logins)) == logins


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("desk-1\n", "line 1: expected device_id:password"),
        ("desk-1:s3cret\n:s3cret\n", "line 2: expected"),
        ("desk-1:s3cret\ndesk-1:s3cret\n", "line 2: 'desk-1' a second time"),
    ],
)
def test_a_bad_logins_file_is_refused_without_showing_a_password(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "logins"
    path.write_text(text)
    env = {"IKN_MQTT_URL": "mqtt://localhost", "IKN_SIM_LOGINS_FILE": str(path)}
    with pytest.raises(SettingsError) as caught:
        SimSettings.from_env(env)
    assert message in str(caught.value) and "s3cret" not in str(caught.value)


def test_an_unreadable_logins_file_stops_the_settings(tmp_path: Path) -> None:
    env = {"IKN_MQTT_URL": "mqtt://localhost", "IKN_SIM_LOGINS_FILE": str(tmp_path / "none")}
    with pytest.raises(SettingsError, match=r"IKN_SIM_LOGINS_FILE=.*cannot read it"):
        SimSettings.from_env(env)


def test_the_sim_refuses_a_file_missing_a_device(tmp_path: Path) -> None:
    path = tmp_path / "logins"
    path.write_text("desk-f1-a-01:pw\n")
    done = ikn(
        {"IKN_MQTT_URL": "mqtt://127.0.0.1:9", "IKN_SIM_LOGINS_FILE": str(path)},
        "sim", "--scenario", "demo",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no password for" in done.stderr and "Traceback" not in done.stderr


async def test_seeded_devices_log_in_as_themselves(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "trial" / "sim-logins"
    path.parent.mkdir()
    env = {"IKN_DATABASE_URL": database_url}
    seeded = ikn(env, "seed", "--scenario", "demo", "--sim-logins", str(path))
    assert seeded.returncode == 0, seeded.stderr
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    logins = device_logins.read(str(path))
    scenario = load_scenario("demo")
    assert set(logins) == {d.id for d in scenario.site.devices}
    conn = await asyncpg.connect(database_url)
    try:
        hashes = {u.username: u.password_hash for u in await broker_users(conn)}
    finally:
        await conn.close()
    assert all(verify(logins[d], hashes[d]) for d in logins)
    assert ikn(env, "broker-config", "--out", str(tmp_path / "auth")).returncode == 0

    broker = start_mosquitto(tmp_path / "mosquitto", auth_dir=tmp_path / "auth")
    try:
        settings = SimSettings.from_env(
            {"IKN_MQTT_URL": broker.url, "IKN_SIM_LOGINS_FILE": str(path)}
        )
        stop = asyncio.Event()
        sim = asyncio.create_task(run_sim(settings, scenario, stop))

        def logged_in() -> set[str]:
            log = broker.log_path.read_text()
            return {d for d in logins if f" as {d} (p5, c1, k" in log and f"u'{d}')" in log}

        try:
            await eventually(lambda: asyncio.sleep(0, logged_in()), lambda s: s == set(logins), 60)
        finally:
            stop.set()
            result = await sim
        assert result.fleet.devices == len(logins)
        assert "not authorised" not in broker.log_path.read_text()
    finally:
        broker.stop()
