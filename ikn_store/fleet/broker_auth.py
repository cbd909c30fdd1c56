"""Broker credentials: random passwords shown once, kept as Mosquitto PBKDF2 hashes.

A hash is stored exactly as a line of Mosquitto's password file needs it
(``$7$iterations$salt$hash``, PBKDF2-HMAC-SHA512, standard base64), so the broker
configuration is produced from the database alone. The passwords are 32 random
bytes, so the iteration count guards nothing a guess could reach; Mosquitto's own
default (101) keeps each CONNECT cheap for the broker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

import asyncpg

ITERATIONS = 101
SALT_BYTES = 12


class ServiceRole(StrEnum):
    """What a platform's own broker account may do (its ACL block)."""

    INGEST = "ingest"
    API = "api"
    SIM = "sim"


_NAME_SUFFIX = re.compile(r"(-[a-z0-9]+)*")
NAME_MAX = 60  # with "svc.", the 64 characters broker_accounts_username_check allows


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A service account: ``svc.<name>``, where the name is the role itself or the role
    followed by ``-`` and a suffix (``ingest-2``): one account per process connected at
    the same time, since the broker's client id is the user name."""

    role: ServiceRole
    name: str

    def __post_init__(self) -> None:
        suffix = self.name.removeprefix(self.role.value)
        if suffix == self.name or not _NAME_SUFFIX.fullmatch(suffix) or len(self.name) > NAME_MAX:
            raise ValueError(
                f"account name {self.name!r}: {self.role.value!r} or "
                f"{self.role.value}-<suffix> (a-z, 0-9, '-'), at most {NAME_MAX} characters"
            )

    @classmethod
    def of(cls, role: ServiceRole, name: str | None = None) -> ServiceAccount:
        return cls(role, name or role.value)

    @property
    def username(self) -> str:
        return f"svc.{self.name}"


@dataclass(frozen=True, slots=True)
class BrokerUser:
    """One line of the password file."""

    username: str
    password_hash: str
    role: ServiceRole | None = None  # None: a device, confined to its own topics


def new_password() -> str:
    return secrets.token_urlsafe(32)


def mosquitto_hash(
    password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None
) -> str:
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (as Mosquitto would decide)."""
    try:
        _, seven, iterations, salt, digest = hashed.split("$")
        if seven != "7":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt, validate=True), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(expected, actual)


async def set_service_password(conn: asyncpg.Connection, account: ServiceAccount) -> str:
    """Create or rotate a service account; returns its new password (shown once)."""
    password = new_password()
    await conn.execute(
        """INSERT INTO broker_accounts (username, role, password_hash) VALUES ($1, $2, $3)
           ON CONFLICT (username) DO UPDATE
           SET password_hash = EXCLUDED.password_hash, created_at = now()""",
        account.username,
        account.role.value,
        mosquitto_hash(password),
    )
    return password


async def remove_service_account(conn: asyncpg.Connection, account: ServiceAccount) -> bool:
    """Retire an account (a replica gone for good); False if there was none."""
    status = await conn.execute("DELETE FROM broker_accounts WHERE username = $1", account.username)
    return bool(status != "DELETE 0")


async def broker_users(conn: asyncpg.Connection) -> list[BrokerUser]:
    """Every account the broker should admit: service accounts, then enabled devices."""
    services = await conn.fetch(
        "SELECT username, role, password_hash FROM broker_accounts ORDER BY username"
    )
    devices = await conn.fetch(
        """SELECT c.device_id, c.password_hash FROM device_credentials c
           JOIN devices d ON d.id = c.device_id
           WHERE d.enabled ORDER BY c.device_id"""
    )
    return [
        *(BrokerUser(r["username"], r["password_hash"], ServiceRole(r["role"])) for r in services),
        *(BrokerUser(r["device_id"], r["password_hash"]) for r in devices),
    ]
