"""docker-compose.yml cannot drift from the compose spec, from .env.example or from the code.

- It validates against the compose-spec JSON Schema vendored in check-jsonschema
  (offline: any network access fails the run).
- Every IKN_* variable in docker-compose.yml and .env.example is one the code reads,
  and each IKN service's environment, filled from .env.example, is accepted by the
  Settings class of the role it runs.
- Every ${VARIABLE} without a default is defined in .env.example, and no password,
  token or URL credential is written literally.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from ikn_core.errors import SettingsError
from ikn_core.settings import (
    PLACEHOLDER,
    ApiSettings,
    IngestSettings,
    MigrateSettings,
    MqttUrl,
    SimSettings,
)

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CODE = ("ikn", "ikn_core", "ikn_store", "ingest", "api", "web", "edge_agent", "firmware_sim")
SETTINGS: dict[str, Callable[[Mapping[str, str]], object]] = {
    "migrate": MigrateSettings.from_env,
    "seed": MigrateSettings.from_env,
    "ingest": IngestSettings.from_env,
    "api": ApiSettings.from_env,
    "sim": SimSettings.from_env,
    "broker-config": MigrateSettings.from_env,
    "broker-sync": MigrateSettings.from_env,
}
_IKN_VAR = re.compile(r"\bIKN_[A-Z0-9_]+\b")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
_OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))
    return doc


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not NAME=value"
            pairs[name.strip()] = value.strip()
    return pairs


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution, as far as docker-compose.yml uses it."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op and op.endswith("?") and unset:
            raise AssertionError(f"${{{name}}} is required: {arg}")
        if op and op.endswith("-") and unset:
            return arg
        return value or ""

    return _INTERPOLATION.sub(one, text)


def read_variables() -> set[str]:
    """IKN_* names the code reads: ``x.get("IKN_...")``, ``getenv("IKN_...")``,
    ``Setting("IKN_...", ...)``, ``environ["IKN_..."]`` (setting one, as ikn/demo.py does
    for its children, is not reading)."""
    names = set()
    for package in CODE:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                arg: ast.expr | None = None
                if isinstance(node, ast.Call) and node.args:
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name in ("get", "getenv", "Setting"):  # Setting: ikn_core/setting.py
                        arg = node.args[0]
                elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
                    arg = node.slice
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
    return {n for n in names if n.startswith("IKN_")}


def ikn_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image", "").startswith("ikn-workspace")
    }


def check_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    """``check-jsonschema --builtin-schema vendor.compose-spec``, with the network cut off."""
    command = ["-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **_OFFLINE},
        check=False,
    )


def test_compose_file_follows_the_compose_spec() -> None:
    proc = check_compose_spec(COMPOSE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_compose_spec_check_catches_mistakes(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  ingest:\n    image: x\n    deploy:\n      replica: 2\n")
    proc = check_compose_spec(broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "replica" in proc.stdout + proc.stderr


def test_every_ikn_variable_is_one_the_code_reads() -> None:
    read = read_variables()
    assert {"IKN_DATABASE_URL", "IKN_MQTT_URL", "IKN_API_PORT", "IKN_LOG_FORMAT"} <= read
    used = set(_IKN_VAR.findall(COMPOSE.read_text(encoding="utf-8")))
    used |= set(_IKN_VAR.findall(ENV_EXAMPLE.read_text(encoding="utf-8")))
    assert "IKN_DATABASE_URL" in used
    assert used - read == set(), "set in compose or .env.example, read by no code"


def role(service: Mapping[str, Any]) -> str:
    """The ``ikn`` command a service runs (``ingest`` for ingest-1 and ingest-2)."""
    return str(service["command"][0])


def filled_env_file() -> dict[str, str]:
    """.env.example as an operator fills it: each ``change-me`` replaced by a secret."""
    return {
        name: f"s3cret{name.lower().replace('_', '')}" if value == PLACEHOLDER else value
        for name, value in env_example().items()
    }


def service_env(
    service: Mapping[str, Any], env_file: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A service's environment, filled from ``env_file`` (.env.example, its
    placeholders replaced, by default)."""
    env = filled_env_file() if env_file is None else env_file
    return {key: interpolate(str(value), env) for key, value in service["environment"].items()}


