"""Settings of each service, read from environment variables.

Each variable is declared once below (a ``Setting``: name, parser, doc, secret) and
used as the field of a frozen dataclass whose default is its default for that
service (none: required). ``ikn_core.setting.read`` builds any of them, listing every
problem before failing; secrets (passwords in URLs, keys, tokens) never appear in
``repr`` or logs. The parsers are in ``ikn_core/setting_parsers.py``. The table of
docs/configuration.md is generated from here:
``python -m ikn_core.settings --write docs/configuration.md``.
"""

from __future__ import annotations

import socket
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ikn_core import device_logins, generated
from ikn_core import setting_parsers as parse
from ikn_core.contract.identifiers import ID_RULE
from ikn_core.setting import PLACEHOLDER, Reader, Setting, markdown, nested, read, setting
from ikn_core.setting_parsers import MqttUrl

__all__ = [
    "PLACEHOLDER",
    "ApiSettings",
    "BadgeSettings",
    "DatabaseSettings",
    "DisruptionSettings",
    "EdgeSettings",
    "GuardSettings",
    "InfluxSettings",
    "IngestSettings",
    "LogSettings",
    "MigrateSettings",
    "MqttSettings",
    "MqttUrl",
    "OidcSettings",
    "RetentionSettings",
    "SimSettings",
    "StreamSettings",
    "TokenSettings",
    "describe",
]


# -- The variables ---------------------------------------------------------------------

