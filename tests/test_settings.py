"""Settings: every problem named at start, secrets never shown."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ikn.brokers import free_port
from ikn_core.errors import SettingsError
from ikn_core.settings import ApiSettings, IngestSettings, MqttUrl

GOOD = {
    "IKN_DATABASE_URL": "postgresql://ikn:s3cret@db:5432/ikn",
    "IKN_MQTT_URL": "mqtt://ingest:pw@broker:1883",
}


def test_defaults_and_parsed_urls() -> None:
    s = IngestSettings.from_env(GOOD)
    assert s.mqtt.url == MqttUrl("broker", 1883, False, "ingest", "pw")
    assert (s.share_group, s.batch_latency_ms, s.mqtt.protocol) == ("ikn-ingest", 100, "3.1.1")
    v5 = IngestSettings.from_env({**GOOD, "IKN_MQTT_PROTOCOL": "5"})
    assert v5.mqtt.protocol == "5"
    assert MqttUrl.parse("mqtts://h").port == 8883
    assert IngestSettings.from_env({**GOOD, "IKN_INGEST_SHARE_GROUP": "none"}).share_group == ""
    bounds = (s.queue_max_bytes, s.retention_days, s.dead_letter_keep_per_hour)
    assert bounds == (64 * 1024 * 1024, 90, 100)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IKN_DATABASE_URL", "mysql://x/y", "scheme must be postgresql://"),
        ("IKN_MQTT_URL", "http://broker", "scheme must be mqtt:// or mqtts://"),
        ("IKN_MQTT_URL", "mqtt://", "a host is required"),
        ("IKN_MQTT_URL", "mqtt://h:99999", "bad port"),
        ("IKN_MQTT_PROTOCOL", "4", "expected one of 5, 3.1.1"),
        ("IKN_INGEST_BATCH_MAX", "lots", "expected an integer from 1 to 100000"),
        ("IKN_INGEST_BATCH_LATENCY_MS", "0", "expected an integer from 1 to 10000"),
        ("IKN_INGEST_SHARE_GROUP", "a/b", "cannot contain"),
        ("IKN_LOG_LEVEL", "LOUD", "expected one of DEBUG"),
        ("IKN_INGEST_QUEUE_MAX_BYTES", "1000", "expected an integer from 1048576 to"),
        ("IKN_RETENTION_DAYS", "0", "expected an integer from 1 to 3650"),
        ("IKN_DEAD_LETTER_KEEP_PER_HOUR", "none", "expected an integer from 1 to 1000000"),
    ],
)
def test_a_bad_value_is_named_with_the_reason(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        IngestSettings.from_env({**GOOD, name: value})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{name}=")
    assert message in problem


def test_every_problem_is_listed_at_once_and_secrets_are_hidden() -> None:
    with pytest.raises(SettingsError) as caught:
        IngestSettings.from_env(
            {"IKN_DATABASE_URL": "postgresql://u:topsecret@h:70000/db", "IKN_INGEST_BATCH_MAX": "x"}
        )
    problems = caught.value.problems
    assert len(problems) == 3  # the URL's port, the batch size, the missing MQTT URL
    assert any(p.startswith("IKN_MQTT_URL is required") for p in problems)
    assert "topsecret" not in str(caught.value)
    assert "topsecret" not in repr(IngestSettings.from_env(GOOD).db)
    assert "pw" not in str(IngestSettings.from_env(GOOD).mqtt.url)


def test_api_port_must_be_a_port() -> None:
    with pytest.raises(SettingsError, match="IKN_API_PORT='http'"):
        ApiSettings.from_env({**GOOD, "IKN_API_PORT": "http"})


def start(role: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``ikn ROLE`` as a service starts, in ``env``."""
    command = [sys.executable, "-m", "ikn", role]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("role", ["ingest", "api", "migrate"])