@pytest.mark.parametrize("name", sorted(ikn_services()))
def test_each_service_gets_settings_its_role_accepts(name: str, tmp_path: Path) -> None:
    service = ikn_services()[name]
    env = service_env(service)
    if "IKN_SIM_LOGINS_FILE" in env:  # a file in the trial-logins volume: one like it
        (tmp_path / "logins").write_text("desk-1:pw\n")
        env["IKN_SIM_LOGINS_FILE"] = str(tmp_path / "logins")
    settings = SETTINGS[role(service)](env)
    assert env["IKN_LOG_FORMAT"] == "json"
    if isinstance(settings, ApiSettings):
        assert settings.host == "0.0.0.0"
        assert f"127.0.0.1:{settings.port}:{settings.port}" in service["ports"]
        assert settings.mqtt is not None, "without a broker, device commands answer 503"
        assert settings.mqtt.url.username == "svc.api"
        assert settings.mqtt.url.password == filled_env_file()["MQTT_API_PASSWORD"]
    if isinstance(settings, IngestSettings):
        assert settings.share_group == "ikn-ingest"
        assert settings.mqtt.url.username == f"svc.{name}"  # svc.ingest-1, svc.ingest-2
        variable = f"MQTT_{name.upper().replace('-', '_')}_PASSWORD"
        assert settings.mqtt.url.password == filled_env_file()[variable]
        assert "IKN_INGEST_CLIENT_ID" not in env, "the broker keys the session by the account"


@pytest.mark.parametrize("name", sorted(ikn_services()))
def test_each_service_refuses_the_placeholders_of_env_example(name: str) -> None:
    """Started with .env.example copied but not filled in, every IKN service stops at
    start, naming each of its variables that still holds ``change-me``."""
    service = ikn_services()[name]
    env = service_env(service, env_example())
    left = sorted(k for k, v in env.items() if PLACEHOLDER in v)
    if not left:
        assert name == "sim", "only the trial's simulator gets no secret from .env"
        return
    with pytest.raises(SettingsError) as caught:
        SETTINGS[role(service)](env)
    named = sorted(p.split()[0] for p in caught.value.problems if "placeholder" in p)
    assert named == left


def test_only_migrate_connects_as_the_database_administrator() -> None:
    """The services connect as the application role; only `migrate` gets the
    administrator's URL (the postgres image's superuser), to make the roles."""
    from urllib.parse import urlsplit

    from ikn_store.roles import Roles

    superuser = compose()["services"]["postgres"]["environment"]["POSTGRES_USER"]
    for name, service in ikn_services().items():
        env = service_env(service)
        if "IKN_DATABASE_URL" in env:
            assert Roles.from_url(env["IKN_DATABASE_URL"]).app == "ikn_app", name
        admin = env.get("IKN_DATABASE_MIGRATE_URL")
        assert (admin is not None) == (name == "migrate"), name
        if admin is not None:
            assert urlsplit(admin).username == superuser


# Published on every interface: HTTPS (Caddy), MQTT over TLS (Mosquitto), and Caddy's
# port 80, which only redirects to HTTPS and answers ACME's challenge.
PUBLIC_PORTS = {("caddy", 443), ("caddy", 80), ("mosquitto", 8883)}


def _published(entry: str) -> tuple[str, int]:
    """``[HOST_IP:]HOST_PORT:CONTAINER_PORT`` -> (the host address, the host port)."""
    parts = str(entry).split(":")
    assert len(parts) in (2, 3), f"{entry}: give the host port explicitly"
    return (parts[0] if len(parts) == 3 else "0.0.0.0", int(parts[-2]))


