"""Proof on a real Mosquitto configured by ``ikn broker-config``: each device is
confined to its own topics, a wrong password is refused, a disabled device is shut
out once the broker re-reads the files (SIGHUP). Client ids are bound to accounts, on
deploy/mosquitto/mosquitto.conf itself and on the tests' brokers: no device takes over
the ingest's or another device's session, each ingest replica has an account of its
own; the production config keeps a backlog across a restart."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ikn.brokers import (
    INSTALL_HINT,
    BrokerProcess,
    find_mosquitto,
    free_port,
    run_mosquitto,
    start_mosquitto,
)
from ikn_core.mqtt import ConnectRefused, MqttConnection, Session
from ikn_core.settings import MqttSettings, MqttUrl
from ikn_store.fleet.broker_auth import broker_users, verify
from ikn_store.readings.rows import stream_counts
from tests.helpers import eventually, ikn_command, poll, seed

TIMEOUT = 20.0
INGESTS = ("svc.ingest-1", "svc.ingest-2")
# CONNACK reasons of a refused login: MQTT 5 0x86/0x87, MQTT 3.1.1 4/5 (paho's names)
REFUSED = ("Bad user name or password", "Not authorized")


def run_ikn(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line (in this process)."""
    return ikn_command({"IKN_DATABASE_URL": database_url}, *args)


