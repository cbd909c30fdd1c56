"""Settings of each service, read from environment variables.

Every variable is documented in docs/configuration.md. ``from_env`` collects
every problem before failing, so one start says all that is wrong; secrets
(passwords in URLs) never appear in ``repr`` or logs.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from ikn_core import device_logins
from ikn_core.contract.identifiers import ID, ID_RULE
from ikn_core.errors import SettingsError

T = TypeVar("T")


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


def _database_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("scheme must be postgresql://, as in postgresql://user:pass@host:5432/db")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    return text


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return parse


def _text(text: str) -> str:
    return text


# What .env.example holds in place of every secret: a service refuses to start with it.
PLACEHOLDER = "change-me"


class _Reader:
    """Reads variables from a mapping, collecting problems instead of raising at once."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str:
        """The variable's text, empty if unset or still the placeholder."""
        raw = self.env.get(name, "")
        return "" if self._placeholder(name, raw) else raw

    def _placeholder(self, name: str, raw: str) -> bool:
        """Whether ``raw`` still holds .env.example's placeholder (a password, a token,
        a key): a problem, reported without the value."""
        if PLACEHOLDER not in raw.lower():
            return False
        self.problems.append(
            f"{name} still holds the placeholder {PLACEHOLDER!r} of .env.example: "
            "replace it with a real secret (value not shown)"
        )
        return True

    def get(self, name: str, parse: Callable[[str], T], default: T | None = None) -> T:
        raw = self.env.get(name, "")
        if raw == "" or self._placeholder(name, raw):  # a placeholder is a problem already
            if raw == "" and default is None:
                self.problems.append(f"{name} is required (see docs/configuration.md)")
            # None only with a problem recorded: done() then raises before anyone reads it
            return default  # type: ignore[return-value]
        try:
            return parse(raw)
        except ValueError as exc:
            shown = redact_url(raw) if "://" in raw else raw
            self.problems.append(f"{name}={shown!r}: {exc}")
            return default  # type: ignore[return-value]  # only reached with problems recorded

    def done(self) -> None:
        if self.problems:
            raise SettingsError(self.problems)


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "INFO"
    format: str = "text"

    @classmethod
    def read(cls, r: _Reader) -> LogSettings:
        return cls(
            level=r.get("IKN_LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
            format=r.get("IKN_LOG_FORMAT", _choice("text", "json"), "text"),
        )


@dataclass(frozen=True, slots=True)
class MqttSettings:
    url: MqttUrl
    protocol: str = "5"  # "5" or "3.1.1" (the embedded amqtt broker speaks only 3.1.1)
    ca_file: str | None = None  # PEM CA bundle for mqtts:// (else the system's CAs)

    @classmethod
    def read(cls, r: _Reader, *, protocol: str = "5") -> MqttSettings:
        """``protocol``: the default of ``IKN_MQTT_PROTOCOL`` for this service."""
        return cls(
            url=r.get("IKN_MQTT_URL", MqttUrl.parse),
            protocol=r.get("IKN_MQTT_PROTOCOL", _choice("5", "3.1.1"), protocol),
            ca_file=r.get("IKN_MQTT_CA_FILE", _ca_file, "") or None,
        )

    def with_login(self, username: str, password: str) -> MqttSettings:
        """The same broker, logged in as someone else (a simulated device as itself)."""
        return replace(self, url=replace(self.url, username=username, password=password))

    def tls_context(self) -> ssl.SSLContext:
        """For ``mqtts://``: the broker's certificate checked against ``ca_file`` (a
        private CA) or the system's CAs, and its host name against the URL."""
        return ssl.create_default_context(cafile=self.ca_file)


def _ca_file(text: str) -> str:
    try:
        ssl.create_default_context(cafile=text)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"not a readable PEM CA file: {exc}") from None
    return text


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = field(repr=False)
    pool_max: int = 10

    @classmethod
    def read(cls, r: _Reader) -> DatabaseSettings:
        return cls(
            url=r.get("IKN_DATABASE_URL", _database_url),
            pool_max=r.get("IKN_DATABASE_POOL_MAX", _int_between(2, 200), 10),
        )


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    """The optional InfluxDB v2 sink of the ingest (``IKN_INFLUX_URL`` empty: none)."""

    url: str
    org: str
    bucket: str
    token: str = field(default="", repr=False)  # secret: never logged
    batch_size: int = 5000
    flush_ms: int = 1000
    buffer_max: int = 200_000
    timeout_ms: int = 10_000

    @classmethod
    def read(cls, r: _Reader) -> InfluxSettings | None:
        url = r.get("IKN_INFLUX_URL", _http_url, "")
        if not url:
            return None
        return cls(
            url=url,
            org=r.get("IKN_INFLUX_ORG", _text),
            bucket=r.get("IKN_INFLUX_BUCKET", _text),
            token=r.raw("IKN_INFLUX_TOKEN"),
            batch_size=r.get("IKN_INFLUX_BATCH_SIZE", _int_between(1, 100_000), 5000),
            flush_ms=r.get("IKN_INFLUX_FLUSH_MS", _int_between(1, 60_000), 1000),
            buffer_max=r.get("IKN_INFLUX_BUFFER_MAX", _int_between(1, 10_000_000), 200_000),
            timeout_ms=r.get("IKN_INFLUX_TIMEOUT_MS", _int_between(100, 600_000), 10_000),
        )