LOG_LEVEL = Setting(
    "IKN_LOG_LEVEL",
    parse.choice("DEBUG", "INFO", "WARNING", "ERROR"),
    "`DEBUG`, `INFO`, `WARNING` or `ERROR`",
)
LOG_FORMAT = Setting(
    "IKN_LOG_FORMAT",
    parse.choice("text", "json"),
    (
        "`text` for people, `json` (one object a line) for log collectors, with `ts` (ISO "
        "8601, UTC), `level`, `logger`, `msg`, `role` (`ingest`, `api`, …) and, after an "
        "error, `exc` (the traceback)"
    ),
)
MQTT_URL = Setting(
    "IKN_MQTT_URL",
    MqttUrl.parse,
    (
        "`mqtt://user:pass@host:1883`, or `mqtts://` for TLS (port 8883 by default); the "
        "API's (account `svc.api`, optional) sends device commands: unset, `POST "
        "/api/v1/devices/{id}/commands` answers 503"
    ),
)
MQTT_PROTOCOL = Setting(
    "IKN_MQTT_PROTOCOL",
    parse.choice("5", "3.1.1"),
    (
        "`5` or `3.1.1` (the embedded amqtt broker speaks only 3.1.1). The ingest defaults to"
        " 3.1.1: paho then parses no properties per message, which gave 13,600–15,400 "
        "messages/s per process at one reading per message against 9,400–11,000 on MQTT 5. On"
        " 3.1.1 its persistent session lasts until the broker's "
        "`persistent_client_expiration` (7 days in deploy/mosquitto) instead of the 7-day "
        "session expiry the ingest asks for on MQTT 5; shared subscriptions work on both "
        "(Mosquitto, EMQX, HiveMQ)"
    ),
)
MQTT_CA_FILE = Setting(
    "IKN_MQTT_CA_FILE",
    parse.ca_file,
    (
        "for `mqtts://` URLs: PEM file of the CA that signed the broker's certificate (a "
        "private CA); unset: the system's CAs. The broker's certificate and host name are "
        "always checked; a file that is not a readable PEM CA stops the service at start"
    ),
)
DATABASE_URL = Setting(
    "IKN_DATABASE_URL",
    parse.database_url,
    "`postgresql://user:pass@host:5432/db`",
    hidden=True,
)
DATABASE_POOL_MAX = Setting(
    "IKN_DATABASE_POOL_MAX",
    parse.int_between(2, 200),
    "connections per process (2–200)",
)
INFLUX_URL = Setting(
    "IKN_INFLUX_URL",
    parse.http_url,
    (
        "also write stored readings to this InfluxDB v2 (`http://host:8086`); unset: no sink "
        "(see docs/ingest.md)"
    ),
)
INFLUX_ORG = Setting(
    "IKN_INFLUX_ORG",
    parse.plain_text,
    "InfluxDB organisation",
)
INFLUX_BUCKET = Setting(
    "IKN_INFLUX_BUCKET",
    parse.plain_text,
    "InfluxDB bucket",
)
INFLUX_TOKEN = Setting(
    "IKN_INFLUX_TOKEN",
    parse.plain_text,
    "InfluxDB API token; a secret, never logged",
    secret=True,
)
INFLUX_BATCH_SIZE = Setting(
    "IKN_INFLUX_BATCH_SIZE",
    parse.int_between(1, 100_000),
    "most readings in one write request (1–100 000)",
)
INFLUX_FLUSH_MS = Setting(
    "IKN_INFLUX_FLUSH_MS",
    parse.int_between(1, 60_000),
    "longest a reading waits before its write request (1–60 000)",
)
INFLUX_BUFFER_MAX = Setting(
    "IKN_INFLUX_BUFFER_MAX",
    parse.int_between(1, 10_000_000),
    (
        "readings waiting for InfluxDB; when full, new ones are dropped and counted "
        '(`ikn_ingest_influx_dropped_total{reason="buffer_full"}`), PostgreSQL is never held '
        "up"
    ),
)
INFLUX_TIMEOUT_MS = Setting(
    "IKN_INFLUX_TIMEOUT_MS",
    parse.int_between(100, 600_000),
    "timeout of one write request (100–600 000)",
)
INGEST_CLIENT_ID = Setting(
    "IKN_INGEST_CLIENT_ID",
    parse.plain_text,
    (
        "MQTT client id; keep it stable per replica: the broker keeps the session "
        "(unacknowledged messages) under it. A broker that binds client ids to user names "
        "(`use_username_as_clientid`, as deploy/mosquitto does) ignores it and keys the "
        "session by the account: there, give each replica its own account (`svc.ingest-1`, "
        "`svc.ingest-2`) instead, see below"
    ),
    shown="`ikn-ingest-<hostname>`",
)
INGEST_SHARE_GROUP = Setting(
    "IKN_INGEST_SHARE_GROUP",
    parse.share_group,
    (
        "shared-subscription group spreading devices over replicas; `none` for a plain "
        "subscription. The group is a name, not an account: replicas with accounts of their "
        "own share it as before"
    ),
)
INGEST_BATCH_MAX = Setting(
    "IKN_INGEST_BATCH_MAX",
    parse.int_between(1, 100_000),
    "most messages written in one transaction",
)
INGEST_BATCH_LATENCY_MS = Setting(
    "IKN_INGEST_BATCH_LATENCY_MS",
    parse.int_between(1, 10_000),
    "longest a message waits for its batch to fill",
)
INGEST_QUEUE_MAX = Setting(
    "IKN_INGEST_QUEUE_MAX",
    parse.int_between(1, 1_000_000),
    (
        "messages waiting for the writer; when full, the ingest stops reading the broker's "
        "socket (back-pressure) until half is taken"
    ),
)
INGEST_QUEUE_MAX_BYTES = Setting(
    "IKN_INGEST_QUEUE_MAX_BYTES",
    parse.int_between(1 << 20, 1 << 34),
    (
        "payload bytes waiting for the writer (1 MiB to 16 GiB); past it the ingest stops "
        "reading the broker's socket as for `IKN_INGEST_QUEUE_MAX`, and a batch stops growing"
        " at as many bytes, so a flood of large messages cannot exhaust its memory"
    ),
)
INGEST_WRITERS = Setting(
    "IKN_INGEST_WRITERS",
    parse.int_between(1, 8),
    (
        "batches written at once (1-8), each in its own transaction on its own connection; "
        "acknowledged in the order received. More than the database's cores gains nothing"
    ),
)
INGEST_WRITE_TIMEOUT_S = Setting(
    "IKN_INGEST_WRITE_TIMEOUT_S",
    parse.int_between(1, 3600),
    (
        "seconds a batch's transaction may take (1-3600); past it its connection is cut "
        "and the batch written again on another, unacknowledged meanwhile. A connection the "
        "database or the network left hanging mid-reply would otherwise hold it for ever"
    ),
)
RETENTION_DAYS = Setting(
    "IKN_RETENTION_DAYS",
    parse.int_between(1, 3650),
    (
        "days of readings kept (badge taps among them): the retention job drops older daily "
        "partitions, the ingest refuses older readings (`bad_ts`)"
    ),
)
DEAD_LETTER_RETENTION_DAYS = Setting(
    "IKN_DEAD_LETTER_RETENTION_DAYS",
    parse.int_between(1, 3650),
    "days dead letters (and their counts) are kept; the retention job deletes older ones",
)
SIGNAL_RETENTION_DAYS = Setting(
    "IKN_SIGNAL_RETENTION_DAYS",
    parse.int_between(1, 3650),
    (
        "days attendance signals (badge taps, app, desk and booking check-ins, corrections) "
        "are kept; the days computed from them stay (docs/privacy.md)"
    ),
)
ATTENDANCE_RETENTION_DAYS = Setting(
    "IKN_ATTENDANCE_RETENTION_DAYS",
    parse.int_between(1, 36500),
    (
        "days attendance days and requests (leave, official travel, corrections) are kept "
        "after the day (1–36500)"
    ),
)
AUDIT_RETENTION_DAYS = Setting(
    "IKN_AUDIT_RETENTION_DAYS",
    parse.int_between(1, 36500),
    "days the attendance audit trail (who changed or decided what) is kept (1–36500)",
)
ACCESS_LOG_RETENTION_DAYS = Setting(
    "IKN_ACCESS_LOG_RETENTION_DAYS",
    parse.int_between(1, 3650),
    "days the log of who viewed whose attendance is kept (1–3650)",
)
SESSION_RETENTION_DAYS = Setting(
    "IKN_SESSION_RETENTION_DAYS",
    parse.int_between(0, 3650),
    (
        "days a staff-page session (with its OIDC sign-in and ID token) or a person's API "
        "token is kept once it can no longer be used (0–3650; 0: deleted in the next round)"
    ),
)
RETENTION_INTERVAL_S = Setting(
    "IKN_RETENTION_INTERVAL_S",
    parse.positive_float,
    (
        "how often each API process runs the retention job (seconds; one process at a time "
        "does the work); it logs counts only"
    ),
)
DEAD_LETTER_KEEP_PER_HOUR = Setting(
    "IKN_DEAD_LETTER_KEEP_PER_HOUR",
    parse.int_between(1, 1_000_000),
    (
        "flood guard: of one device's dead letters with one reason, the payloads of the first"
        " this many an hour are kept, then one in this many; the counts stay exact (see "
        "docs/ingest.md)"
    ),
)
INGEST_METRICS_HOST = Setting(
    "IKN_INGEST_METRICS_HOST",
    parse.plain_text,
    "address of the metrics listener (`0.0.0.0` in a container)",
)
INGEST_METRICS_PORT = Setting(
    "IKN_INGEST_METRICS_PORT",
    parse.int_between(0, 65535),
    "serve Prometheus metrics at `/metrics` on this port; `0` serves none",
)
DESK_VACANT_GRACE_S = Setting(
    "IKN_DESK_VACANT_GRACE_S",
    parse.int_between(0, 86_400),
    (
        "a desk whose sensor says vacant still counts as in use for this many seconds (0–86 "
        "400; 0: no debounce); see docs/ingest.md"
    ),
)
INGEST_STORED_NOTICES = Setting(
    "IKN_INGEST_STORED_NOTICES",
    parse.on_off,
    (
        "`on`: after each commit, publish a `stored` notice (QoS 0) on the `down` topic of "
        "each device whose readings it held, the end-to-end acknowledgement "
        "(docs/contract.md); `off`: none (for a benchmark without them; devices that wait for"
        " notices must be switched off first, else they resend until their outbox fills)"
    ),
    shown="`on`",
)
INGEST_STORED_INTERVAL_MS = Setting(
    "IKN_INGEST_STORED_INTERVAL_MS",
    parse.int_between(0, 10_000),
    (
        "a device's stored notices of commits within this many milliseconds go as one (0–10 "
        "000; 0: one per commit). At one reading a message a notice per commit was about one "
        "per two messages and cost the ingest 20 % of its messages/s; at 250 ms a chatty "
        "device's agent spent 20–40 % more idle CPU (docs/edge-agent.md). The agent's resend "
        "timeout (30 s) is far longer"
    ),
)
OIDC_ISSUER = Setting(
    "IKN_OIDC_ISSUER",
    parse.http_url,
    (
        "accept OIDC access tokens (JWT) from this issuer, e.g. "
        "`https://sso.example.go.id/realms/asn` (Keycloak); unset: API tokens only. See "
        '"OIDC" below'
    ),
)
OIDC_AUDIENCE = Setting(
    "IKN_OIDC_AUDIENCE",
    parse.plain_text,
    "the `aud` the tokens must carry (the API's client id in Keycloak)",
)
OIDC_JWKS_URL = Setting(
    "IKN_OIDC_JWKS_URL",
    parse.http_url,
    ("the issuer's signing keys; unset: `jwks_uri` of `<issuer>/.well-known/openid-configuration`"),
    shown="by discovery",
)
OIDC_ALGORITHMS = Setting(
    "IKN_OIDC_ALGORITHMS",
    parse.algorithms,
    ("accepted signature algorithms (RS/ES/PS 256–512, EdDSA); `none` and shared-secret HS* never"),
)
OIDC_PERSON_CLAIM = Setting(
    "IKN_OIDC_PERSON_CLAIM",
    parse.plain_text,
    (
        "claim naming the person (`people.id`; dotted for nested claims). `sub` never changes"
        " for an account; a government realm's NIP attribute (e.g. `nip`) is the better "
        "choice where the realm provides it. Not `preferred_username`: Keycloak can let users"
        " edit it"
    ),
)
OIDC_ROLES_CLAIM = Setting(
    "IKN_OIDC_ROLES_CLAIM",
    parse.plain_text,
    (
        "claim holding the token's roles (dotted path). By default our own client's roles "
        "(`IKN_OIDC_CLIENT_ID`), so that another application's `admin` in a shared realm is "
        "not ours; any other claim (`realm_access.roles`) needs an explicit "
        "`IKN_OIDC_ROLE_MAP`, or the API refuses to start"
    ),
    shown="`resource_access.<client>.roles`",
)
OIDC_ROLE_MAP = Setting(
    "IKN_OIDC_ROLE_MAP",
    parse.role_map,
    (
        "`idp-role=our_role,...`, e.g. `ikn-fm=facility_manager,ikn-admin=admin`; by default "
        "an IdP role named `employee`, `delegate`, `supervisor`, `facility_manager` or "
        "`admin` grants that role"
    ),
    shown="our names",
)
OIDC_CLIENT_ID = Setting(
    "IKN_OIDC_CLIENT_ID",
    parse.plain_text,
    (
        "our client's id in the identity provider, whose client roles are read; the client "
        "the staff pages sign in as (`IKN_WEB_OIDC_LOGIN`, which requires it set)"
    ),
    shown="the audience",
)
OIDC_CLIENT_SECRET = Setting(
    "IKN_OIDC_CLIENT_SECRET",
    parse.plain_text,
    (
        "the staff pages' client secret (a confidential client), sent to the token endpoint "
        "when signing in; unset: a public client (PKCE only). A secret, never logged"
    ),
    secret=True,
)
OIDC_ALLOWED_CLIENTS = Setting(
    "IKN_OIDC_ALLOWED_CLIENTS",
    parse.names,
    (
        "comma-separated client ids (`azp`) whose access tokens are accepted, e.g. "
        "`ikn-web,ikn-mobile`"
    ),
    shown="any",
)
OIDC_LEEWAY_S = Setting(
    "IKN_OIDC_LEEWAY_S",
    parse.int_between(0, 600),
    "clock skew allowed on `exp`/`nbf`/`iat` (0–600 s)",
)
OIDC_HTTP_TIMEOUT_S = Setting(
    "IKN_OIDC_HTTP_TIMEOUT_S",
    parse.positive_float,
    "timeout of a discovery or JWKS request",
)
OIDC_JWKS_MIN_REFRESH_S = Setting(
    "IKN_OIDC_JWKS_MIN_REFRESH_S",
    parse.int_between(0, 3600),
    ("a token naming an unknown `kid` fetches the keys again, at most this often (0–3600 s)"),
)
SSE_MAX_PER_TOKEN = Setting(
    "IKN_SSE_MAX_PER_TOKEN",
    parse.int_between(1, 1000),
    (
        "live occupancy streams (`/api/v1/occupancy/stream`) one bearer token may hold open "
        "at once; one more is 429 `too-many-streams` with `Retry-After` (1–1000)"
    ),
)
SSE_MAX_STREAMS = Setting(
    "IKN_SSE_MAX_STREAMS",
    parse.int_between(1, 100_000),
    (
        "live streams one API process holds open; one more is 503 `stream-unavailable` with "
        "`Retry-After` (1–100000)"
    ),
)
SSE_RECHECK_S = Setting(
    "IKN_SSE_RECHECK_S",
    parse.positive_float,
    (
        "how often an open stream checks its token again; a revoked or expired token (or one "
        "whose role may no longer watch) ends it"
    ),
)
SSE_MAX_AGE_S = Setting(
    "IKN_SSE_MAX_AGE_S",
    parse.int_between(1, 86_400),
    (
        "how long one live stream lasts at most; then it ends and the browser reconnects "
        "with `Last-Event-ID` (nothing is missed), so that streams spread over the API "
        "processes there are now (1–86400 s)"
    ),
)
TOKEN_DAYS = Setting(
    "IKN_TOKEN_DAYS",
    parse.int_between(0, 3650),
    (
        "days until a new token of a person (`ikn token create --person P`) expires (0–3650; "
        "0: never); `--days N` overrides it"
    ),
)
SERVICE_TOKEN_DAYS = Setting(
    "IKN_SERVICE_TOKEN_DAYS",
    parse.int_between(0, 3650),
    (
        "days until a new token of no one (`--name N --role R`, a service) expires (0–3650); "
        "`--days N` overrides it"
    ),
    shown="`0` (never)",
)
API_WRITE_RATE = Setting(
    "IKN_API_WRITE_RATE",
    parse.positive_float,
    (
        "writes (POST/PUT/PATCH/DELETE) a second one token may keep up, per API process; past"
        ' the burst, one more is 429 `rate-limited` with `Retry-After` (docs/api.md, "Rate '
        'limits")'
    ),
)
API_WRITE_BURST = Setting(
    "IKN_API_WRITE_BURST",
    parse.int_between(1, 1_000_000),
    ("writes one token may make at once before the rate applies (1–1000000), per API process"),
)
API_TRUSTED_PROXY = Setting(
    "IKN_API_TRUSTED_PROXY",
    parse.flag,
    (
        "`true` when the API is reachable only through a TLS reverse proxy that sets "
        "`X-Forwarded-Proto` (Caddy, Traefik, nginx): an answer to a request the proxy says "
        "came over `https` then carries `Strict-Transport-Security`. Leave it `false` when "
        "clients can reach the API directly, since anyone can send that header; a request "
        "that reaches the API over TLS itself gets HSTS either way"
    ),
)
WEB_DEV_LOGIN = Setting(
    "IKN_WEB_DEV_LOGIN",
    parse.flag,
    (
        "`true`: the staff pages' development login at `/login` lists the people to sign in "
        "as, without a password (`ikn demo` turns it on). Refused at start with "
        "`IKN_OIDC_ISSUER` set"
    ),
)
WEB_OIDC_LOGIN = Setting(
    "IKN_WEB_OIDC_LOGIN",
    parse.flag,
    (
        "`true`: the staff pages sign people in with the identity provider (OIDC "
        "authorization code with PKCE, as client `IKN_OIDC_CLIENT_ID`, which must be set, "
        'beside `IKN_OIDC_ISSUER`); see docs/web.md, "Sign-in and sessions"'
    ),
)
WEB_SESSION_IDLE_S = Setting(
    "IKN_WEB_SESSION_IDLE_S",
    parse.int_between(60, 86_400),
    "a staff page session ends after this many seconds without a request (60–86400)",
)
WEB_SESSION_MAX_S = Setting(
    "IKN_WEB_SESSION_MAX_S",
    parse.int_between(300, 2_592_000),
    "and this many seconds after signing in, however active (300–2592000)",
)
DISPLAY_KEY = Setting(
    "IKN_DISPLAY_KEY",
    parse.site_key,
    (
        "secret key (at least 16 bytes) signing the rotating check-in code a lobby kiosk "
        "shows at the door (docs/attendance.md); unset, kiosks show no code and `/door` "
        "answers 503. Required by `docker-compose.yml`; `ikn demo` makes one"
    ),
    secret=True,
)
PRIVACY_MIN_GROUP = Setting(
    "IKN_PRIVACY_MIN_GROUP",
    parse.int_between(2, 1000),
    (
        "the console's utilisation pages show a place's figures of people (occupancy, "
        "bookings, the funnel) only when at least this many distinct people can be counted "
        'there in the period, else "fewer than N" (UU 27/2022; docs/web.md, '
        '"Utilisation"; 2–1000)'
    ),
)
API_HOST = Setting(
    "IKN_API_HOST",
    parse.plain_text,
    "address to listen on (`0.0.0.0` in a container)",
)
DISRUPTION_HEARTBEAT_S = Setting(
    "IKN_DISRUPTION_HEARTBEAT_S",
    parse.positive_float,
    (
        "how often the API and the ingest each note that they are alive (seconds) and write "
        'the disruption windows they noticed (docs/attendance.md, "System disruption")'
    ),
)
DISRUPTION_UNAVAILABLE_S = Setting(
    "IKN_DISRUPTION_UNAVAILABLE_S",
    parse.positive_float,
    (
        "a gap since a service's last heartbeat longer than this (seconds) is recorded as a "
        "disruption of all buildings: `database_unavailable` when a running process could "
        "not reach PostgreSQL, `api_unavailable` / `ingest_unavailable` when it starts"
    ),
)
DISRUPTION_INGEST_LAG_S = Setting(
    "IKN_DISRUPTION_INGEST_LAG_S",
    parse.positive_float,
    (
        "a building's readings stored longer than this (seconds) after the ingest received "
        "the freshest of them in a batch are recorded as an `ingest_lag` disruption of it"
    ),
)
DISRUPTION_ERROR_WINDOW_S = Setting(
    "IKN_DISRUPTION_ERROR_WINDOW_S",
    parse.positive_float,
    "the window (seconds) over which the API counts its answers for `api_errors`",
)
DISRUPTION_ERROR_RATE = Setting(
    "IKN_DISRUPTION_ERROR_RATE",
    parse.number(
        lambda v: 0 < v <= 1, "expected a fraction, e.g. 0.2", "expected a fraction in (0, 1]"
    ),
    (
        "the share of an API process's answers in a window that are server errors (5xx) "
        "from which the window is recorded as an `api_errors` disruption of all buildings"
    ),
)
DISRUPTION_ERROR_MIN = Setting(
    "IKN_DISRUPTION_ERROR_MIN",
    parse.int_between(1, 1_000_000),
    "the fewest answers in a window for its error rate to count (1–1000000)",
)
API_PORT = Setting(
    "IKN_API_PORT",
    parse.int_between(0, 65535),
    "port to listen on",
)
BOOKING_RELEASE_INTERVAL_S = Setting(
    "IKN_BOOKING_RELEASE_INTERVAL_S",
    parse.int_between(1, 3600),
    (
        "how often each API process releases bookings nobody checked in to 15 minutes after "
        "their start (no-shows)"
    ),
)
ATTENDANCE_INTERVAL_S = Setting(
    "IKN_ATTENDANCE_INTERVAL_S",
    parse.positive_float,
    (
        "how often each API process recomputes the attendance days marked dirty by new "
        "signals (seconds, may be fractional)"
    ),
)
ATTENDANCE_POLICY = Setting(
    "IKN_ATTENDANCE_POLICY",
    parse.plain_text,
    (
        "attendance policy TOML file (docs/attendance.md); empty: the shipped national "
        "policy. A bad file stops the API at start"
    ),
    shown="national default",
)
ANALYTICS_INTERVAL_S = Setting(
    "IKN_ANALYTICS_INTERVAL_S",
    parse.positive_float,
    (
        "how often each API process recomputes the utilisation rollups marked dirty by new "
        "readings and booking changes (seconds, may be fractional; docs/analytics.md)"
    ),
)
COMMAND_TTL_S = Setting(
    "IKN_COMMAND_TTL_S",
    parse.int_between(10, 86_400),
    ("a device command not answered within this many seconds shows as `expired` (10–86400)"),
)
API_BATCH_LANES = Setting(
    "IKN_API_BATCH_LANES",
    parse.int_between(1, 64),
    (
        "booking batches in flight at once, and as many token-lookup batches, a connection "
        "each; about the database's cores + 1 (more take turns on its CPU and wait on each "
        "other's locks: on 2 cores, 3 lanes gave a p99 of 50–65 ms at 1,111 requests/s, 5 "
        "lanes 100–127 ms); more than a third of the pool stops the API at start"
    ),
    shown="`3` (at most a third of `IKN_DATABASE_POOL_MAX`)",
)
DATABASE_MIGRATE_URL = Setting(
    "IKN_DATABASE_MIGRATE_URL",
    parse.database_url,
    (
        "an administrator's URL (a superuser: it creates roles and hands over the objects of "
        "an older install); set, `ikn migrate` creates the migration role and the application"
        " role (IKN_DATABASE_URL's user and password) and migrates as the former: see "
        '"Database roles" below. Unset: IKN_DATABASE_URL\'s user migrates and owns everything '
        "(one role, as for `ikn demo` and tests)"
    ),
    hidden=True,
)
SITE_KEY = Setting(
    "IKN_SITE_KEY",
    parse.site_key,
    (
        "secret key of the site (at least 16 bytes) turning card numbers into badge tokens; "
        "badge readers need it, it is never logged"
    ),
    secret=True,
)
SIM_SPEED = Setting(
    "IKN_SIM_SPEED",
    parse.positive_float,
    "simulated seconds per real second",
)
SIM_SEED = Setting(
    "IKN_SIM_SEED",
    parse.int_between(0, 2**31),
    "random seed of the simulated building",
)
SIM_CLOCK_SKEW_S = Setting(
    "IKN_SIM_CLOCK_SKEW_S",
    parse.skew,
    (
        "fault injection: every simulated device's clock is this many seconds ahead "
        "(negative: behind), -86400 to 86400; the fleet view then shows `clock-drift` alerts;"
        " `ikn sim --fault clock-skew=...` overrides it (docs/simulator.md)"
    ),
)
SIM_LOGINS_FILE = Setting(
    "IKN_SIM_LOGINS_FILE",
    device_logins.read,
    (
        "a file of `device_id:password` lines (0600; `ikn seed --sim-logins FILE` writes one "
        "for a scenario, `ikn demo` its own): each simulated device logs in with its own "
        "broker account, as a real device does. Needed with a broker that binds client ids to"
        " user names (deploy/mosquitto): one account shared by every simulated device would "
        "have them evict each other. Unset: every device logs in with `IKN_MQTT_URL`'s user. "
        "A malformed line stops the sim at start, naming the line, never a password; a device"
        " of the scenario without a line: exit 2"
    ),
    shown="unset",
    hidden=True,
)
DEVICE_ID = Setting(
    "IKN_DEVICE_ID",
    parse.device_id,
    f"the device's id ({ID_RULE}), also its MQTT client id",
)
OUTBOX_PATH = Setting(
    "IKN_OUTBOX_PATH",
    parse.plain_text,
    (
        "the durable outbox (SQLite, WAL); keep it on storage that survives a reboot. A new "
        "file starts a new stream"
    ),
)
OUTBOX_MAX_READINGS = Setting(
    "IKN_OUTBOX_MAX_READINGS",
    parse.int_between(100, 100_000_000),
    (
        "readings the outbox holds (100–100 000 000); when full the oldest are dropped, "
        "counted in the status's `dropped` and logged"
    ),
)
OUTBOX_SYNC = Setting(
    "IKN_OUTBOX_SYNC",
    parse.choice("FULL", "NORMAL"),
    (
        "SQLite `synchronous`: `FULL` fsyncs every commit and survives power loss; `NORMAL` "
        "survives a killed process only (see docs/edge-agent.md)"
    ),
)
EDGE_DRIVER = Setting(
    "IKN_EDGE_DRIVER",
    parse.choice("sim", "serial"),
    (
        "where observations come from: `sim` plays device `IKN_DEVICE_ID` of the scenario "
        "`IKN_SIM_SCENARIO`; `serial` reads the line protocol (docs/edge-agent.md) from "
        "`IKN_SERIAL_PORT`"
    ),
)
SERIAL_PORT = Setting(
    "IKN_SERIAL_PORT",
    parse.plain_text,
    (
        "the serial driver's port (`/dev/ttyUSB0`, or a pseudo-terminal); required with "
        "`IKN_EDGE_DRIVER=serial`"
    ),
)
SIM_SCENARIO = Setting(
    "IKN_SIM_SCENARIO",
    parse.plain_text,
    "scenario (builtin name or JSON file) of the `sim` driver",
)
EDGE_AWAIT_STORED = Setting(
    "IKN_EDGE_AWAIT_STORED",
    parse.on_off,
    (
        "`on`: keep each reading in the outbox until the ingest's `stored` notice says "
        "PostgreSQL holds it (a broker that restarts or crashes then loses nothing); `off`: "
        "forget it on the broker's PUBACK, as before (for a platform that sends no notices)"
    ),
    shown="`on`",
)
EDGE_STORED_TIMEOUT_S = Setting(
    "IKN_EDGE_STORED_TIMEOUT_S",
    parse.int_between(1, 3600),
    (
        "resend a reading no notice confirmed this many seconds after its PUBACK (1–3600); "
        "the wait doubles with each round, up to 5 minutes (or this value when larger)"
    ),
)


