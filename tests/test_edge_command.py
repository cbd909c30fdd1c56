"""``ikn edge-agent``: one simulated device, a durable outbox, settings from the
environment; the site key never reaches a log line."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ikn.brokers import BrokerProcess
from ikn_core.contract import BadgeTap
from ikn_core.errors import SettingsError
from ikn_core.settings import EdgeSettings
from tests.test_edge_agent import subscribed

DEADLINE_S = 30.0
SITE_KEY = "rahasia-situs-0123456789abcdef"
DEVICE = "desk-f1-a-01"  # a desk sensor of the builtin demo scenario
# HMAC-SHA256(SITE_KEY, "0004829001"), from another implementation (openssl dgst -hmac)
TOKEN = "b1:LtdTv9b1u0ow7gC7QEdBKRwn1NXCq_hbksvHLIEOffA"


def edge_env(broker: BrokerProcess, outbox: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "IKN_MQTT_URL": broker.url,
        "IKN_DEVICE_ID": DEVICE,
        "IKN_OUTBOX_PATH": str(outbox),
        "IKN_SITE_KEY": SITE_KEY,
        "IKN_SIM_SPEED": "600",
        "IKN_LOG_LEVEL": "DEBUG",
        **extra,
    }


def files(directory: Path, pattern: str) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob(pattern))


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ikn", "edge-agent"], env=env, stdout=out, stderr=out
        )


async def test_runs_a_device_and_continues_its_stream_after_a_restart(
    mosquitto: BrokerProcess, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.db"
    async with subscribed(mosquitto) as sub:
        for run in (1, 2):
            log = tmp_path / f"run{run}.log"
            # No ingest here to send stored notices: the PUBACK forgets, as before.
            proc = start(edge_env(mosquitto, outbox, IKN_EDGE_AWAIT_STORED="off"), log)
            try:
                before = len(sub.on("up"))
                await sub.wait_until(
                    lambda: len(sub.on("up")) > before,  # noqa: B023 - awaited right here
                    f"readings of run {run}",
                )
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(DEADLINE_S)
            assert proc.returncode == 0, log.read_text()[-2000:]
            text = log.read_text()
            assert SITE_KEY not in text
            assert "edge-agent:" in text  # the start-up line, with the settings
        await sub.wait_until(
            lambda: [s.state for s in sub.statuses()].count("offline") == 2, "two offline"
        )
    readings = sub.readings(DEVICE)
    seqs = [r.seq for r in readings]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1  # one stream, counting on
    streams = {m.payload.split(b'"stream":"')[1][:36] for m in sub.on("up")}
    assert len(streams) == 1
    assert [s.state for s in sub.statuses()] == ["online", "offline", "online", "offline"]


def test_unknown_device_stops_with_a_clear_error(mosquitto: BrokerProcess, tmp_path: Path) -> None:
    env = edge_env(mosquitto, tmp_path / "o.db", IKN_DEVICE_ID="no-such-desk")
    proc = subprocess.run(
        [sys.executable, "-m", "ikn", "edge-agent"],
        env=env,
        capture_output=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert proc.returncode == 2
    assert b"IKN_DEVICE_ID='no-such-desk': no such device in scenario 'demo'" in proc.stderr


def test_settings_list_every_problem_and_never_the_site_key() -> None:
    with pytest.raises(SettingsError) as err:
        EdgeSettings.from_env(
            {
                "IKN_MQTT_URL": "http://broker",
                "IKN_DEVICE_ID": "méja 1",
                "IKN_OUTBOX_MAX_READINGS": "10",
                "IKN_SITE_KEY": "short-secret",
                "IKN_EDGE_DRIVER": "modbus",
            }
        )
    text = str(err.value)
    for name in (
        "IKN_MQTT_URL",
        "IKN_DEVICE_ID",
        "IKN_OUTBOX_MAX_READINGS",
        "IKN_SITE_KEY",
        "IKN_EDGE_DRIVER",
    ):
        assert name in text
    assert "short-secret" not in text


def test_the_serial_driver_needs_a_port() -> None:
    with pytest.raises(SettingsError, match="IKN_SERIAL_PORT is required"):
        EdgeSettings.from_env(
            {"IKN_MQTT_URL": "mqtt://b", "IKN_DEVICE_ID": "hub-1", "IKN_EDGE_DRIVER": "serial"}
        )


def test_settings_defaults_and_the_key_stays_out_of_repr() -> None:
    settings = EdgeSettings.from_env(
        {
            "IKN_MQTT_URL": "mqtt://desk:pw@broker:1883",
            "IKN_DEVICE_ID": DEVICE,
            "IKN_SITE_KEY": SITE_KEY,
        }
    )
    assert settings.site_key == SITE_KEY.encode()
    assert (settings.outbox_path, settings.outbox_max_readings, settings.outbox_sync) == (
        "ikn-outbox.db",
        1_000_000,
        "FULL",
    )
    assert SITE_KEY not in repr(settings)
    assert ":pw@" not in repr(settings) and "'pw'" not in repr(settings)


async def test_serial_badge_reader_end_to_end(mosquitto: BrokerProcess, tmp_path: Path) -> None:
    """`ikn edge-agent` on a pseudo-terminal: the tap goes out as its token, the card
    number is nowhere (published, outbox, log); the port closing ends the agent."""
    master, slave = os.openpty()
    port = os.ttyname(slave)
    os.close(slave)
    outbox, log = tmp_path / "outbox.db", tmp_path / "agent.log"
    env = edge_env(
        mosquitto, outbox, IKN_DEVICE_ID="reader-1", IKN_EDGE_DRIVER="serial", IKN_SERIAL_PORT=port
    )
    async with subscribed(mosquitto) as sub:
        proc = start(env, log)
        try:
            deadline = asyncio.get_running_loop().time() + DEADLINE_S
            while not sub.readings("reader-1"):  # until the agent has the port open
                assert asyncio.get_running_loop().time() < deadline, log.read_text()
                os.write(master, b"\x07noise\nB 0004829001 I\n")
                await asyncio.sleep(0.1)
        finally:
            os.close(master)  # the reader is unplugged: the agent flushes and ends
            await asyncio.to_thread(proc.wait, DEADLINE_S)
    assert proc.returncode == 0, log.read_text()[-2000:]
    taps = sub.readings("reader-1")
    assert {(t.badge, t.direction) for t in taps if isinstance(t, BadgeTap)} == {(TOKEN, "in")}
    stored = files(tmp_path, "outbox.db*")
    for where in (b"".join(m.payload for m in sub.messages), stored, log.read_bytes()):
        assert b"0004829001" not in where
    assert b"garbage on" in log.read_bytes()