def ikn(database_url: str, *args: str) -> str:
    """Run the real command line, which must succeed; returns its stdout."""
    done = run_ikn(database_url, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def password_of(output: str) -> str:
    return output.strip().splitlines()[-1]


class Client:
    """A paho client that records its CONNACK, its messages and any disconnection it
    did not ask for, and waits for messages. It does not reconnect by itself."""

    def __init__(
        self,
        port: int,
        username: str,
        password: str,
        *,
        client_id: str | None = None,
        persistent: bool = False,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        """``persistent``: MQTT 3.1.1 with a persistent session (clean session off), as
        the ingest connects by default; otherwise MQTT 5 and a clean start."""
        self.messages: list[tuple[str, bytes]] = []
        self.dropped: list[Any] = []  # reason codes of disconnections we did not ask for
        self._connack = threading.Event()
        self._arrived = threading.Condition()
        self._closing = False
        self.reason: Any = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"{username}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv311 if persistent else mqtt.MQTTv5,
            clean_session=False if persistent else None,
            reconnect_on_failure=False,
        )
        self.client.username_pw_set(username, password)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._connack.wait(TIMEOUT), "no CONNACK"

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.reason = reason
        self._connack.set()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._arrived:
            self.messages.append((message.topic, bytes(message.payload)))
            self._arrived.notify_all()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not self._closing:
            self.dropped.append(reason)

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
        assert info.is_published(), f"{topic}: no PUBACK"

    def wait_for(self, payload: bytes) -> list[tuple[str, bytes]]:
        with self._arrived:
            ok = self._arrived.wait_for(
                lambda: any(p == payload for _, p in self.messages), TIMEOUT
            )
        assert ok, f"{payload!r} never arrived; got {self.messages}"
        return list(self.messages)

    def wait_for_all(self, payloads: set[bytes]) -> set[bytes]:
        """Waits until every one of ``payloads`` arrived (or the timeout); returns
        which of them did."""
        with self._arrived:
            self._arrived.wait_for(lambda: payloads <= {p for _, p in self.messages}, TIMEOUT)
            return payloads & {p for _, p in self.messages}

    def close(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()


def _register(database_url: str, device_id: str) -> str:
    out = ikn(
        database_url,
        "device", "add", "--id", device_id, "--kind", "environment",
        "--building", "b1", "--zone", "b1-f1-a",
    )  # fmt: skip
    return password_of(out)


def _accounts(database_url: str, auth: Path) -> dict[str, str]:
    """Accounts for dev-a, dev-b and two ingest replicas, and ``passwd`` and ``acl`` in ``auth``;
    returns the passwords by user name."""
    if find_mosquitto() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    asyncio.run(seed(database_url))
    passwords = {d: _register(database_url, d) for d in ("dev-a", "dev-b")}
    for name in INGESTS:  # one account per replica
        out = ikn(database_url, "broker-account", "--role", "ingest", "--name", name[4:])
        passwords[name] = password_of(out)
    ikn(database_url, "broker-config", "--out", str(auth))
    return passwords


def _start(config: str, tmp_path: Path, auth: Path) -> BrokerProcess:
    """``config``: "production" (deploy/mosquitto/mosquitto.conf) or "test"."""
    if config == "production":
        return start_production_mosquitto(tmp_path / "mosquitto", auth)
    return start_mosquitto(tmp_path / "mosquitto", auth_dir=auth)


@pytest.fixture
def broker(database_url: str, tmp_path: Path) -> Any:
    passwords = _accounts(database_url, tmp_path / "auth")
    broker = _start("test", tmp_path, tmp_path / "auth")
    yield broker, passwords, tmp_path / "auth"
    broker.stop()


def test_the_files_hold_only_hashes_and_disabled_devices_are_left_out(
    database_url: str, broker: tuple[BrokerProcess, dict[str, str], Path]
) -> None:
    _, passwords, auth = broker
    passwd = (auth / "passwd").read_text()
    assert {line.split(":")[0] for line in passwd.splitlines()} == {*INGESTS, "dev-a", "dev-b"}
    assert all(p not in passwd for p in passwords.values())
    assert oct((auth / "passwd").stat().st_mode & 0o777) == "0o600"
    acl = (auth / "acl").read_text()
    assert "pattern write ikn/v1/dev/%u/up" in acl
    for name in INGESTS:
        assert f"user {name}\ntopic read ikn/v1/dev/+/up" in acl


def test_a_device_cannot_publish_under_another_devices_id(
    broker: tuple[BrokerProcess, dict[str, str], Path],
) -> None:
    server, passwords, _ = broker
    ingest = Client(server.port, "svc.ingest-1", passwords["svc.ingest-1"])
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
    ingest = Client(server.port, "svc.ingest-1", passwords["svc.ingest-1"])
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
            assert str(client.reason) in REFUSED, (user, client.reason)
        finally:
            client.close()


async def _refusal(port: int, password: str, protocol: str) -> tuple[BaseException, bool]:
    """What the adapter says after logging in as dev-a with ``password``, and whether
    it connected."""
    url = MqttUrl("127.0.0.1", port, username="dev-a", password=password)
    conn = MqttConnection(MqttSettings(url, protocol), Session(f"dev-a-{uuid.uuid4().hex[:6]}"))
    conn.start()

    async def last_error() -> BaseException | None:
        return conn.last_error

    try:
        error = await eventually(last_error, lambda e: e is not None)
    finally:
        await conn.close()
    assert error is not None
    return error, conn.connected


async def test_the_adapter_reports_why_the_broker_refused_a_login(
    broker: tuple[BrokerProcess, dict[str, str], Path],
) -> None:
    server, passwords, _ = broker
    for protocol in ("5", "3.1.1"):
        error, connected = await _refusal(server.port, passwords["dev-b"], protocol)
        assert isinstance(error, ConnectRefused), repr(error)
        assert error.reason in REFUSED and error.code in (0x86, 0x87, 4, 5), (protocol, error)
        assert not connected


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


# -- Client ids are bound to accounts ----------------------------------------------------

PRODUCTION_CONF = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "mosquitto.conf"
SHARED_UP = "$share/ikn-ingest/ikn/v1/dev/+/up"
INGEST_ID = "ikn-ingest-host1"  # what IKN_INGEST_CLIENT_ID defaults to on a host "host1"


def start_production_mosquitto(
    workdir: Path,
    auth: Path,
    port: int | None = None,
    *,
    certs: Path | None = None,
    tls_port: int | None = None,
) -> BrokerProcess:
    """deploy/mosquitto/mosquitto.conf as it is, with its container paths mapped into
    ``workdir`` (its pid file: ``workdir/run/mosquitto.pid``) and ``auth`` and its plain
    listener moved to a loopback ``port`` (by default a free one). Its TLS listener
    moves to loopback ``tls_port`` with the certificates of ``certs`` (as ``ikn tls
    init`` writes them); without ``certs`` it is left out."""
    port = port or free_port()
    data, run = workdir / "data", workdir / "run"
    for directory in (data, run):
        directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "/mosquitto/certs/": f"{(certs or workdir).resolve()}/",
        "/mosquitto/auth/": f"{auth.resolve()}/",
        "/mosquitto/data/": f"{data.resolve()}/",
        "/mosquitto/run/": f"{run.resolve()}/",
    }
    # As root, Mosquitto would switch to the `mosquitto` user (see ikn.brokers); its
    # "running" line, which run_mosquitto waits for, is information.
    lines = ["user root"] if os.geteuid() == 0 else []
    lines.append("log_type information")
    listeners = {"listener 1883": f"listener {port} 127.0.0.1"}
    listeners["listener 8883"] = f"listener {tls_port or free_port()} 127.0.0.1"
    conf = PRODUCTION_CONF.read_text(encoding="utf-8")
    if certs is None:  # the TLS listener's block, up to the blank line after it
        conf = re.sub(r"\nlistener 8883\n(.+\n)*", "\n", conf)
    for original in conf.splitlines():
        line = listeners.get(original, original)
        for container, here in paths.items():
            line = line.replace(container, here)
        lines.append(line)
    assert f"listener {port} 127.0.0.1" in lines, "no plain listener in the production config"
    return run_mosquitto(workdir, port, "\n".join(lines) + "\n")


@pytest.fixture(params=["production", "test"])
def bound_broker(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[tuple[BrokerProcess, dict[str, str]]]:
    """A Mosquitto with the generated passwd and acl: the production configuration, or
    the tests' own (``start_mosquitto(auth_dir=...)``)."""
    passwords = _accounts(database_url, tmp_path / "auth")
    server = _start(request.param, tmp_path, tmp_path / "auth")
    yield server, passwords
    server.stop()


@pytest.mark.parametrize("stolen_id", [INGEST_ID, "svc.ingest-1"])
def test_a_device_cannot_take_over_the_ingests_session(
    bound_broker: tuple[BrokerProcess, dict[str, str]], stolen_id: str
) -> None:
    server, passwords = bound_broker
    port = server.port

    def ingest() -> Client:
        return Client(
            port, "svc.ingest-1", passwords["svc.ingest-1"], client_id=INGEST_ID, persistent=True
        )

    first = ingest()
    first.subscribe(SHARED_UP)
    first.close()  # away: its persistent session keeps the subscription and queues for it
    device = Client(port, "dev-a", passwords["dev-a"])
    backlog = {f"reading {i}".encode() for i in range(50)}
    for payload in sorted(backlog):
        device.publish("ikn/v1/dev/dev-a/up", payload)
    # dev-b connects with the ingest's client id and a clean session: were the id its
    # own, the broker would hand it the ingest's session, and end it.
    thief = Client(port, "dev-b", passwords["dev-b"], client_id=stolen_id, persistent=False)
    assert thief.connected
    back = ingest()
    try:
        assert len(back.wait_for_all(backlog)) == 50, "the ingest lost its backlog"
        again = Client(port, "dev-b", passwords["dev-b"], client_id=stolen_id, persistent=True)
        device.publish("ikn/v1/dev/dev-a/up", b"marker")
        back.wait_for(b"marker")
        assert back.dropped == [], "the ingest was disconnected"
        again.close()
    finally:
        for client in (thief, back, device):
            client.close()


@pytest.mark.parametrize("stolen_id", ["dev-a", "svc.ingest-1"])
def test_a_device_cannot_take_over_another_devices_session(
    bound_broker: tuple[BrokerProcess, dict[str, str]], stolen_id: str
) -> None:
    server, passwords = bound_broker
    port = server.port
    status = "ikn/v1/dev/dev-a/status"
    watcher = Client(port, "svc.ingest-1", passwords["svc.ingest-1"])
    watcher.subscribe(status)

    def victim() -> Client:
        return Client(
            port,
            "dev-a",
            passwords["dev-a"],
            client_id="dev-a",
            persistent=True,
            will=(status, b"offline"),
        )

    first = victim()
    first.subscribe("ikn/v1/dev/dev-a/down")
    first.close()  # away (a graceful DISCONNECT: no Will); its commands wait for it
    commands = {f"command {i}".encode() for i in range(5)}
    for payload in sorted(commands):
        watcher.publish("ikn/v1/dev/dev-a/down", payload)
    thief = Client(port, "dev-b", passwords["dev-b"], client_id=stolen_id)
    back = victim()
    try:
        assert back.wait_for_all(commands) == commands, "the device lost its commands"
        again = Client(port, "dev-b", passwords["dev-b"], client_id=stolen_id, persistent=True)
        back.publish(status, b"still online")
        got = watcher.wait_for(b"still online")
        assert (status, b"offline") not in got, "the device's Will was published"
        assert back.dropped == [], "the device was disconnected"
        again.close()
    finally:
        for client in (thief, back, watcher):
            client.close()


def test_each_ingest_replica_has_its_own_session(
    bound_broker: tuple[BrokerProcess, dict[str, str]],
) -> None:
    """Both replicas, with the same client id configured, share the group's messages
    and stay connected; two processes with one account evict each other, which is why
    each replica gets its own."""
    server, passwords = bound_broker
    replicas = [
        Client(server.port, name, passwords[name], client_id=INGEST_ID, persistent=True)
        for name in INGESTS
    ]
    device = Client(server.port, "dev-a", passwords["dev-a"])
    try:
        for replica in replicas:
            replica.subscribe(SHARED_UP)
        sent = {f"reading {i}".encode() for i in range(50)}
        for payload in sorted(sent):
            device.publish("ikn/v1/dev/dev-a/up", payload)

        def received() -> list[list[bytes]]:
            return [[p for _, p in replica.messages] for replica in replicas]

        poll(lambda: sum(map(len, received())), lambda n: n >= len(sent), TIMEOUT)
        assert sorted(received()[0] + received()[1]) == sorted(sent)  # each once
        assert all(received()), "the group gave one replica nothing"
        assert [r.dropped for r in replicas] == [[], []]

        twin = Client(server.port, INGESTS[0], passwords[INGESTS[0]], client_id="another")
        poll(lambda: replicas[0].dropped, bool, TIMEOUT)  # one account, one session
        twin.close()
        assert replicas[1].dropped == []
    finally:
        for client in (*replicas, device):
            client.close()


def test_service_accounts_are_named_per_replica_and_rotate(database_url: str) -> None:
    first = password_of(
        ikn(database_url, "broker-account", "--role", "ingest", "--name", "ingest-2")
    )
    again = ikn(database_url, "broker-account", "--role", "ingest", "--name", "ingest-2")
    assert again.startswith("MQTT user name svc.ingest-2,")
    assert password_of(again) != first
    plain = ikn(database_url, "broker-account", "--role", "api")
    assert plain.startswith("MQTT user name svc.api,")

    async def hashes() -> dict[str, str]:
        conn = await asyncpg.connect(database_url)
        try:
            return {u.username: u.password_hash for u in await broker_users(conn)}
        finally:
            await conn.close()

    stored = asyncio.run(hashes())
    assert set(stored) == {"svc.api", "svc.ingest-2"}
    assert verify(password_of(again), stored["svc.ingest-2"])
    assert not verify(first, stored["svc.ingest-2"])

    removed = ikn(
        database_url, "broker-account", "--role", "ingest", "--name", "ingest-2", "--remove"
    )
    assert removed.startswith("removed svc.ingest-2;")
    assert set(asyncio.run(hashes())) == {"svc.api"}


@pytest.mark.parametrize(
    ("role", "name"),
    [("ingest", "api-2"), ("ingest", "ingest_2"), ("ingest", "Ingest-2"), ("ingest", "ingest-"),
     ("api", "apix"), ("ingest", "ingest-" + "9" * 60), ("sim", "sim-a.b")],
)  # fmt: skip
def test_a_bad_account_name_is_refused_clearly(database_url: str, role: str, name: str) -> None:
    done = run_ikn(database_url, "broker-account", "--role", role, "--name", name)
    assert done.returncode != 0
    assert f"account name {name!r}" in done.stderr and "Traceback" not in done.stderr


def test_the_production_broker_keeps_the_ingests_backlog_across_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    """persistence: what waits for an ingest that is away survives a graceful restart."""
    passwords = _accounts(database_url, tmp_path / "auth")
    server = start_production_mosquitto(tmp_path / "mosquitto", tmp_path / "auth")
    user = INGESTS[0]
    try:
        away = Client(server.port, user, passwords[user], persistent=True)
        away.subscribe(SHARED_UP)
        away.close()
        device = Client(server.port, "dev-a", passwords["dev-a"])
        backlog = {f"reading {i}".encode() for i in range(50)}
        for payload in sorted(backlog):
            device.publish("ikn/v1/dev/dev-a/up", payload)
        device.close()
        server.stop()  # SIGTERM: Mosquitto saves its store and exits
        assert server.proc.returncode == 0
        server = start_production_mosquitto(tmp_path / "mosquitto", tmp_path / "auth", server.port)
        back = Client(server.port, user, passwords[user], persistent=True)
        try:
            assert back.wait_for_all(backlog) == backlog
        finally:
            back.close()
    finally:
        server.stop()


def test_the_sim_account_is_for_trials_only(database_url: str, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_ikn(database_url, *args)

    refused = run("broker-account", "--role", "sim")
    assert refused.returncode == 2 and "trials only" in refused.stderr, refused.stderr
    assert run("broker-account", "--role", "sim", "--trial").returncode == 0
    assert run("broker-account", "--role", "ingest", "--name", "ingest-1").returncode == 0

    production = run("broker-config", "--out", str(tmp_path / "production"))
    assert production.returncode == 0 and "left out svc.sim" in production.stderr
    assert "svc.sim" not in (tmp_path / "production" / "passwd").read_text()
    assert "svc.sim" not in (tmp_path / "production" / "acl").read_text()
    assert "svc.ingest-1:" in (tmp_path / "production" / "passwd").read_text()

    trial = run("broker-config", "--out", str(tmp_path / "trial"), "--trial")
    assert trial.returncode == 0 and "left out" not in trial.stderr
    assert "svc.sim:" in (tmp_path / "trial" / "passwd").read_text()
    assert "user svc.sim\n" in (tmp_path / "trial" / "acl").read_text()


def test_two_ingest_replicas_store_everything_once_with_an_account_each(
    database_url: str, tmp_path: Path
) -> None:
    """docker-compose.yml's design on real parts: two `ikn ingest` processes, each with
    its own account, share the group on the production configuration; even with one
    client id configured for both (two replicas on one host name), neither evicts the
    other and every reading is stored once."""
    passwords = _accounts(database_url, tmp_path / "auth")
    server = start_production_mosquitto(tmp_path / "mosquitto", tmp_path / "auth")
    ingests = []
    try:
        for user in INGESTS:
            url = f"mqtt://{user}:{passwords[user]}@127.0.0.1:{server.port}"
            log = (tmp_path / f"{user}.log").open("ab")
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("IKN_")},
                "IKN_DATABASE_URL": database_url,
                "IKN_MQTT_URL": url,
                "IKN_INGEST_CLIENT_ID": INGEST_ID,
                "IKN_INGEST_BATCH_LATENCY_MS": "20",
            }
            command = [sys.executable, "-m", "ikn", "ingest"]
            ingests.append(subprocess.Popen(command, stdout=log, stderr=log, env=env))
            log.close()

        def subscribed() -> int:
            return sum(
                "subscribed to" in (tmp_path / f"{user}.log").read_text() for user in INGESTS
            )

        poll(subscribed, lambda n: n == 2, 60)
        stream = str(uuid.uuid4())
        device = Client(server.port, "dev-a", passwords["dev-a"])
        try:
            for first in range(0, 500, 10):
                readings = [
                    {"seq": first + i, "ts": int(time.time() * 1000), "kind": "environment",
                     "temp_c": 24.5}
                    for i in range(10)
                ]  # fmt: skip
                batch = {"v": 1, "stream": stream, "readings": readings}
                device.publish("ikn/v1/dev/dev-a/up", json.dumps(batch).encode())
        finally:
            device.close()

        async def counts() -> tuple[int, int]:
            conn = await asyncpg.connect(database_url)
            try:
                return await stream_counts(conn, stream)
            finally:
                await conn.close()

        assert poll(lambda: asyncio.run(counts()), lambda c: c[0] >= 500, 60) == (500, 500)
        assert "already connected, closing old connection" not in server.log_path.read_text()
        assert [p.poll() for p in ingests] == [None, None]
        for proc in ingests:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        stored = []
        for user in INGESTS:
            text = (tmp_path / f"{user}.log").read_text()
            assert text.count("connected (generation") == 1, f"{user} was evicted:\n{text}"
            stored += [int(n) for n in re.findall(r"'stored': (\d+)", text)]
        assert len(stored) == 2 and all(stored) and sum(stored) == 500, stored  # shared
    finally:
        for proc in ingests:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        server.stop()
