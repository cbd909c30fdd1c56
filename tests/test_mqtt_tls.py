"""MQTT over TLS (``mqtts://``) on a real Mosquitto with a private CA: an edge agent
and the ingest check the broker's certificate against ``IKN_MQTT_CA_FILE`` and a
reading crosses both TLS links into PostgreSQL; without the CA the agent does not
connect at all, and says why (the certificate does not verify)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_agent import EdgeAgent
from ikn.brokers import free_port, start_mosquitto
from ikn_core.contract import Observation
from ikn_core.settings import IngestSettings, MqttSettings, MqttUrl
from ingest.service import IngestService
from tests.helpers import eventually, fetch, seed


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("IKN test CA"))
        .issuer_name(_name("IKN test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    for path in paths:
        path.chmod(0o644)
    directory.chmod(0o755)  # Mosquitto may read them as its own user
    return paths


async def test_a_reading_crosses_tls_with_a_private_ca(tmp_path: Path, database_url: str) -> None:
    ca, cert, key = _certificates(tmp_path)
    tls_port = free_port()
    broker = start_mosquitto(
        tmp_path / "mosquitto",
        extra_conf=(
            f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
        ),
    )
    url = f"mqtts://127.0.0.1:{tls_port}"
    await seed(database_url)
    ingest = IngestService(
        IngestSettings.from_env(
            {
                "IKN_DATABASE_URL": database_url,
                "IKN_MQTT_URL": url,
                "IKN_MQTT_CA_FILE": str(ca),
                "IKN_INGEST_CLIENT_ID": "ingest-tls",
                "IKN_INGEST_BATCH_LATENCY_MS": "20",
            }
        )
    )
    stop = asyncio.Event()
    task = asyncio.create_task(ingest.run(stop))
    try:
        await eventually(lambda: asyncio.sleep(0, ingest), lambda s: s.subscribed or task.done())
        assert ingest.subscribed, "the ingest did not subscribe over TLS"

        untrusted = MqttSettings(MqttUrl.parse(url))  # the system's CAs do not know ours
        async with EdgeAgent("desk-d2", untrusted) as stranger:
            error = await eventually(
                lambda: asyncio.sleep(0, stranger.last_error), lambda e: e is not None
            )
            assert isinstance(error, ssl.SSLCertVerificationError), repr(error)
            assert "certificate verify failed" in str(error)
            assert not stranger.connected

        trusted = MqttSettings(MqttUrl.parse(url), ca_file=str(ca))
        async with EdgeAgent("desk-d1", trusted) as agent:
            async with asyncio.timeout(20):
                await agent.wait_connected()
            now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
            agent.submit(Observation("desk_occupancy", now_ms, {"occupied": True}))
            rows = await eventually(
                lambda: fetch(database_url, "SELECT device_id FROM readings"), lambda r: len(r) == 1
            )
        assert rows[0]["device_id"] == "desk-d1"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        broker.stop()


def test_a_ca_file_that_is_not_one_stops_the_service_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    from ikn_core.errors import SettingsError

    with pytest.raises(SettingsError, match="IKN_MQTT_CA_FILE"):
        IngestSettings.from_env(
            {
                "IKN_DATABASE_URL": "postgresql://x@127.0.0.1/db",
                "IKN_MQTT_URL": "mqtts://127.0.0.1",
                "IKN_MQTT_CA_FILE": str(bad),
            }
        )