def test_a_service_with_bad_settings_stops_at_start_saying_why(role: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IKN_")}
    env["IKN_DATABASE_URL"] = "postgres://u:hidden@h:notaport/db"
    done = start(role, env)
    assert done.returncode == 2
    assert "IKN_DATABASE_URL" in done.stderr and "bad port" in done.stderr
    assert "hidden" not in done.stderr


@pytest.mark.parametrize("role", ["ingest", "api", "migrate"])
@pytest.mark.parametrize("where", ["no server", "its password as a parameter", "no database"])
def test_a_service_that_cannot_open_its_database_stops_saying_where_and_why(
    role: str, where: str, pg_server: str
) -> None:
    """Not a traceback: one line naming the address (its password hidden) and the
    server's or the system's reason; exit status 1."""
    base, _, _ = pg_server.rpartition("/")
    nothing = f"127.0.0.1:{free_port()}"
    url, shown, reason = {
        "no server": (
            f"postgresql://ikn:hidden@{nothing}/ikn",
            f"postgresql://ikn:***@{nothing}/ikn",
            "Connect call failed",
        ),
        "its password as a parameter": (
            f"postgresql://ikn@{nothing}/ikn?password=hidden&sslmode=disable",
            f"postgresql://ikn@{nothing}/ikn?password=***&sslmode=disable",
            "Connect call failed",
        ),
        "no database": (f"{base}/no_such_database", f"{base}/no_such_database", "does not exist"),
    }[where]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IKN_")}
    env |= {"IKN_DATABASE_URL": url, "IKN_MQTT_URL": "mqtt://127.0.0.1:1"}
    done = start(role, env)
    assert done.returncode == 1, done.stderr
    (said,) = [line for line in done.stderr.splitlines() if line.startswith(f"ikn {role}: ")]
    assert said.startswith(f"ikn {role}: cannot open the database at {shown}: "), said
    assert reason in said
    assert "Traceback" not in done.stderr and "hidden" not in done.stderr


@pytest.mark.parametrize(
    ("env", "lanes"),
    [
        ({}, 3),  # the default pool (10) allows 3
        ({"IKN_DATABASE_POOL_MAX": "20"}, 3),
        ({"IKN_DATABASE_POOL_MAX": "4"}, 1),  # unset: as many as the pool allows
        ({"IKN_DATABASE_POOL_MAX": "30", "IKN_API_BATCH_LANES": "8"}, 8),
    ],
)
def test_batch_lanes_default_to_three_or_what_the_pool_allows(
    env: dict[str, str], lanes: int
) -> None:
    settings = ApiSettings.from_env({"IKN_DATABASE_URL": "postgresql://h/db", **env})
    assert settings.batch_lanes == lanes


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IKN_API_BATCH_LANES": "0"}, "IKN_API_BATCH_LANES='0': expected an integer from 1"),
        ({"IKN_API_BATCH_LANES": "4"}, "IKN_API_BATCH_LANES=4: at most 3 with IKN_DATABASE_POOL"),
    ],
)
def test_batch_lanes_the_pool_cannot_serve_stop_the_api(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        ApiSettings.from_env({"IKN_DATABASE_URL": "postgresql://h/db", **env})
    (problem,) = caught.value.problems
    assert problem.startswith(message)


PLACEHOLDER_ENVS = [
    ("IKN_DATABASE_URL", {"IKN_DATABASE_URL": "postgresql://ikn:change-me@db:5432/ikn"}),
    ("IKN_MQTT_URL", {"IKN_MQTT_URL": "mqtt://svc.ingest-1:change-me@broker:1883"}),
    ("IKN_INFLUX_TOKEN", {"IKN_INFLUX_URL": "http://influx:8086", "IKN_INFLUX_ORG": "ikn",
                          "IKN_INFLUX_BUCKET": "telemetry", "IKN_INFLUX_TOKEN": "change-me"}),
    ("IKN_SITE_KEY", {"IKN_SITE_KEY": "CHANGE-ME-change-me-change-me"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "env"), PLACEHOLDER_ENVS, ids=[n for n, _ in PLACEHOLDER_ENVS])
def test_a_secret_still_holding_the_env_example_placeholder_is_refused(
    name: str, env: dict[str, str]
) -> None:
    """.env.example says change-me for every secret: a service started with one left so
    stops, naming the variable (IngestSettings reads the site key through the edge's and
    the sim's settings; the ingest's covers the URLs and the token)."""
    from ikn_core.settings import EdgeSettings

    reader = EdgeSettings.from_env if name == "IKN_SITE_KEY" else IngestSettings.from_env
    full = {**GOOD, "IKN_DEVICE_ID": "reader-1", **env}
    with pytest.raises(SettingsError) as caught:
        reader(full)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{name} still holds the placeholder 'change-me'"), problem
    assert "CHANGE-ME-change" not in problem and "ikn:change-me@" not in problem


def test_a_service_with_placeholders_stops_at_start_naming_each() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IKN_")}
    env["IKN_DATABASE_URL"] = "postgresql://ikn:change-me@127.0.0.1:9/ikn"
    env["IKN_MQTT_URL"] = "mqtt://svc.api:change-me@127.0.0.1:9"
    done = start("api", env)
    assert done.returncode == 2, done.stderr
    for name in ("IKN_DATABASE_URL", "IKN_MQTT_URL"):
        assert f"{name} still holds the placeholder" in done.stderr
