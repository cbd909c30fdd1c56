"""A private CA and a server certificate for the broker (``ikn tls init``).

For a site without a public CA: the CA signs the broker's certificate, devices and
services trust the CA (``IKN_MQTT_CA_FILE=ca.crt``) and check the broker's name
against the certificate. ECDSA P-256 keys, SHA-256 signatures, the server certificate
valid for ``server_days`` (825 by default, the most a browser-era client accepts) and
the CA for ten years; the CA's key is needed again only to sign the next server
certificate, so it belongs offline, never in the broker's mount.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ikn.broker_config import write_private

FILES = ("ca.crt", "ca.key", "server.crt", "server.key")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def init(
    out: Path, hosts: Sequence[str], *, server_days: int = 825, ca_days: int = 3650
) -> TlsFiles:
    """Write a new CA and a server certificate for ``hosts`` (DNS names or IP addresses)
    into ``out``; keys 0600, certificates 0644. Refuses to replace existing files."""
    if not hosts:
        raise ValueError("at least one host name the broker is reached by is needed")
    paths = TlsFiles(*(out / name for name in FILES))
    existing = [name for name in FILES if (out / name).exists()]
    if existing:
        raise FileExistsError(f"{out} already holds {', '.join(existing)}: remove them first")
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"IKN Workspace private CA ({hosts[0]})")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=ca_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=server_days))
        .add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    out.mkdir(parents=True, exist_ok=True)
    write_private(paths.ca_key, _key_pem(ca_key))
    write_private(paths.server_key, _key_pem(key))
    for path, cert in ((paths.ca_cert, ca), (paths.server_cert, server)):
        write_private(path, cert.public_bytes(serialization.Encoding.PEM).decode())
        os.chmod(path, 0o644)
    return paths


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