def _http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL, as in http://localhost:8086")
    return text


@dataclass(frozen=True, slots=True)
class IngestSettings:
    db: DatabaseSettings
    mqtt: MqttSettings
    log: LogSettings
    client_id: str
    share_group: str = "ikn-ingest"
    batch_max_readings: int = 5000
    batch_latency_ms: int = 100
    queue_max_messages: int = 1000
    queue_max_bytes: int = 64 * 1024 * 1024  # payload bytes waiting, at about most
    writers: int = 2  # batches written at once, each on its own connection
    retention_days: int = 90
    dead_letter_retention_days: int = 30
    dead_letter_keep_per_hour: int = 100  # payloads per device and reason, then sampled
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    influx: InfluxSettings | None = None
    desk_vacant_grace_s: int = 300
    stored_notices: bool = True  # end-to-end acknowledgement on each device's down topic
    stored_interval_ms: int = 1000  # notices of commits this close together go as one

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngestSettings:
        r = _Reader(os.environ if env is None else env)
        settings = cls(
            db=DatabaseSettings.read(r),
            # MQTT 3.1.1 by default: paho parses no properties per message, 40 % more
            # messages/s per process; the broker's persistent_client_expiration then
            # bounds the session instead of the client's expiry (docs/configuration.md).
            mqtt=MqttSettings.read(r, protocol="3.1.1"),
            log=LogSettings.read(r),
            client_id=r.get("IKN_INGEST_CLIENT_ID", _text, f"ikn-ingest-{socket.gethostname()}"),
            share_group=r.get("IKN_INGEST_SHARE_GROUP", _share_group, "ikn-ingest"),
            batch_max_readings=r.get("IKN_INGEST_BATCH_MAX", _int_between(1, 100_000), 5000),
            batch_latency_ms=r.get("IKN_INGEST_BATCH_LATENCY_MS", _int_between(1, 10_000), 100),
            queue_max_messages=r.get("IKN_INGEST_QUEUE_MAX", _int_between(1, 1_000_000), 1000),
            queue_max_bytes=r.get(
                "IKN_INGEST_QUEUE_MAX_BYTES", _int_between(1 << 20, 1 << 34), 64 * 1024 * 1024
            ),
            writers=r.get("IKN_INGEST_WRITERS", _int_between(1, 8), 2),
            retention_days=r.get("IKN_RETENTION_DAYS", _int_between(1, 3650), 90),
            dead_letter_retention_days=r.get(
                "IKN_DEAD_LETTER_RETENTION_DAYS", _int_between(1, 3650), 30
            ),
            dead_letter_keep_per_hour=r.get(
                "IKN_DEAD_LETTER_KEEP_PER_HOUR", _int_between(1, 1_000_000), 100
            ),
            metrics_host=r.get("IKN_INGEST_METRICS_HOST", _text, "127.0.0.1"),
            metrics_port=r.get("IKN_INGEST_METRICS_PORT", _int_between(0, 65535), 0),
            influx=InfluxSettings.read(r),
            desk_vacant_grace_s=r.get("IKN_DESK_VACANT_GRACE_S", _int_between(0, 86_400), 300),
            stored_notices=r.get("IKN_INGEST_STORED_NOTICES", _choice("on", "off"), "on") == "on",
            stored_interval_ms=r.get(
                "IKN_INGEST_STORED_INTERVAL_MS", _int_between(0, 10_000), 1000
            ),
        )
        r.done()
        return settings