SIASN_GATEWAY_URL = Setting(
    "IKN_SIASN_GATEWAY_URL",
    parse.http_url,
    "BKN's WSO2 API gateway in front of SIASN (`ikn sync siasn`), e.g. `https://apimws.bkn.go.id`",
)
SIASN_SSO_URL = Setting(
    "IKN_SIASN_SSO_URL",
    parse.http_url,
    "BKN's Keycloak SSO (realm `public-siasn`) for the SIASN user token, e.g. `https://sso-siasn.bkn.go.id`",
)
SIASN_CLIENT_ID = Setting(
    "IKN_SIASN_CLIENT_ID", parse.plain_text, "consumer key of our application at the gateway"
)
SIASN_CLIENT_SECRET = Setting(
    "IKN_SIASN_CLIENT_SECRET",
    parse.plain_text,
    "consumer secret of our application at the gateway; a secret, never logged",
    secret=True,
)
SIASN_USERNAME = Setting(
    "IKN_SIASN_USERNAME", parse.plain_text, "the SIASN SSO account the sync signs in as"
)
SIASN_PASSWORD = Setting(
    "IKN_SIASN_PASSWORD",
    parse.plain_text,
    "password of the SIASN SSO account; a secret, never logged",
    secret=True,
)
SIASN_UNITS = Setting(
    "IKN_SIASN_UNITS", parse.names, "SIASN work-unit ids (unor) whose employees are synced"
)
SIASN_AGENCY = Setting(
    "IKN_SIASN_AGENCY", parse.plain_text, "the agency the synced people belong to"
)
SIASN_TIMEOUT_S = Setting(
    "IKN_SIASN_TIMEOUT_S", parse.positive_float, "timeout of the whole SIASN download"
)


