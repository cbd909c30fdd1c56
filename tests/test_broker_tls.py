"""``ikn tls init`` and deploy/mosquitto/mosquitto.conf's TLS listener on a real
Mosquitto: a client that verifies the broker against the generated ca.crt connects and
publishes; one that trusts another CA, or only the system's, is refused the handshake."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from paho.mqtt.enums import CallbackAPIVersion

from ikn.brokers import free_port
from tests.test_broker_acl import _accounts, start_production_mosquitto

HOSTS = ("localhost", "127.0.0.1")


def tls_init(out: Path, *hosts: str) -> subprocess.CompletedProcess[str]:
    args = [arg for host in hosts for arg in ("--host", host)]
    command = [sys.executable, "-m", "ikn", "tls", "init", "--out", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_tls_init_writes_a_ca_and_a_server_certificate_it_signed(tmp_path: Path) -> None:
    done = tls_init(tmp_path / "certs", *HOSTS)
    assert done.returncode == 0, done.stderr
    certs = tmp_path / "certs"
    modes = {p.name: p.stat().st_mode & 0o777 for p in certs.iterdir()}
    assert modes == {"ca.crt": 0o644, "ca.key": 0o600, "server.crt": 0o644, "server.key": 0o600}
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((certs / "server.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == list(HOSTS)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    again = tls_init(certs, *HOSTS)  # never replaces a CA
    assert again.returncode == 1 and "already holds" in again.stderr
    assert (certs / "ca.crt").read_bytes() == ca.public_bytes(serialization.Encoding.PEM)


def _connect(port: int, user: str, password: str, ca_file: Path | None) -> Any:
    """CONNACK's reason over TLS to ``localhost`` (the host name is checked), trusting
    ``ca_file`` or, without it, the system's CAs; raises on a refused handshake."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(ca_file) if ca_file else None, cert_reqs=ssl.CERT_REQUIRED)
    client.username_pw_set(user, password)
    reasons: list[Any] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: reasons.append(reason)
    client.connect("localhost", port)
    try:
        for _ in range(100):
            client.loop(timeout=0.2)
            if reasons:
                return reasons[0]
        raise AssertionError("no CONNACK")
    finally:
        client.disconnect()


@pytest.fixture
def tls_broker(database_url: str, tmp_path: Path) -> Any:
    certs = tmp_path / "certs"
    assert tls_init(certs, *HOSTS).returncode == 0
    passwords = _accounts(database_url, tmp_path / "auth")
    port = free_port()
    broker = start_production_mosquitto(
        tmp_path / "mosquitto", tmp_path / "auth", certs=certs, tls_port=port
    )
    yield port, certs, passwords
    broker.stop()


def test_the_broker_speaks_tls_to_clients_that_trust_its_ca(tls_broker: Any) -> None:
    port, certs, passwords = tls_broker
    reason = _connect(port, "dev-a", passwords["dev-a"], certs / "ca.crt")
    assert not reason.is_failure, reason


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_broker: Any, tmp_path: Path) -> None:
    port = tls_broker[0]
    assert tls_init(tmp_path / "other", *HOSTS).returncode == 0  # a CA of the same names
    for ca_file in (tmp_path / "other" / "ca.crt", None):
        context = ssl.create_default_context(cafile=ca_file)  # None: the system's CAs
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"),
        ):
            context.wrap_socket(raw, server_hostname="localhost")
    # the same handshake with the broker's own CA succeeds (no account needed for it)
    context = ssl.create_default_context(cafile=tls_broker[1] / "ca.crt")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_plain_mqtt_is_not_spoken_on_the_tls_port(tls_broker: Any) -> None:
    port, _, passwords = tls_broker
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("dev-a", passwords["dev-a"])
    reasons: list[Any] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: reasons.append(reason)
    client.connect("127.0.0.1", port)
    for _ in range(25):
        if client.loop(timeout=0.2) != mqtt.MQTT_ERR_SUCCESS:
            break
    assert reasons == [], "the TLS listener answered a plain CONNECT"
