"""``ikn badge enrol | revoke`` and ``ikn attendance recompute`` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from edge_agent.badge import badge_token
from ikn.brokers import BrokerProcess
from ikn_store.people import upsert_people
from tests.helpers import fetch, seed
from tests.test_attendance_e2e import KEY, PEOPLE, SITE


def _ikn(
    *args: str,
    url: str,
    stdin: str = "",
    key: bytes | None = KEY,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {}), "IKN_DATABASE_URL": url, "IKN_LOG_LEVEL": "WARNING"}
    env.pop("IKN_SITE_KEY", None)
    if key is not None:
        env["IKN_SITE_KEY"] = key.decode()
    return subprocess.run(
        [sys.executable, "-m", "ikn", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _people(url: str) -> None:
    import asyncpg

    await seed(url, SITE)
    conn = await asyncpg.connect(url)
    try:
        await upsert_people(conn, PEOPLE)
    finally:
        await conn.close()


def test_enrol_stores_the_edge_agents_token_never_the_card_number(database_url: str) -> None:
    asyncio.run(_people(database_url))
    done = _ikn("badge", "enrol", "--person", "ani", url=database_url, stdin="0004829001\n")
    assert done.returncode == 0, done.stderr
    token = badge_token(KEY, "0004829001")
    assert done.stdout.strip() == f"enrolled badge {token} for ani"
    rows = asyncio.run(fetch(database_url, "SELECT badges::text AS row FROM badges"))
    assert len(rows) == 1 and token in rows[0]["row"] and "0004829001" not in rows[0]["row"]
    revoked = _ikn("badge", "revoke", "--card", "0004829001", url=database_url)
    assert revoked.stdout.strip() == "revoked"


def test_enrol_needs_the_site_key_and_a_known_person(database_url: str) -> None:
    asyncio.run(_people(database_url))
    no_key = _ikn("badge", "enrol", "--person", "ani", url=database_url, stdin="1\n", key=None)
    assert no_key.returncode == 2 and "IKN_SITE_KEY" in no_key.stderr
    nobody = _ikn("badge", "enrol", "--person", "nobody", url=database_url, stdin="1\n")
    assert nobody.returncode == 1 and "nobody" in nobody.stderr


def test_recompute_a_period(database_url: str) -> None:
    asyncio.run(_people(database_url))
    done = _ikn(
        "attendance",
        "recompute",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-04",
        "--person",
        "ani",
        url=database_url,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "marked 4 day(s), recomputed 4"
    rows = asyncio.run(
        fetch(database_url, "SELECT day::text, mode FROM attendance_days ORDER BY day")
    )
    assert [tuple(r) for r in rows] == [
        ("2026-10-01", "absent"),
        ("2026-10-02", "absent"),
        ("2026-10-03", "non_working_day"),
        ("2026-10-04", "non_working_day"),
    ]


def test_the_rush_scenario_loads_its_people_and_replays_their_taps(
    database_url: str, mosquitto: BrokerProcess
) -> None:
    env = {"IKN_MQTT_URL": mosquitto.url, "IKN_SIM_SEED": "7"}
    args = ("attendance", "rush", "--people", "40", "--buildings", "2", "--speed", "36000")
    done = _ikn(*args, url=database_url, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "40 taps at 2 doors on 2026-10-01"
    again = _ikn(*args, url=database_url, env=env)  # loading twice changes nothing
    assert again.returncode == 0, again.stderr
    query = "SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM badges)"
    assert tuple(asyncio.run(fetch(database_url, query))[0]) == (40, 40)