# -- The settings of each part ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = setting(LOG_LEVEL, "INFO")
    format: str = setting(LOG_FORMAT, "text")


@dataclass(frozen=True, slots=True)
class MqttSettings:
    url: MqttUrl = setting(MQTT_URL)
    protocol: str = setting(MQTT_PROTOCOL, "5")  # the embedded amqtt broker speaks only 3.1.1
    ca_file: str | None = setting(MQTT_CA_FILE, None)  # PEM CA bundle for mqtts://

    def with_login(self, username: str, password: str) -> MqttSettings:
        """The same broker, logged in as someone else (a simulated device as itself)."""
        return replace(self, url=replace(self.url, username=username, password=password))

    def tls_context(self) -> ssl.SSLContext:
        """For ``mqtts://``: the broker's certificate checked against ``ca_file`` (a
        private CA) or the system's CAs, and its host name against the URL."""
        return ssl.create_default_context(cafile=self.ca_file)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = setting(DATABASE_URL)
    pool_max: int = setting(DATABASE_POOL_MAX, 10)


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    """The optional InfluxDB v2 sink of the ingest (``IKN_INFLUX_URL`` unset: none)."""

    url: str = setting(INFLUX_URL)
    org: str = setting(INFLUX_ORG)
    bucket: str = setting(INFLUX_BUCKET)
    token: str = setting(INFLUX_TOKEN, "")
    batch_size: int = setting(INFLUX_BATCH_SIZE, 5000)
    flush_ms: int = setting(INFLUX_FLUSH_MS, 1000)
    buffer_max: int = setting(INFLUX_BUFFER_MAX, 200_000)
    timeout_ms: int = setting(INFLUX_TIMEOUT_MS, 10_000)


