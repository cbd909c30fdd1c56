"""Proof on a real Mosquitto configured by ``ikn broker-config``: each device is
confined to its own topics, a wrong password is refused, a disabled device is shut
out once the broker re-reads the files (SIGHUP)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ikn.brokers import INSTALL_HINT, BrokerProcess, find_mosquitto, start_mosquitto
from tests.helpers import poll, seed

TIMEOUT = 20.0


def ikn(database_url: str, *args: str) -> str:
    """Run the real command line; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "ikn", *args],
        env={**os.environ, "IKN_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def password_of(output: str) -> str:
    return output.strip().splitlines()[-1]


class Client:
    """A paho client that records its CONNACK, its messages, and waits for one."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._connack = threading.Event()
        self._arrived = threading.Condition()
        self.reason: Any = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{username}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._connack.wait(TIMEOUT), "no CONNACK"

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.reason = reason
        self._connack.set()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._arrived:
            self.messages.append((message.topic, message.payload))
            self._arrived.notify_all()

    @property
    def connected(self) -> bool:
        return not self.reason.is_failure

    def subscribe(self, *topics: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe([(t, 1) for t in topics])
        assert done.wait(TIMEOUT), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(TIMEOUT)

    def wait_for(self, payload: bytes) -> list[tuple[str, bytes]]:
        with self._arrived:
            ok = self._arrived.wait_for(
                lambda: any(p == payload for _, p in self.messages), TIMEOUT
            )
        assert ok, f"{payload!r} never arrived; got {self.messages}"
        return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _register(database_url: str, device_id: str) -> str:
    out = ikn(
        database_url,
        "device", "add", "--id", device_id, "--kind", "environment",
        "--building", "b1", "--zone", "b1-f1-a",
    )  # fmt: skip
    return password_of(out)


@pytest.fixture
def broker(database_url: str, tmp_path: Path) -> Any:
    if find_mosquitto() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    asyncio.run(seed(database_url))
    passwords = {d: _register(database_url, d) for d in ("dev-a", "dev-b")}
    passwords["svc.ingest"] = password_of(ikn(database_url, "broker-account", "--role", "ingest"))
    auth = tmp_path / "auth"
    ikn(database_url, "broker-config", "--out", str(auth))
    # Run as root, Mosquitto would switch to the `mosquitto` user, who may not read the
    # 0600 files we own: keep it as us (in production the files belong to its uid).
    keep_user = "user root\n" if os.geteuid() == 0 else ""
    broker = start_mosquitto(tmp_path / "mosquitto", extra_conf=keep_user, auth_dir=auth)
    yield broker, passwords, auth
    broker.stop()


def test_the_files_hold_only_hashes_and_disabled_devices_are_left_out(
    database_url: str, broker: tuple[BrokerProcess, dict[str, str], Path]
) -> None:
    _, passwords, auth = broker
    passwd = (auth / "passwd").read_text()
    assert {line.split(":")[0] for line in passwd.splitlines()} == {"svc.ingest", "dev-a", "dev-b"}
    assert all(p not in passwd for p in passwords.values())
    assert oct((auth / "passwd").stat().st_mode & 0o777) == "0o600"
    acl = (auth / "acl").read_text()
    assert "pattern write ikn/v1/dev/%u/up" in acl
    assert "user svc.ingest\ntopic read ikn/v1/dev/+/up" in acl


def test_a_device_cannot_publish_under_another_devices_id(
    broker: tuple[BrokerProcess, dict[str, str], Path],
) -> None:
    server, passwords, _ = broker
    ingest = Client(server.port, "svc.ingest", passwords["svc.ingest"])
    a = Client(server.port, "dev-a", passwords["dev-a"])
    try:
        assert ingest.connected and a.connected
        ingest.subscribe("$share/ikn-ingest/ikn/v1/dev/+/up", "ikn/v1/dev/+/status")
        a.publish("ikn/v1/dev/dev-b/up", b"forged up")
        a.publish("ikn/v1/dev/dev-b/status", b"forged status")
        a.publish("ikn/v1/dev/dev-a/status", b"own status")
        a.publish("ikn/v1/dev/dev-a/up", b"marker")
        got = ingest.wait_for(b"marker")
        assert got == [
            ("ikn/v1/dev/dev-a/status", b"own status"),
            ("ikn/v1/dev/dev-a/up", b"marker"),
        ]
    finally:
        ingest.close()
        a.close()


def test_a_device_cannot_read_another_devices_down_topic(
    broker: tuple[BrokerProcess, dict[str, str], Path],
) -> None:
    server, passwords, _ = broker
    ingest = Client(server.port, "svc.ingest", passwords["svc.ingest"])
    a = Client(server.port, "dev-a", passwords["dev-a"])
    try:
        a.subscribe("ikn/v1/dev/dev-b/down", "ikn/v1/dev/+/down")
        ingest.publish("ikn/v1/dev/dev-b/down", b"for b only")
        ingest.publish("ikn/v1/dev/dev-a/down", b"marker")
        assert a.wait_for(b"marker") == [("ikn/v1/dev/dev-a/down", b"marker")]
    finally:
        ingest.close()
        a.close()


def test_a_wrong_password_or_no_account_cannot_connect(
    broker: tuple[BrokerProcess, dict[str, str], Path],
) -> None:
    server, passwords, _ = broker
    for user, password in (
        ("dev-a", passwords["dev-b"]),
        ("dev-a", ""),
        ("desk-d1", passwords["dev-a"]),  # registered by the seed, no credentials
        ("nobody", "x"),
    ):
        client = Client(server.port, user, password)
        try:
            assert not client.connected, user
        finally:
            client.close()


def _connects(port: int, user: str, password: str) -> bool:
    client = Client(port, user, password)
    client.close()
    return client.connected


def test_a_disabled_device_cannot_connect_after_reload(
    database_url: str, broker: tuple[BrokerProcess, dict[str, str], Path]
) -> None:
    server, passwords, auth = broker
    assert _connects(server.port, "dev-b", passwords["dev-b"])
    ikn(database_url, "device", "disable", "--id", "dev-b")
    ikn(database_url, "broker-config", "--out", str(auth))
    assert "dev-b:" not in (auth / "passwd").read_text()
    server.proc.send_signal(signal.SIGHUP)
    poll(lambda: _connects(server.port, "dev-b", passwords["dev-b"]), lambda ok: not ok, TIMEOUT)
    assert _connects(server.port, "dev-a", passwords["dev-a"])
