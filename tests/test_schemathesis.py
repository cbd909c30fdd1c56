"""Schemathesis (property-based tests from the OpenAPI document) against a real running
``ikn api`` on a real PostgreSQL, once with an employee's token and once with an admin's:
no 5xx, and no answer that breaks the document (status, content type, headers, schema).

Bounded so that it fits the suite: derandomised (schemathesis' deterministic mode: the
same cases every run, no example database), a few examples per operation, and a deadline
per token."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from ikn.brokers import free_port, start_mosquitto
from ikn_store.people import upsert_people
from ikn_store.tokens import create_token
from tests.conftest import TEMPLATE, _fresh_database
from tests.helpers import poll, seed
from tests.test_booking_api import PEOPLE, SITE

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 6  # per operation and phase: both runs take about two minutes (2 cores)
DEADLINE_S = 240  # per token: a run still going then has hung
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


async def _people_and_tokens(url: str) -> dict[str, str]:
    await seed(url, SITE)
    conn = await asyncpg.connect(url)
    try:
        await upsert_people(conn, list(PEOPLE))
        return {
            role: await create_token(conn, person, role, person)
            for role, person in (("employee", "ani"), ("admin", "adi"))
        }
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def running_api(
    pg_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """``ikn api`` in its own process on a seeded database: its base URL and tokens."""
    databases = _fresh_database(pg_server, TEMPLATE)
    url = next(databases)
    tokens = asyncio.run(_people_and_tokens(url))
    broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))  # device commands
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    env = {
        **os.environ,
        "IKN_DATABASE_URL": url,
        "IKN_MQTT_URL": broker.url,
        "IKN_API_PORT": str(port),
        # a live stream that opens ends 2 s later, not at --request-timeout (30 s each:
        # the admin's run waited 60 of its 75 s on two of them)
        "IKN_SSE_MAX_AGE_S": "2",
    }
    with log.open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "ikn", "api"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if api.poll() is not None:
            raise AssertionError(f"ikn api exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        poll(healthy, bool, 60)
        yield base, tokens
    finally:
        api.terminate()
        api.wait(timeout=30)
        broker.stop()
        next(databases, None)  # drops the database
    errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize("role", ["employee", "admin"])
def test_no_5xx_and_no_answer_breaks_the_document(
    running_api: tuple[str, dict[str, str]], role: str, tmp_path: Path
) -> None:
    base, tokens = running_api
    report = tmp_path / "events.ndjson"
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{base}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {tokens[role]}",
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-deterministic",  # derandomised: the same cases every run
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
        ],
        cwd=tmp_path,  # where schemathesis keeps its own files
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
    events = [json.loads(line) for line in report.read_text().splitlines() if line]
    assert events, "schemathesis reported nothing"