def test_no_plain_port_is_published_on_all_interfaces() -> None:
    public = set()
    for name, service in compose()["services"].items():
        for entry in service.get("ports", []):
            address, port = _published(entry)
            if address != "127.0.0.1":
                public.add((name, port))
    assert public == PUBLIC_PORTS
    for name in ("postgres", "influxdb", "grafana"):
        assert "ports" not in compose()["services"][name], f"{name} is reached through others"


def test_the_broker_speaks_tls_with_the_mounted_certificate() -> None:
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    assert "listener 8883" in conf.splitlines(), "the TLS listener is commented out"
    options = dict(line.split(maxsplit=1) for line in _listeners(conf)["listener 8883"])
    assert options["tls_version"] == "tlsv1.2"
    mounts = {
        v.split(":")[1]: v.split(":")[0] for v in compose()["services"]["mosquitto"]["volumes"]
    }
    for option, name in (
        ("certfile", "server.crt"),
        ("keyfile", "server.key"),
        ("cafile", "ca.crt"),
    ):
        assert mounts[options[option]] == f"./deploy/mosquitto/certs/{name}"
    assert not any("ca.key" in source for source in mounts.values()), "the CA key stays offline"


def test_the_api_is_behind_a_tls_reverse_proxy() -> None:
    services = compose()["services"]
    caddy = services["caddy"]
    assert caddy["image"].startswith("caddy:2.")
    assert "./deploy/caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    caddyfile = (ROOT / "deploy" / "caddy" / "Caddyfile").read_text(encoding="utf-8")
    directives = [
        line.strip() for line in caddyfile.splitlines() if not line.lstrip().startswith("#")
    ]
    api_port = ApiSettings.from_env(service_env(services["api"])).port
    assert f"reverse_proxy api:{api_port}" in directives
    assert "reverse_proxy grafana:3000" in directives
    assert "tls {$SITE_TLS}" in directives and "{$SITE_ADDRESS} {" in directives
    assert any(d.startswith("Strict-Transport-Security ") for d in directives)
    assert set(caddy["environment"]) == {"SITE_ADDRESS", "SITE_TLS"}
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SERVER_ROOT_URL"].startswith("https://${SITE_ADDRESS")


def test_grafana_reads_and_the_ingest_writes_influxdb_with_a_bucket_token() -> None:
    """The all-access admin token stays with InfluxDB's setup; Grafana's data source
    gets the read-only token, the ingest the write-only one and the sink's settings."""
    services = compose()["services"]
    admin = "${INFLUXDB_TOKEN"
    holders = [n for n, s in services.items() if admin in str(s.get("environment", {}))]
    assert holders == ["influxdb"]
    init = services["influxdb"]["environment"]
    filled = filled_env_file()
    for name in ("ingest-1", "ingest-2"):
        influx = IngestSettings.from_env(service_env(services[name])).influx
        assert influx is not None, f"{name}: without IKN_INFLUX_URL Grafana gets no data"
        assert influx.url == "http://influxdb:8086"
        assert influx.token == filled["INFLUXDB_INGEST_TOKEN"]
        assert (influx.org, influx.bucket) == (
            interpolate(init["DOCKER_INFLUXDB_INIT_ORG"], filled),
            interpolate(init["DOCKER_INFLUXDB_INIT_BUCKET"], filled),
        )
    source = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "influxdb.yaml"
    [datasource] = YAML(typ="safe").load(source.read_text(encoding="utf-8"))["datasources"]
    variable = re.fullmatch(r"\$\{(\w+)\}", datasource["secureJsonData"]["token"])
    assert variable is not None
    grafana = service_env(services["grafana"])
    assert grafana[variable[1]] == filled["INFLUXDB_GRAFANA_TOKEN"]
    script = (ROOT / "deploy" / "influxdb" / "ikn-tokens").read_text(encoding="utf-8")
    assert '"INFLUXDB_GRAFANA_TOKEN=$(token --read-bucket ' in script
    assert '"INFLUXDB_INGEST_TOKEN=$(token --write-bucket ' in script
    assert (
        "./deploy/influxdb/ikn-tokens:/usr/local/bin/ikn-tokens:ro"
        in (services["influxdb"]["volumes"])
    )


