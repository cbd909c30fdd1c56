"""``ikn bench attendance``: a morning rush of badge taps to complete daily records.

It starts its own PostgreSQL (embedded), Mosquitto, one ``ikn ingest`` and one
``ikn api`` (whose job recomputes dirty days), loads B buildings (each its own
agency, with an entrance reader) and N people with enrolled badges, then:

1. ours: the ``firmware_sim.rush`` scenario replays N arrivals between 07:00 and
   08:00 WITA of a past working day, at ``speed`` times real time, through one real
   edge agent per door (card number -> badge token), Mosquitto and the ingest; we
   poll until every person's record of the day is stored and no day is dirty;
2. check: every stored record equals ``compute_day`` over that person's signals,
   and its clock-in is the planned arrival and its mode WFO (home building) or
   WFO at another agency's building;
3. ceiling: the same records computed straight from the stored signals (one query,
   ``compute_day`` in this process), no MQTT, no ingest, no job.

Prints one JSON line: taps, records_ok, complete_after_last_tap_s (from the moment
the last reader reported its last tap to every record stored), rush_s, ceiling_s
(step 3), ratio (ceiling_s / (complete_after_last_tap_s + ceiling_s): 1.0 would mean
the records are complete as soon as the last tap could be computed at all).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg

from edge_agent import run_fleet
from edge_agent.badge import badge_token
from firmware_sim.clock import ScaledClock
from firmware_sim.rush import Arrival, RushReader, card_number, home_door, morning_rush
from ikn.benchmarks.ingest import Ingests
from ikn.brokers import free_port, start_mosquitto
from ikn_core.attendance import Policies, WorkMode
from ikn_core.domain import IKN_TIME_ZONE, Building, Device, DeviceKind, Floor, Site, Zone
from ikn_core.domain import IKN_ZONE as WITA
from ikn_core.settings import MqttSettings, MqttUrl
from ikn_store.attendance.days import PersonDay, compute
from ikn_store.attendance.signals import set_building_site
from ikn_store.embedded import EmbeddedPostgres
from ikn_store.migrations import migrate
from ikn_store.pool import create_pool
from ikn_store.spaces import load_site

DAY = date(2026, 10, 1)  # a Thursday, a working day under the national policy
KEY = b"bench-site-key-not-a-secret"


@dataclass(frozen=True, slots=True)
class Options:
    people: int = 20_000
    buildings: int = 4
    speed: float = 120.0  # the hour of the rush in 30 s
    day: date = DAY
    seed: int = 0


def _site(buildings: int) -> Site:
    ids = [f"rb{n}" for n in range(buildings)]
    return Site(
        buildings=tuple(Building(b, f"Gedung {b}") for b in ids),
        floors=tuple(Floor(f"{b}-f1", b, "Lantai 1", 1) for b in ids),
        zones=tuple(Zone(f"{b}-f1-a", f"{b}-f1", "Lobi") for b in ids),
        desks=(),
        devices=tuple(Device(f"door-{b}", DeviceKind.BADGE_READER, b, f"{b}-f1-a") for b in ids),
    )


def doors(o: Options) -> list[str]:
    return [f"door-rb{n}" for n in range(o.buildings)]


def person_id(n: int) -> str:
    return f"asn{n:06d}"


async def prepare(url: str, o: Options, key: bytes) -> None:
    """Buildings with their readers, coordinates and agencies, and the people with their
    badges enrolled (tokens under ``key``); loading twice changes nothing."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await load_site(conn, _site(o.buildings))
        for n in range(o.buildings):
            await set_building_site(conn, f"rb{n}", -0.97 + n / 100, 116.7, f"agency{n}")
        door_list = doors(o)
        homes = [home_door(n, door_list).removeprefix("door-") for n in range(o.people)]
        await conn.execute(
            """INSERT INTO people (id, name, agency, unit, home_building_id)
               SELECT p, 'ASN ' || p, 'agency' || substr(h, 3), 'unit' || (n % 50), h
               FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(p, h, n)
               ON CONFLICT (id) DO NOTHING""",
            [person_id(n) for n in range(o.people)],
            homes,
        )
        await conn.execute(
            """INSERT INTO badges (token, person_id) SELECT * FROM unnest($1::text[], $2::text[])
               ON CONFLICT (token) DO NOTHING""",
            [badge_token(key, card_number(n)) for n in range(o.people)],
            [person_id(n) for n in range(o.people)],
        )
    finally:
        await conn.close()


