"""The thin end-to-end path through real processes: simulated desk sensors → edge
agents → Mosquitto (QoS 1) → ``ikn ingest`` → PostgreSQL → ``ikn api``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from ikn.brokers import BrokerProcess, free_port
from tests.helpers import poll

pytestmark = pytest.mark.slow


def _ikn(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ikn", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def services(database_url: str, mosquitto: BrokerProcess) -> Iterator[tuple[str, str]]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IKN_")},
        "IKN_DATABASE_URL": database_url,
        "IKN_MQTT_URL": mosquitto.url,
        "IKN_API_PORT": str(port),
        "IKN_INGEST_CLIENT_ID": "e2e-ingest",
        "IKN_SIM_SPEED": "600",
    }
    _ikn("seed", "--scenario", "demo", env=env)
    token = _ikn("token", "create", "--name", "e2e", "--role", "facility_manager", env=env)
    procs = [
        subprocess.Popen([sys.executable, "-m", "ikn", role], env=env) for role in ("ingest", "api")
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        poll(lambda: _get(f"{base}/healthz"), lambda r: r is not None, 60)
        procs.append(subprocess.Popen([sys.executable, "-m", "ikn", "sim"], env=env))
        yield base, token
    finally:
        for proc in reversed(procs):
            proc.terminate()
        codes = [proc.wait(timeout=60) for proc in procs]
    assert codes == [0, 0, 0]


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return json.load(r)
    except (urllib.error.URLError, ConnectionError):
        return None


def test_simulated_desks_show_up_in_the_live_view(services: tuple[str, str]) -> None:
    base, token = services
    body = poll(
        lambda: _get(f"{base}/api/v1/occupancy/live?floor=ikn-b1-f2", token),
        lambda b: b is not None and b["summary"]["unknown"] == 0 and b["summary"]["occupied"] > 0,
        60,
    )
    assert len(body["desks"]) == 50
    assert {d["floor"] for d in body["desks"]} == {"ikn-b1-f2"}
    assert all(d["sensor"] == f"desk-{d['desk']}" for d in body["desks"])
    assert all(d["since"].endswith("+08:00") for d in body["desks"])