def _ingest_client_id() -> str:
    return f"ikn-ingest-{socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class DisruptionSettings:
    """Outage grace: when the API and the ingest record the platform's own degradation
    (``ikn_service.disruptions``; docs/attendance.md, "System disruption")."""

    heartbeat_s: float = setting(DISRUPTION_HEARTBEAT_S, 15.0)
    unavailable_s: float = setting(DISRUPTION_UNAVAILABLE_S, 120.0)
    ingest_lag_s: float = setting(DISRUPTION_INGEST_LAG_S, 300.0)
    error_window_s: float = setting(DISRUPTION_ERROR_WINDOW_S, 60.0)
    error_rate: float = setting(DISRUPTION_ERROR_RATE, 0.2)
    error_min: int = setting(DISRUPTION_ERROR_MIN, 20)


@dataclass(frozen=True, slots=True)
class IngestSettings:
    db: DatabaseSettings = nested(DatabaseSettings)
    # MQTT 3.1.1 by default: paho parses no properties per message, 40 % more
    # messages/s per process; the broker's persistent_client_expiration then
    # bounds the session instead of the client's expiry (docs/configuration.md).
    mqtt: MqttSettings = nested(MqttSettings, IKN_MQTT_PROTOCOL="3.1.1")
    log: LogSettings = nested(LogSettings)
    client_id: str = setting(INGEST_CLIENT_ID, factory=_ingest_client_id)
    share_group: str = setting(INGEST_SHARE_GROUP, "ikn-ingest")
    batch_max_readings: int = setting(INGEST_BATCH_MAX, 5000)
    batch_latency_ms: int = setting(INGEST_BATCH_LATENCY_MS, 100)
    queue_max_messages: int = setting(INGEST_QUEUE_MAX, 1000)
    queue_max_bytes: int = setting(INGEST_QUEUE_MAX_BYTES, 64 * 1024 * 1024)
    writers: int = setting(INGEST_WRITERS, 2)  # batches written at once, a connection each
    write_timeout_s: int = setting(INGEST_WRITE_TIMEOUT_S, 30)
    retention_days: int = setting(RETENTION_DAYS, 90)  # older readings are refused
    dead_letter_keep_per_hour: int = setting(DEAD_LETTER_KEEP_PER_HOUR, 100)
    metrics_host: str = setting(INGEST_METRICS_HOST, "127.0.0.1")
    metrics_port: int = setting(INGEST_METRICS_PORT, 0)
    influx: InfluxSettings | None = nested(InfluxSettings, when="IKN_INFLUX_URL", default=None)
    desk_vacant_grace_s: int = setting(DESK_VACANT_GRACE_S, 300)
    stored_notices: bool = setting(INGEST_STORED_NOTICES, True)
    stored_interval_ms: int = setting(INGEST_STORED_INTERVAL_MS, 1000)
    disruption: DisruptionSettings = nested(DisruptionSettings, default=DisruptionSettings())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngestSettings:
        return read(cls, env)


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """OIDC bearer tokens (JWT access tokens, e.g. from Keycloak); ``IKN_OIDC_ISSUER``
    unset: off. Without ``IKN_OIDC_JWKS_URL`` the keys are found by discovery."""

    issuer: str = setting(OIDC_ISSUER)
    audience: str = setting(OIDC_AUDIENCE)
    jwks_url: str = setting(OIDC_JWKS_URL, "")
    algorithms: tuple[str, ...] = setting(OIDC_ALGORITHMS, ("RS256", "ES256"))
    # ``sub`` never changes for an account; ``preferred_username`` is one a realm may
    # let its users edit, so it cannot be the default (a realm's NIP attribute can).
    person_claim: str = setting(OIDC_PERSON_CLAIM, "sub")
    # Client roles of our own client, so that another application's ``admin`` in a
    # shared government realm is not ours; realm roles only through an explicit map.
    roles_claim: str = setting(OIDC_ROLES_CLAIM, "resource_access.ikn-api.roles")
    role_map: tuple[tuple[str, str], ...] = setting(OIDC_ROLE_MAP, parse.SAME_ROLES)
    leeway_s: int = setting(OIDC_LEEWAY_S, 60)
    http_timeout_s: float = setting(OIDC_HTTP_TIMEOUT_S, 5.0)
    jwks_min_refresh_s: int = setting(OIDC_JWKS_MIN_REFRESH_S, 60)
    client_id: str = setting(OIDC_CLIENT_ID, "ikn-api")  # read: unset, the audience
    client_secret: str = setting(OIDC_CLIENT_SECRET, "")  # the pages' sign-in; "": public
    allowed_clients: tuple[str, ...] = setting(OIDC_ALLOWED_CLIENTS, ())  # ``azp``; empty: any

    @staticmethod
    def finish(values: dict[str, Any], r: Reader) -> None:
        """Unset, the client is the audience and the roles those of our own client;
        other roles need an explicit map."""
        if not r.is_set(OIDC_CLIENT_ID.var):
            values["client_id"] = values["audience"]
        own_roles = f"resource_access.{values['client_id']}.roles"
        if not r.is_set(OIDC_ROLES_CLAIM.var):
            values["roles_claim"] = own_roles
        elif values["roles_claim"] != own_roles and not r.is_set(OIDC_ROLE_MAP.var):
            r.problems.append(
                f"IKN_OIDC_ROLE_MAP is required with IKN_OIDC_ROLES_CLAIM={values['roles_claim']}"
                ": those are not our own client's roles, so map each one that grants one of "
                "ours, e.g. ikn-admin=admin"
            )