def test_no_two_services_share_a_broker_account() -> None:
    """The broker's client id is the user name: two services (or replicas) connected
    with one account would evict each other."""
    users = [
        MqttUrl.parse(env["IKN_MQTT_URL"]).username
        for env in map(service_env, ikn_services().values())
        if "IKN_MQTT_URL" in env
    ]
    assert len(users) == len(set(users)), users
    assert sum(1 for u in users if u and u.startswith("svc.ingest-")) >= 2


def test_the_services_are_wired_as_designed() -> None:
    services = compose()["services"]
    assert {role(s) for s in ikn_services().values()} == set(SETTINGS)
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    ingests = [name for name, s in ikn_services().items() if role(s) == "ingest"]
    assert ingests == ["ingest-1", "ingest-2"]
    for name in (*ingests, "api", "seed"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
    for name in (*ingests, "api"):
        assert "mosquitto" in services[name]["depends_on"]
    for name in ingests:
        assert "deploy" not in services[name], "replicas of one service share one account"
    assert services["sim"]["profiles"] == ["trial"]
    assert services["sim"]["command"] == ["sim", "--scenario", "demo", "--speed", "60"]
    # the simulated devices log in as themselves, with what the seed writes
    logins = services["sim"]["environment"]["IKN_SIM_LOGINS_FILE"]
    assert services["seed"]["command"][-2:] == ["--sim-logins", logins]
    assert MqttUrl.parse(services["sim"]["environment"]["IKN_MQTT_URL"]).username is None
    [seed_volume] = services["seed"]["volumes"]
    assert services["sim"]["volumes"] == [f"{seed_volume}:ro"]
    assert logins.startswith(seed_volume.split(":")[1] + "/")
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2.0.")
    assert services["postgres"]["image"].startswith("postgres:16.")
    assert services["influxdb"]["image"].startswith("influxdb:2.")


def test_every_image_is_pinned_to_a_release() -> None:
    """``eclipse-mosquitto:2.0.20``, not ``:2`` or ``:latest``: a pull must not change
    the broker or the database under the platform (only our own image is built here)."""
    for name, service in compose()["services"].items():
        image = service["image"]
        if image.startswith("ikn-workspace:"):
            assert "build" in service, name
            continue
        # a release: PostgreSQL's are MAJOR.MINOR (16.4), the others' MAJOR.MINOR.PATCH
        release = r"\d+\.\d+" if image.startswith("postgres:") else r"\d+\.\d+\.\d+"
        assert re.fullmatch(rf"[a-z0-9./-]+:{release}", image), f"{name}: {image}"


def test_the_broker_refuses_anonymous_clients_and_gets_its_files() -> None:
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    lines = {line.strip() for line in conf.splitlines() if not line.startswith("#")}
    assert "allow_anonymous false" in lines
    assert "allow_anonymous true" not in lines
    mounts = {v.split(":")[1] for v in compose()["services"]["mosquitto"]["volumes"]}
    for directive in ("password_file", "acl_file", "pid_file"):
        [path] = [line.split()[1] for line in lines if line.startswith(f"{directive} ")]
        assert str(Path(path).parent) in mounts, f"{directive} {path} is not mounted"
    assert "/mosquitto/config/mosquitto.conf" in mounts


def _mounted(service: Mapping[str, Any], inside: str) -> str:
    """The volume a service mounts at ``inside``."""
    volumes: list[str] = service["volumes"]
    [volume] = [v.split(":")[0] for v in volumes if v.split(":")[1] == inside]
    return volume


def test_broker_accounts_reach_the_broker_by_themselves() -> None:
    """broker-init writes passwd and acl before the broker starts; broker-sync keeps
    them in step and signals the broker through its pid file, in its PID namespace,
    as its uid (the files are 0600), without a Docker socket."""
    services = compose()["services"]
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    options = dict(line.split(maxsplit=1) for line in conf.splitlines() if line[:1].isalpha())
    broker, init, sync = services["mosquitto"], services["broker-init"], services["broker-sync"]
    assert broker["depends_on"]["broker-init"]["condition"] == "service_completed_successfully"
    auth = _mounted(broker, str(Path(options["password_file"]).parent))
    out = init["command"][init["command"].index("--out") + 1]
    assert _mounted(init, out) == auth and init["command"][0] == "broker-config"
    assert sync["command"][:3] == ["broker-sync", "--out", out] and _mounted(sync, out) == auth
    pid_file = Path(sync["command"][sync["command"].index("--pid-file") + 1])
    run = _mounted(broker, str(Path(options["pid_file"]).parent))
    assert _mounted(sync, str(pid_file.parent)) == run
    assert pid_file.name == Path(options["pid_file"]).name
    assert sync["pid"] == "service:mosquitto"
    assert init["user"] == sync["user"] == "1883:1883"  # the eclipse-mosquitto image's uid
    assert "--trial" not in init["command"] + sync["command"]
    for service in services.values():
        assert not any("docker.sock" in v for v in service.get("volumes", [])), service


def _listeners(conf: str) -> dict[str, list[str]]:
    """Each ``listener`` of a Mosquitto config with the lines that follow it up to the
    next blank line (its options), commented out ones too: the TLS listener is there for
    an operator to uncomment."""
    listeners: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in conf.splitlines():
        line = raw.removeprefix("#").strip()
        if line.startswith("listener "):
            current = listeners.setdefault(line, [])
        elif not line:
            current = None
        elif current is not None:
            current.append(line)
    return listeners


def test_every_listener_binds_client_ids_to_user_names() -> None:
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    listeners = _listeners(conf)
    assert "listener 1883" in listeners and "listener 8883" in listeners
    for listener, options in listeners.items():
        assert "use_username_as_clientid true" in options, listener


def test_the_broker_persists_as_deploy_mosquitto_explains() -> None:
    """The choices of mosquitto.conf's persistence section (why: its comments)."""
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    options = dict(
        line.split(maxsplit=1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    assert options["persistence"] == "true"
    assert options["persistence_location"] == "/mosquitto/data/"
    assert "/mosquitto/data" in {
        v.split(":")[1] for v in compose()["services"]["mosquitto"]["volumes"]
    }
    assert options["autosave_on_changes"] == "false"  # a time, not a count of changes
    assert 0 < int(options["autosave_interval"]) <= 60
    assert 0 < int(options["max_queued_bytes"]) <= 256 * 2**20
    assert int(options["max_queued_messages"]) > 0


def test_secrets_come_from_the_env_file() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    defined = env_example()
    for match in _INTERPOLATION.finditer(text):
        name, op = match.group(1), match.group(2)
        if not (op and op.endswith("-")):
            assert name in defined, f"${{{name}}} has no default and is not in .env.example"
    for name, service in compose()["services"].items():
        for key, value in dict(service.get("environment", {})).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key):
                assert re.fullmatch(r"\$\{[^}]+\}", str(value)), f"{name}: literal {key}"
            for credential in re.findall(r"://[^:/@]+:([^@]+)@", str(value)):
                assert credential.startswith("${"), f"{name}: literal password in {key}"


def test_the_interpolation_helper_behaves_like_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET}/${EMPTY}/${UNSET}", env) == "x//"
    assert interpolate("${UNSET:-d}/${EMPTY:-d}/${EMPTY-d}", env) == "d/d/"
    with pytest.raises(AssertionError, match="needed"):
        interpolate("${UNSET:?needed}", env)


def test_the_image_runs_ikn_as_a_user() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any('pip install ".[server]"' in line for line in lines)
    assert lines[-2:] == ['ENTRYPOINT ["ikn"]', 'CMD ["--help"]']
