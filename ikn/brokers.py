"""The MQTT brokers that ``ikn demo`` and the tests start as child processes.

Mosquitto when its binary is installed (the production broker), else an
embedded amqtt broker (MQTT 3.1.1 only, no shared subscriptions).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the `mosquitto` binary was not found on PATH or in /usr/sbin; install it with "
    "`sudo apt-get install mosquitto mosquitto-clients` (Debian/Ubuntu), "
    "`sudo dnf install mosquitto` (Fedora) or `brew install mosquitto` (macOS)"
)


class BrokerError(RuntimeError):
    """A broker could not be started."""


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


# Ports for the services the demo and the tests start come from below Linux's ephemeral
# range (32768-60999), which the kernel also hands to every outgoing connection: a port
# found free there can be taken by some client's socket before the service binds it (seen
# with parallel test workers). At random, so that two processes rarely try the same one.
PORTS = range(20_000, 32_000)


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on now."""
    for _ in range(200):
        port = random.choice(PORTS)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        return port
    raise BrokerError(f"no free port on {host} in {PORTS.start}-{PORTS.stop - 1}")


def wait_for_port(
    host: str,
    port: int,
    proc: subprocess.Popen[bytes],
    timeout: float,
    *,
    log_path: Path | None = None,
    ready_line: bytes = b"",
) -> None:
    """Wait until ``proc`` listens: its log shows ``ready_line`` (when given: another
    process on the same port would fool a mere connection test) and the port accepts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"broker exited with status {proc.returncode} before listening")
        if log_path is not None and ready_line not in log_path.read_bytes():
            time.sleep(0.02)
            continue
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise BrokerError(f"broker did not listen on {host}:{port} within {timeout} s")


class BrokerProcess:
    """A broker child process listening on 127.0.0.1:port; stop() ends it."""

    host = "127.0.0.1"

    def __init__(self, kind: str, port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.kind = kind
        self.port = port
        self.proc = proc
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def protocol(self) -> str:
        """The newest MQTT version the broker speaks."""
        return "5" if self.kind == "mosquitto" else "3.1.1"

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_mosquitto(
    workdir: Path, port: int | None = None, extra_conf: str = "", auth_dir: Path | None = None
) -> BrokerProcess:
    """Start a private Mosquitto on a free loopback port, configured under ``workdir``.

    With ``auth_dir`` (holding ``passwd`` and ``acl``, as ``ikn broker-config`` writes
    them) anonymous clients are refused, those files decide who may do what, and each
    client's id is its user name, as in production (``use_username_as_clientid`` is a
    listener's option: a listener added by ``extra_conf`` does not have it)."""
    port = port or free_port()
    return run_mosquitto(
        workdir,
        port,
        f"listener {port} 127.0.0.1\n"
        f"{_auth_conf(auth_dir)}"
        "persistence false\n"
        "max_queued_messages 100000\n"
        "max_inflight_messages 1000\n"
        "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        f"{extra_conf}",
    )


def run_mosquitto(workdir: Path, port: int, conf_text: str) -> BrokerProcess:
    """Start Mosquitto with ``conf_text`` (written to ``workdir/mosquitto.conf``), which
    listens on 127.0.0.1:``port``; returns once its log says it runs."""
    binary = find_mosquitto()
    if binary is None:
        raise BrokerError(INSTALL_HINT)
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(conf_text)
    log_path = workdir / "mosquitto.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=out)
    broker = BrokerProcess("mosquitto", port, proc, log_path)
    _wait_or_stop(broker, b" running")
    return broker


def _auth_conf(auth_dir: Path | None) -> str:
    if auth_dir is None:
        return "allow_anonymous true\n"
    # Run as root, Mosquitto would switch to the `mosquitto` user, who may not read the
    # 0600 files we own: keep it as us (in production the files belong to its uid).
    keep_user = "user root\n" if os.geteuid() == 0 else ""
    return (
        f"{keep_user}"
        "allow_anonymous false\n"
        "use_username_as_clientid true\n"
        f"password_file {auth_dir.resolve() / 'passwd'}\n"
        f"acl_file {auth_dir.resolve() / 'acl'}\n"
    )


def start_amqtt(workdir: Path, port: int | None = None) -> BrokerProcess:
    """Start the embedded amqtt broker (``python -m ikn.amqtt_broker``) on a free port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / "amqtt.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ikn.amqtt_broker", "--port", str(port)],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    broker = BrokerProcess("amqtt", port, proc, log_path)
    _wait_or_stop(broker)
    return broker


def _wait_or_stop(broker: BrokerProcess, ready_line: bytes = b"") -> None:
    try:
        wait_for_port(
            broker.host,
            broker.port,
            broker.proc,
            15,
            log_path=broker.log_path if ready_line else None,
            ready_line=ready_line,
        )
    except BrokerError as exc:
        broker.stop()
        tail = broker.log_path.read_text(errors="replace")[-2000:]
        raise BrokerError(f"{broker.kind}: {exc}\n{tail}") from None
    log.info("%s listening on %s (log: %s)", broker.kind, broker.url, broker.log_path)
