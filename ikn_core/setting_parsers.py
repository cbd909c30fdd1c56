"""Parsers of the settings' variables (ikn_core/settings.py): text to value, or a
ValueError saying what was expected."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ikn_core.contract.identifiers import ID, ID_RULE


@dataclass(frozen=True, slots=True)
class MqttUrl:
    """``mqtt://user:pass@host:1883`` or ``mqtts://...:8883`` (TLS)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> MqttUrl:
        parts = urlsplit(text)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError("scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("a host is required, as in mqtt://localhost:1883")
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return cls(
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "mqtts",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        auth = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{self.host}:{self.port}"


def database_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("scheme must be postgresql://, as in postgresql://user:pass@host:5432/db")
    try:
        _ = parts.port  # urlsplit checks the port only when it is read
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    return text


def int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return parse


def choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return parse


def on_off(text: str) -> bool:
    return choice("on", "off")(text) == "on"


def plain_text(text: str) -> str:
    return text


def ca_file(text: str) -> str:
    try:
        ssl.create_default_context(cafile=text)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"not a readable PEM CA file: {exc}") from None
    return text


def http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL, as in http://localhost:8086")
    return text


ROLE_NAMES = ("employee", "delegate", "supervisor", "facility_manager", "admin")
SAME_ROLES = tuple((r, r) for r in ROLE_NAMES)  # an IdP role named as ours grants it


def role_map(text: str) -> tuple[tuple[str, str], ...]:
    """``idp-role=our_role,...``: which identity-provider roles grant which of ours."""
    pairs = []
    for item in text.split(","):
        theirs, sep, ours = (part.strip() for part in item.partition("="))
        if not sep or not theirs or ours not in ROLE_NAMES:
            raise ValueError(f"expected idp-role=ROLE pairs, ROLE one of {', '.join(ROLE_NAMES)}")
        pairs.append((theirs, ours))
    return tuple(pairs)


def algorithms(text: str) -> tuple[str, ...]:
    allowed = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA")
    chosen = tuple(a.strip() for a in text.split(",") if a.strip())
    if not chosen or any(a not in allowed for a in chosen):
        raise ValueError(f"expected a comma-separated list of {', '.join(allowed)}")
    return chosen


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ValueError("expected a comma-separated list of names")
    return names


def flag(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ValueError("expected true or false")


def device_id(text: str) -> str:
    if not ID.fullmatch(text):
        raise ValueError(f"expected {ID_RULE}")
    return text


def site_key(text: str) -> bytes:
    """At least 16 bytes; a problem is reported without the value, a secret."""
    key = text.encode()
    if len(key) < 16:
        raise ValueError("expected at least 16 bytes")
    return key


def share_group(text: str) -> str:
    """A shared-subscription group name, or ``none`` for a plain subscription
    (brokers without MQTT 5 shared subscriptions, such as the embedded amqtt)."""
    if text == "none":
        return ""
    if any(c in text for c in "/+#"):
        raise ValueError("a group name cannot contain '/', '+' or '#' (or use 'none')")
    return text


def number(ok: Callable[[float], bool], malformed: str, outside: str) -> Callable[[str], float]:
    """A number for which ``ok`` holds; ``malformed`` or ``outside`` say what was expected."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(malformed) from None
        if not ok(value):
            raise ValueError(outside)
        return value

    return parse


positive_float = number(lambda v: v > 0, "expected a positive number", "expected a positive number")
# Seconds a simulated clock is off: a day either way.
skew = number(
    lambda v: -86_400 <= v <= 86_400,
    "expected seconds, e.g. 120 or -30",
    "expected seconds between -86400 and 86400",
)
