"""``ikn badge enrol | revoke``, ``ikn attendance recompute`` and ``ikn sim --scenario rush``
as a user runs them."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from edge_agent.badge import badge_token
from ikn.benchmarks.attendance import Api, write_replay_policy
from ikn.brokers import BrokerProcess, free_port
from ikn_store.people import upsert_people
from tests.helpers import fetch, ingest_subscribed, poll, seed
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
        timeout=120,
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


def test_an_administrator_declares_a_disruption(database_url: str) -> None:
    asyncio.run(_people(database_url))
    window = ("--start", "2026-10-01T07:30:00+08:00", "--end", "2026-10-01T08:00:00+08:00")
    done = _ikn("attendance", "disruption", *window, "--detail", "readers down", url=database_url)
    assert done.returncode == 0, done.stderr
    assert '"cause":"declared"' in done.stdout and '"recorded_by":"cli"' in done.stdout
    rows = asyncio.run(fetch(database_url, "SELECT building_id, cause FROM platform_disruptions"))
    assert [tuple(r) for r in rows] == [(None, "declared")]
    bad = _ikn(
        "attendance",
        "disruption",
        *window,
        "--detail",
        "x",
        "--building",
        "nowhere",
        url=database_url,
    )
    assert bad.returncode != 0 and "--building: no such building" in bad.stderr
    ahead = _ikn(
        "attendance",
        "disruption",
        "--start",
        "2026-10-01T07:30:00+08:00",
        "--end",
        "2099-01-01T00:00:00+08:00",
        "--detail",
        "x",
        url=database_url,
    )
    assert ahead.returncode != 0 and "--end:" in ahead.stderr


def _ingest(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``ikn ingest`` and its metrics port."""
    port = free_port()
    with (workdir / "ingest.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ikn", "ingest"],
            stdout=out,
            stderr=out,
            env={
                **env,
                "IKN_INGEST_CLIENT_ID": "rush-ingest",
                "IKN_INGEST_METRICS_PORT": str(port),
            },
        )
    return proc, port


def test_the_rush_from_ikn_sim_completes_and_checks_every_record(
    database_url: str, mosquitto: BrokerProcess, tmp_path: Path
) -> None:
    env = {**os.environ, "IKN_DATABASE_URL": database_url, "IKN_MQTT_URL": mosquitto.url}
    env["IKN_LOG_LEVEL"] = "WARNING"
    # 2026-10-01 replayed now: its taps count only under a policy that allows them late
    env["IKN_ATTENDANCE_POLICY"] = str(write_replay_policy(tmp_path / "replay.toml"))
    ingest, api = _ingest(env, tmp_path), Api(env, tmp_path)
    try:
        poll(lambda: ingest_subscribed(ingest[1]), bool, within=60)
        api.wait_up()
        args = ("sim", "--scenario", "rush", "--people", "200", "--buildings", "3")
        done = _ikn(*args, "--speed", "7200", "--wait", "60", url=database_url, env=env)
    finally:
        ingest[0].terminate()
        ingest[0].wait(timeout=60)
        api.stop()
    assert done.returncode == 0, done.stderr
    taps, outcome = done.stdout.strip().splitlines()
    assert taps == "200 taps at 3 doors on 2026-10-01"
    found = re.fullmatch(
        r"records complete (\d+\.\d{3}) s after the last tap; (\d+)/200 correct", outcome
    )
    assert found is not None, outcome
    assert 0 <= float(found[1]) < 60 and found[2] == "200"
    query = """SELECT count(*) FILTER (WHERE mode IN ('wfo', 'wfo_other')),
                      count(DISTINCT person_id) FROM attendance_days WHERE day = '2026-10-01'"""
    assert tuple(asyncio.run(fetch(database_url, query))[0]) == (200, 200)


def test_the_rush_says_so_when_records_are_not_complete(
    database_url: str, mosquitto: BrokerProcess
) -> None:
    """No ingest is running: the taps are never stored, the records never complete."""
    env = {"IKN_MQTT_URL": mosquitto.url, "IKN_SIM_SEED": "7"}
    args = ("attendance", "rush", "--people", "40", "--buildings", "2", "--speed", "36000")
    done = _ikn(*args, "--wait", "0.5", url=database_url, env=env)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "40 taps at 2 doors on 2026-10-01",
        "records NOT complete within 0.5 s; 0/40 correct",
    ]
    assert "not every daily record" in done.stderr
    again = _ikn(*args, "--wait", "0", url=database_url, env=env)  # loading twice changes nothing
    assert again.returncode == 1, again.stderr
    query = "SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM badges)"
    assert tuple(asyncio.run(fetch(database_url, query))[0]) == (40, 40)