DEFAULT_BATCH_LANES = 3


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Limits of the live SSE streams (``GET /api/v1/occupancy/stream``)."""

    per_token: int = setting(SSE_MAX_PER_TOKEN, 4)  # open streams one bearer token may hold
    total: int = setting(SSE_MAX_STREAMS, 500)  # open streams in one API process
    recheck_s: float = setting(SSE_RECHECK_S, 60.0)  # how often a stream checks its token
    max_age_s: int = setting(SSE_MAX_AGE_S, 3600)  # how long one stream lasts at most


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """``ikn token create``: days until a new token expires (0: never)."""

    person_days: int = setting(TOKEN_DAYS, 90)  # a token acting for a person
    service_days: int = setting(SERVICE_TOKEN_DAYS, 0)  # a token of no one (a service)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TokenSettings:
        return read(cls, env)


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """The API's write rate limit per token (a token bucket in each API process) and
    whether a reverse proxy's ``X-Forwarded-Proto`` is believed (for HSTS)."""

    # Far above a person's use, and above what the test suite's schemathesis runs ask
    # of one token (about 1,100 writes in 28 s, up to 800 in 10 s, 300 in 1 s).
    write_rate: float = setting(API_WRITE_RATE, 50.0)  # writes per second a token may keep up
    write_burst: int = setting(API_WRITE_BURST, 600)  # writes a token may make at once
    trusted_proxy: bool = setting(API_TRUSTED_PROXY, False)