class Api:
    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        with (workdir / "api.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ikn", "api"],
                stdout=out,
                stderr=out,
                env={**env, "IKN_API_PORT": str(self.port), "IKN_ATTENDANCE_INTERVAL_S": "0.2"},
            )

    def wait_up(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the API did not start in time")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


async def rush(mqtt: MqttSettings, arrivals: list[Arrival], o: Options, key: bytes) -> float:
    """Replay the rush through one edge agent per door; the monotonic time of the last tap."""
    clock = ScaledClock(o.speed)
    readers = [RushReader(d, arrivals, clock) for d in doors(o)]
    await run_fleet(readers, mqtt, asyncio.Event(), site_key=key, progress_interval_s=3600)
    return max(r.finished or 0.0 for r in readers)


def plan(o: Options) -> list[Arrival]:
    """The rush's arrivals (the same for the same options)."""
    return morning_rush(o.people, doors(o), o.day, WITA, seed=o.seed)


async def _complete(conn: asyncpg.Connection, o: Options) -> bool:
    """Every rush person has a record of the day and none of their days is dirty."""
    people = [person_id(n) for n in range(o.people)]
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM attendance_days WHERE day = $1 AND person_id = ANY($2)),
                  (SELECT count(*) FROM attendance_dirty WHERE person_id = ANY($2))""",
        o.day,
        people,
    )
    assert row is not None
    return int(row[0]) >= o.people and int(row[1]) == 0


async def wait_complete(url: str, o: Options, within: float) -> float | None:
    """The monotonic time the records were complete, or None after ``within`` seconds."""
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await _complete(conn, o):
                return time.monotonic()
            await asyncio.sleep(0.1)
        return None
    finally:
        await conn.close()


async def check(
    url: str, arrivals: list[Arrival], o: Options, policies: Policies
) -> tuple[int, float]:
    """Records that are right (stored == computed from the signals == the plan), and
    the ceiling: seconds to compute them all straight from the signals."""
    pool = await create_pool(url, 2)
    try:
        async with pool.acquire() as conn:
            started = time.monotonic()
            people = [person_id(n) for n in range(o.people)]
            agencies = {
                r["id"]: r["agency"]
                for r in await conn.fetch(
                    "SELECT id, agency FROM people WHERE id = ANY($1)", people
                )
            }
            due = [PersonDay(p, o.day, agencies[p], IKN_TIME_ZONE) for p in people]
            computed = dict(await compute(conn, policies, due))
            ceiling_s = time.monotonic() - started
            rows = await conn.fetch(
                """SELECT person_id, record FROM attendance_days
                   WHERE day = $1 AND person_id = ANY($2)""",
                o.day,
                people,
            )
        stored = {r["person_id"]: r["record"] for r in rows}
    finally:
        await pool.close()
    return sum(_right(a, computed, stored, o) for a in arrivals), ceiling_s


def _right(a: Arrival, computed: dict[str, Any], stored: dict[str, Any], o: Options) -> bool:
    pid = person_id(a.person)
    record = computed[pid]
    home = a.door == home_door(a.person, doors(o))
    expected_mode = WorkMode.WFO if home else WorkMode.WFO_OTHER
    planned = record.clock_in is not None and int(record.clock_in.timestamp() * 1000) == a.ts_ms
    return bool(stored.get(pid) == record.as_json() and planned and record.mode is expected_mode)


async def replay_and_check(
    url: str, mqtt: MqttSettings, o: Options, key: bytes, *, policies: Policies, within: float
) -> dict[str, Any]:
    """Replay the rush, wait (at most ``within`` s) until the records are complete, check
    them; the figures (``complete_after_last_tap_s`` None when not complete in time)."""
    arrivals = plan(o)
    started = time.monotonic()
    last_tap = await rush(mqtt, arrivals, o, key)
    complete = await wait_complete(url, o, within)
    ok, ceiling_s = await check(url, arrivals, o, policies)
    lag = None if complete is None else max(0.0, complete - last_tap)
    return {
        "people": o.people,
        "taps": len(arrivals),
        "buildings": o.buildings,
        "speed": o.speed,
        "records_ok": ok,
        "all_correct": ok == o.people and complete is not None,
        "rush_s": round(last_tap - started, 2),
        "complete_after_last_tap_s": None if lag is None else round(lag, 3),
        "ceiling_s": round(ceiling_s, 3),
        "ratio": None if lag is None else round(ceiling_s / (lag + ceiling_s), 3),
    }


def write_replay_policy(path: Path) -> Path:
    """The national policy with ``corrections.late_signal_hours`` at its maximum (366 days),
    written to ``path``: a replay of a past day is received long after its taps, which
    the national policy keeps as late evidence (docs/attendance.md)."""
    text = resources.files("ikn_core.attendance").joinpath("policies", "national.toml")
    national = text.read_text(encoding="utf-8")
    replay = national.replace("late_signal_hours = 24\n", "late_signal_hours = 8784\n")
    assert replay != national, "national.toml: corrections.late_signal_hours not found"
    path.write_text(replay, encoding="utf-8")
    return path


def run(o: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ikn-bench-att-") as tmp:
        work = Path(tmp)
        pg = EmbeddedPostgres(work / "pg", free_port())
        pg.start()
        broker = start_mosquitto(work / "mosquitto")
        try:
            url = pg.url()
            asyncio.run(prepare(url, o, KEY))
            policy = write_replay_policy(work / "replay.toml")
            env = {
                **os.environ,
                "IKN_DATABASE_URL": url,
                "IKN_MQTT_URL": broker.url,
                "IKN_LOG_LEVEL": "WARNING",
                "IKN_ATTENDANCE_POLICY": str(policy),
            }
            ingests, api = Ingests(env, 1, work), Api(env, work)
            try:
                ingests.wait_subscribed()
                api.wait_up()
                mqtt = MqttSettings(url=MqttUrl.parse(broker.url))
                run = replay_and_check(
                    url, mqtt, o, KEY, policies=Policies.load(policy), within=600
                )
                return asyncio.run(run)
            finally:
                ingests.stop()
                api.stop()
        finally:
            broker.stop()
            pg.stop()