_ROLE_NAMES = ("employee", "delegate", "supervisor", "facility_manager", "admin")
_SAME_ROLES = tuple((r, r) for r in _ROLE_NAMES)  # an IdP role named as ours grants it


def _role_map(text: str) -> tuple[tuple[str, str], ...]:
    """``idp-role=our_role,...``: which identity-provider roles grant which of ours."""
    pairs = []
    for item in text.split(","):
        theirs, sep, ours = (part.strip() for part in item.partition("="))
        if not sep or not theirs or ours not in _ROLE_NAMES:
            raise ValueError(f"expected idp-role=ROLE pairs, ROLE one of {', '.join(_ROLE_NAMES)}")
        pairs.append((theirs, ours))
    return tuple(pairs)


def _algorithms(text: str) -> tuple[str, ...]:
    allowed = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA")
    chosen = tuple(a.strip() for a in text.split(",") if a.strip())
    if not chosen or any(a not in allowed for a in chosen):
        raise ValueError(f"expected a comma-separated list of {', '.join(allowed)}")
    return chosen


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ValueError("expected a comma-separated list of names")
    return names


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """OIDC bearer tokens (JWT access tokens, e.g. from Keycloak); ``IKN_OIDC_ISSUER``
    empty: off. Without ``IKN_OIDC_JWKS_URL`` the keys are found by discovery."""

    issuer: str
    audience: str
    jwks_url: str = ""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    # ``sub`` never changes for an account; ``preferred_username`` is one a realm may
    # let its users edit, so it cannot be the default (a realm's NIP attribute can).
    person_claim: str = "sub"
    # Client roles of our own client, so that another application's ``admin`` in a
    # shared government realm is not ours; realm roles only through an explicit map.
    roles_claim: str = "resource_access.ikn-api.roles"  # read: of IKN_OIDC_CLIENT_ID
    role_map: tuple[tuple[str, str], ...] = _SAME_ROLES
    leeway_s: int = 60
    http_timeout_s: float = 5.0
    jwks_min_refresh_s: int = 60
    client_id: str = "ikn-api"  # our client in the IdP; read: defaults to the audience
    allowed_clients: tuple[str, ...] = ()  # the ``azp`` accepted; empty: any

    @classmethod
    def read(cls, r: _Reader) -> OidcSettings | None:
        issuer = r.get("IKN_OIDC_ISSUER", _http_url, "")
        if not issuer:
            return None
        audience = r.get("IKN_OIDC_AUDIENCE", _text)
        client_id = r.get("IKN_OIDC_CLIENT_ID", _text, "") or audience
        roles_claim = r.get("IKN_OIDC_ROLES_CLAIM", _text, "")
        own_roles = f"resource_access.{client_id}.roles"
        if roles_claim not in ("", own_roles) and not r.env.get("IKN_OIDC_ROLE_MAP"):
            r.problems.append(
                f"IKN_OIDC_ROLE_MAP is required with IKN_OIDC_ROLES_CLAIM={roles_claim}: those "
                "are not our own client's roles, so map each one that grants one of ours, "
                "e.g. ikn-admin=admin"
            )
        return cls(
            issuer=issuer,
            audience=audience,
            jwks_url=r.get("IKN_OIDC_JWKS_URL", _http_url, ""),
            algorithms=r.get("IKN_OIDC_ALGORITHMS", _algorithms, ("RS256", "ES256")),
            person_claim=r.get("IKN_OIDC_PERSON_CLAIM", _text, "sub"),
            roles_claim=roles_claim or own_roles,
            role_map=r.get("IKN_OIDC_ROLE_MAP", _role_map, _SAME_ROLES),
            client_id=client_id,
            allowed_clients=r.get("IKN_OIDC_ALLOWED_CLIENTS", _names, ()),
            leeway_s=r.get("IKN_OIDC_LEEWAY_S", _int_between(0, 600), 60),
            http_timeout_s=r.get("IKN_OIDC_HTTP_TIMEOUT_S", _positive_float, 5.0),
            jwks_min_refresh_s=r.get("IKN_OIDC_JWKS_MIN_REFRESH_S", _int_between(0, 3600), 60),
        )