@dataclass(frozen=True, slots=True)
class WebSettings:
    """The staff pages (web/): their sessions, and the demo's development login, which
    lists people to sign in as without a password and so is refused beside OIDC (a
    production setting)."""

    dev_login: bool = setting(WEB_DEV_LOGIN, False)
    oidc_login: bool = setting(WEB_OIDC_LOGIN, False)  # sign in with the identity provider
    session_idle_s: int = setting(WEB_SESSION_IDLE_S, 1800)  # signed out when idle so long
    session_max_s: int = setting(WEB_SESSION_MAX_S, 43_200)  # and so long after signing in
    display_key: bytes | None = setting(DISPLAY_KEY, None)  # signs the door's code
    min_group: int = setting(PRIVACY_MIN_GROUP, 5)  # people a figure of people needs behind it

    @staticmethod
    def finish(values: dict[str, Any], r: Reader) -> None:
        if values["dev_login"] and r.is_set(OIDC_ISSUER.var):
            r.problems.append(
                "IKN_WEB_DEV_LOGIN lets anyone sign in as anyone: it is for the demo only, "
                "and refused with IKN_OIDC_ISSUER set (production); unset IKN_WEB_DEV_LOGIN"
            )
        if values["oidc_login"]:
            needed = (OIDC_ISSUER.var, OIDC_CLIENT_ID.var)
            r.problems.extend(
                f"{var} is required with IKN_WEB_OIDC_LOGIN=true: the pages sign in as that "
                "client of that issuer"
                for var in needed
                if not r.is_set(var)
            )


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long personal data is kept, per purpose (``ikn_core.retention.PURPOSES`` says
    which setting is whose; coordinates: the attendance policy). One job enforces them
    all (``ikn_service.retention``), in the API process."""

    readings_days: int = setting(RETENTION_DAYS, 90)
    dead_letters_days: int = setting(DEAD_LETTER_RETENTION_DAYS, 30)
    signals_days: int = setting(SIGNAL_RETENTION_DAYS, 400)  # a year of PP 94/2021 and more
    attendance_days: int = setting(ATTENDANCE_RETENTION_DAYS, 1830)  # five years
    audit_days: int = setting(AUDIT_RETENTION_DAYS, 1830)
    access_log_days: int = setting(ACCESS_LOG_RETENTION_DAYS, 400)
    sessions_days: int = setting(SESSION_RETENTION_DAYS, 0)
    interval_s: float = setting(RETENTION_INTERVAL_S, 3600.0)


@dataclass(frozen=True, slots=True)
class ApiSettings:
    db: DatabaseSettings = nested(DatabaseSettings)
    log: LogSettings = nested(LogSettings)
    host: str = setting(API_HOST, "127.0.0.1")
    port: int = setting(API_PORT, 8080)
    release_interval_s: int = setting(BOOKING_RELEASE_INTERVAL_S, 60)
    attendance_interval_s: float = setting(ATTENDANCE_INTERVAL_S, 2.0)
    attendance_policy: str = setting(ATTENDANCE_POLICY, "")  # empty: the national default
    analytics_interval_s: float = setting(ANALYTICS_INTERVAL_S, 30.0)
    oidc: OidcSettings | None = nested(OidcSettings, when="IKN_OIDC_ISSUER", default=None)
    streams: StreamSettings = nested(StreamSettings, default=StreamSettings())
    guard: GuardSettings = nested(GuardSettings, default=GuardSettings())
    # To send device commands; None: commands answer 503.
    mqtt: MqttSettings | None = nested(MqttSettings, when="IKN_MQTT_URL", default=None)
    command_ttl_s: int = setting(COMMAND_TTL_S, 300)  # a command not answered by then expires
    # Booking batches (and token-lookup batches) in flight at once, each on its own
    # connection (api/coalesce.py). About the database's cores + 1: more only take
    # turns on its CPU and wait on each other's locks (docs/api.md, "Group commit").
    batch_lanes: int = setting(API_BATCH_LANES, DEFAULT_BATCH_LANES)
    web: WebSettings = nested(WebSettings, default=WebSettings())  # the staff pages
    retention: RetentionSettings = nested(RetentionSettings, default=RetentionSettings())
    disruption: DisruptionSettings = nested(DisruptionSettings, default=DisruptionSettings())

    @staticmethod
    def finish(values: dict[str, Any], r: Reader) -> None:
        """Both kinds of batch together may hold two thirds of the pool at most (the
        rest serves reads); unset, 3 or what the pool allows."""
        pool_max = values["db"].pool_max
        most = max(1, pool_max // 3)
        lanes = values["batch_lanes"]
        if not r.is_set(API_BATCH_LANES.var):
            values["batch_lanes"] = min(DEFAULT_BATCH_LANES, most)
        elif lanes is not None and lanes > most:
            r.problems.append(
                f"IKN_API_BATCH_LANES={lanes}: at most {most} with "
                f"IKN_DATABASE_POOL_MAX={pool_max} (bookings and token lookups take a "
                "connection per lane each; keep a third of the pool for reads)"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        return read(cls, env)


@dataclass(frozen=True, slots=True)
class MigrateSettings:
    """``ikn migrate`` and every command that only needs the database."""

    db: DatabaseSettings = nested(DatabaseSettings)
    log: LogSettings = nested(LogSettings)
    # ``ikn migrate`` only: an administrator's URL; set, the migrations run as a
    # migration role and IKN_DATABASE_URL's user becomes the application role
    # (ikn_store/roles.py). Unset: IKN_DATABASE_URL's user migrates (one role).
    migrate_url: str | None = setting(DATABASE_MIGRATE_URL, None)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MigrateSettings:
        return read(cls, env)


@dataclass(frozen=True, slots=True)
class BadgeSettings:
    """``ikn badge enrol``: the database and the site key that turns a card number into
    the badge token the edge agents send (the card number itself is never stored)."""

    db: DatabaseSettings = nested(DatabaseSettings)
    log: LogSettings = nested(LogSettings)
    site_key: bytes = setting(SITE_KEY)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BadgeSettings:
        return read(cls, env)


@dataclass(frozen=True, slots=True)
class SiasnSettings:
    """``ikn sync siasn``: BKN's SIASN (gateway + SSO) and the database."""

    db: DatabaseSettings = nested(DatabaseSettings)
    log: LogSettings = nested(LogSettings)
    gateway_url: str = setting(SIASN_GATEWAY_URL)
    sso_url: str = setting(SIASN_SSO_URL)
    client_id: str = setting(SIASN_CLIENT_ID)
    client_secret: str = setting(SIASN_CLIENT_SECRET)
    username: str = setting(SIASN_USERNAME)
    password: str = setting(SIASN_PASSWORD)
    units: tuple[str, ...] = setting(SIASN_UNITS)
    agency: str = setting(SIASN_AGENCY)
    timeout_s: float = setting(SIASN_TIMEOUT_S, 60.0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SiasnSettings:
        return read(cls, env)


@dataclass(frozen=True, slots=True)
class SimSettings:
    """``ikn sim``: runs simulated devices, each behind its own edge agent."""

    mqtt: MqttSettings = nested(MqttSettings)
    log: LogSettings = nested(LogSettings)
    speed: float = setting(SIM_SPEED, 1.0)
    seed: int = setting(SIM_SEED, 0)
    site_key: bytes | None = setting(SITE_KEY, None)  # for simulated badge readers
    clock_skew_s: float = setting(SIM_CLOCK_SKEW_S, 0.0)  # fault injection: clocks off by this
    # Each device logs in as itself with these passwords; empty: every device logs in
    # with IKN_MQTT_URL's user (a broker without accounts).
    device_passwords: Mapping[str, str] = setting(SIM_LOGINS_FILE, factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SimSettings:
        return read(cls, env)


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """``ikn edge-agent``: one device's edge agent, its durable outbox and its driver."""

    mqtt: MqttSettings = nested(MqttSettings)
    log: LogSettings = nested(LogSettings)
    device_id: str = setting(DEVICE_ID)
    outbox_path: str = setting(OUTBOX_PATH, "ikn-outbox.db")
    outbox_max_readings: int = setting(OUTBOX_MAX_READINGS, 1_000_000)
    outbox_sync: str = setting(OUTBOX_SYNC, "FULL")  # SQLite synchronous= (FULL: power loss)
    site_key: bytes | None = setting(SITE_KEY, None)
    driver: str = setting(EDGE_DRIVER, "sim")
    serial_port: str = setting(SERIAL_PORT, "")  # the serial driver's port (required with it)
    sim_scenario: str = setting(SIM_SCENARIO, "demo")
    speed: float = setting(SIM_SPEED, 1.0)
    seed: int = setting(SIM_SEED, 0)
    await_stored: bool = setting(EDGE_AWAIT_STORED, True)  # keep readings until stored
    stored_timeout_s: float = setting(EDGE_STORED_TIMEOUT_S, 30.0)  # resend after (doubling)

    @staticmethod
    def finish(values: dict[str, Any], r: Reader) -> None:
        if values["driver"] == "serial" and not values["serial_port"]:
            r.problems.append("IKN_SERIAL_PORT is required with IKN_EDGE_DRIVER=serial")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EdgeSettings:
        return read(cls, env)


def describe(settings: Any) -> str:
    """A one-line, secret-free summary for the start-up log line."""
    return repr(settings)


# -- docs/configuration.md -------------------------------------------------------------

# Each service (or command) and its settings, as the table's "used by" names them.
SERVICES: Mapping[str, type[Any]] = {
    "ingest": IngestSettings,
    "api": ApiSettings,
    "migrate": MigrateSettings,
    "token": TokenSettings,
    "badge": BadgeSettings,
    "sim": SimSettings,
    "edge-agent": EdgeSettings,
    "sync-siasn": SiasnSettings,
}
BEGIN = "<!-- settings table: generated by python -m ikn_core.settings --write -->"
END = "<!-- end of the generated table -->"


def table() -> str:
    """The table of docs/configuration.md."""
    return markdown(SERVICES)


def with_table(doc: str) -> str:
    """``doc`` with the text between its markers replaced by ``table()``."""
    return generated.between(doc, BEGIN, END, f"\n{table()}")


if __name__ == "__main__":  # python -m ikn_core.settings --write docs/configuration.md
    sys.exit(generated.main(sys.argv[1:], table, with_table))