DEFAULT_BATCH_LANES = 3


def _batch_lanes(r: _Reader, pool_max: int) -> int:
    """``IKN_API_BATCH_LANES``: both kinds of batch together may hold two thirds of the
    pool at most (the rest serves reads); unset, 3 or what the pool allows."""
    most = max(1, pool_max // 3)
    if not r.env.get("IKN_API_BATCH_LANES"):
        return min(DEFAULT_BATCH_LANES, most)
    lanes = r.get("IKN_API_BATCH_LANES", _int_between(1, 64), DEFAULT_BATCH_LANES)
    if lanes > most:
        r.problems.append(
            f"IKN_API_BATCH_LANES={lanes}: at most {most} with IKN_DATABASE_POOL_MAX={pool_max} "
            "(bookings and token lookups take a connection per lane each; keep a third "
            "of the pool for reads)"
        )
    return lanes


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Limits of the live SSE streams (``GET /api/v1/occupancy/stream``)."""

    per_token: int = 4  # open streams one bearer token may hold
    total: int = 500  # open streams in one API process
    recheck_s: float = 60.0  # how often an open stream checks its token again

    @classmethod
    def read(cls, r: _Reader) -> StreamSettings:
        return cls(
            per_token=r.get("IKN_SSE_MAX_PER_TOKEN", _int_between(1, 1000), 4),
            total=r.get("IKN_SSE_MAX_STREAMS", _int_between(1, 100_000), 500),
            recheck_s=r.get("IKN_SSE_RECHECK_S", _positive_float, 60.0),
        )


# -- Issue 16: token expiry, write rate limits, security headers ------------------------


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """``ikn token create``: days until a new token expires (0: never)."""

    person_days: int = 90  # a token acting for a person
    service_days: int = 0  # a token of no one (a service)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TokenSettings:
        r = _Reader(os.environ if env is None else env)
        settings = cls(
            person_days=r.get("IKN_TOKEN_DAYS", _int_between(0, 3650), 90),
            service_days=r.get("IKN_SERVICE_TOKEN_DAYS", _int_between(0, 3650), 0),
        )
        r.done()
        return settings


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """The API's write rate limit per token (a token bucket in each API process) and
    whether a reverse proxy's ``X-Forwarded-Proto`` is believed (for HSTS)."""

    # Far above a person's use, and above what the test suite's schemathesis runs ask
    # of one token (about 1,100 writes in 28 s, up to 800 in 10 s, 300 in 1 s).
    write_rate: float = 50.0  # writes per second a token may keep up
    write_burst: int = 600  # writes a token may make at once
    trusted_proxy: bool = False

    @classmethod
    def read(cls, r: _Reader) -> GuardSettings:
        return cls(
            write_rate=r.get("IKN_API_WRITE_RATE", _positive_float, 50.0),
            write_burst=r.get("IKN_API_WRITE_BURST", _int_between(1, 1_000_000), 600),
            trusted_proxy=r.get("IKN_API_TRUSTED_PROXY", _flag, False),
        )


def _flag(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ValueError("expected true or false")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    db: DatabaseSettings
    log: LogSettings
    host: str = "127.0.0.1"
    port: int = 8080
    release_interval_s: int = 60
    attendance_interval_s: float = 2.0  # how often dirty attendance days are recomputed
    attendance_policy: str = ""  # a policy TOML file; empty: the national default
    analytics_interval_s: float = 30.0  # how often dirty analytics rollups are recomputed
    oidc: OidcSettings | None = None  # OIDC bearer tokens; None: API tokens only
    streams: StreamSettings = StreamSettings()
    guard: GuardSettings = GuardSettings()  # write rate limits, HSTS behind a proxy
    mqtt: MqttSettings | None = None  # to send device commands; None: commands answer 503
    command_ttl_s: int = 300  # a device command not answered by then is expired
    # Booking batches (and token-lookup batches) in flight at once, each on its own
    # connection (api/coalesce.py). About the database's cores + 1: more only take
    # turns on its CPU and wait on each other's locks (docs/api.md, "Group commit").
    batch_lanes: int = DEFAULT_BATCH_LANES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        r = _Reader(os.environ if env is None else env)
        with_mqtt = bool(r.env.get("IKN_MQTT_URL"))
        db = DatabaseSettings.read(r)
        settings = cls(
            db=db,
            log=LogSettings.read(r),
            host=r.get("IKN_API_HOST", _text, "127.0.0.1"),
            port=r.get("IKN_API_PORT", _int_between(0, 65535), 8080),
            release_interval_s=r.get("IKN_BOOKING_RELEASE_INTERVAL_S", _int_between(1, 3600), 60),
            attendance_interval_s=r.get("IKN_ATTENDANCE_INTERVAL_S", _positive_float, 2.0),
            attendance_policy=r.get("IKN_ATTENDANCE_POLICY", _text, ""),
            analytics_interval_s=r.get("IKN_ANALYTICS_INTERVAL_S", _positive_float, 30.0),
            oidc=OidcSettings.read(r),
            streams=StreamSettings.read(r),
            guard=GuardSettings.read(r),
            mqtt=MqttSettings.read(r) if with_mqtt else None,
            command_ttl_s=r.get("IKN_COMMAND_TTL_S", _int_between(10, 86_400), 300),
            batch_lanes=_batch_lanes(r, db.pool_max),
        )
        r.done()
        return settings


@dataclass(frozen=True, slots=True)
class MigrateSettings:
    db: DatabaseSettings
    log: LogSettings
    # ``ikn migrate`` only: an administrator's URL; set, the migrations run as a
    # migration role and IKN_DATABASE_URL's user becomes the application role
    # (ikn_store/roles.py). Unset: IKN_DATABASE_URL's user migrates (one role).
    migrate_url: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MigrateSettings:
        r = _Reader(os.environ if env is None else env)
        settings = cls(
            db=DatabaseSettings.read(r),
            log=LogSettings.read(r),
            migrate_url=r.get("IKN_DATABASE_MIGRATE_URL", _database_url, "") or None,
        )
        r.done()
        return settings


@dataclass(frozen=True, slots=True)
class BadgeSettings:
    """``ikn badge enrol``: the database and the site key that turns a card number into
    the badge token the edge agents send (the card number itself is never stored)."""

    db: DatabaseSettings
    log: LogSettings
    site_key: bytes = field(repr=False)  # secret: never logged

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BadgeSettings:
        r = _Reader(os.environ if env is None else env)
        db, log = DatabaseSettings.read(r), LogSettings.read(r)
        key = _site_key(r)
        if key is None and "IKN_SITE_KEY" not in " ".join(r.problems):
            r.problems.append("IKN_SITE_KEY is required (see docs/configuration.md)")
        r.done()
        assert key is not None
        return cls(db=db, log=log, site_key=key)


@dataclass(frozen=True, slots=True)
class SimSettings:
    """``ikn sim``: runs simulated devices, each behind its own edge agent."""

    mqtt: MqttSettings
    log: LogSettings
    speed: float = 1.0
    seed: int = 0
    site_key: bytes | None = field(default=None, repr=False)  # for simulated badge readers
    clock_skew_s: float = 0.0  # fault injection: the devices' clocks this far ahead (or behind)
    # Each device logs in as itself with these passwords (IKN_SIM_LOGINS_FILE); empty:
    # every device logs in with IKN_MQTT_URL's user (a broker without accounts).
    device_passwords: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SimSettings:
        r = _Reader(os.environ if env is None else env)
        settings = cls(
            mqtt=MqttSettings.read(r),
            log=LogSettings.read(r),
            speed=r.get("IKN_SIM_SPEED", _positive_float, 1.0),
            seed=r.get("IKN_SIM_SEED", _int_between(0, 2**31), 0),
            site_key=_site_key(r),
            clock_skew_s=r.get("IKN_SIM_CLOCK_SKEW_S", _skew, 0.0),
            device_passwords=r.get("IKN_SIM_LOGINS_FILE", device_logins.read, {}),
        )
        r.done()
        return settings


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """``ikn edge-agent``: one device's edge agent, its durable outbox and its driver."""

    mqtt: MqttSettings
    log: LogSettings
    device_id: str
    outbox_path: str = "ikn-outbox.db"
    outbox_max_readings: int = 1_000_000
    outbox_sync: str = "FULL"  # SQLite synchronous= (FULL survives power loss)
    site_key: bytes | None = field(default=None, repr=False)  # secret: never logged
    driver: str = "sim"  # "sim" or "serial"
    serial_port: str = ""  # the serial driver's port (required with it)
    sim_scenario: str = "demo"
    speed: float = 1.0
    seed: int = 0
    await_stored: bool = True  # keep readings until the ingest's stored notice
    stored_timeout_s: float = 30.0  # resend what no notice confirmed after this (doubling)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EdgeSettings:
        r = _Reader(os.environ if env is None else env)
        settings = cls(
            mqtt=MqttSettings.read(r),
            log=LogSettings.read(r),
            device_id=r.get("IKN_DEVICE_ID", _device_id),
            outbox_path=r.get("IKN_OUTBOX_PATH", _text, "ikn-outbox.db"),
            outbox_max_readings=r.get(
                "IKN_OUTBOX_MAX_READINGS", _int_between(100, 100_000_000), 1_000_000
            ),
            outbox_sync=r.get("IKN_OUTBOX_SYNC", _choice("FULL", "NORMAL"), "FULL"),
            site_key=_site_key(r),
            driver=r.get("IKN_EDGE_DRIVER", _choice("sim", "serial"), "sim"),
            serial_port=r.get("IKN_SERIAL_PORT", _text, ""),
            sim_scenario=r.get("IKN_SIM_SCENARIO", _text, "demo"),
            speed=r.get("IKN_SIM_SPEED", _positive_float, 1.0),
            seed=r.get("IKN_SIM_SEED", _int_between(0, 2**31), 0),
            await_stored=r.get("IKN_EDGE_AWAIT_STORED", _choice("on", "off"), "on") == "on",
            stored_timeout_s=r.get("IKN_EDGE_STORED_TIMEOUT_S", _int_between(1, 3600), 30),
        )
        if settings.driver == "serial" and not settings.serial_port:
            r.problems.append("IKN_SERIAL_PORT is required with IKN_EDGE_DRIVER=serial")
        r.done()
        return settings


def _device_id(text: str) -> str:
    if not ID.fullmatch(text):
        raise ValueError(f"expected {ID_RULE}")
    return text


def _site_key(r: _Reader) -> bytes | None:
    """IKN_SITE_KEY: optional (only badge readers need it), at least 16 bytes; a
    problem is reported without the value, which is a secret."""
    raw = r.raw("IKN_SITE_KEY")
    if raw == "":
        return None
    key = raw.encode()
    if len(key) < 16:
        r.problems.append("IKN_SITE_KEY: expected at least 16 bytes (value not shown)")
        return None
    return key


def _share_group(text: str) -> str:
    """A shared-subscription group name, or ``none`` for a plain subscription
    (brokers without MQTT 5 shared subscriptions, such as the embedded amqtt)."""
    if text == "none":
        return ""
    if any(c in text for c in "/+#"):
        raise ValueError("a group name cannot contain '/', '+' or '#' (or use 'none')")
    return text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a positive number") from None
    if not value > 0:
        raise ValueError("expected a positive number")
    return value


def _skew(text: str) -> float:
    """Seconds a simulated clock is off: -86400..86400 (a day either way)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected seconds, e.g. 120 or -30") from None
    if not -86_400 <= value <= 86_400:
        raise ValueError("expected seconds between -86400 and 86400")
    return value


def describe(settings: Any) -> str:
    """A one-line, secret-free summary for the start-up log line."""
    return repr(settings)
