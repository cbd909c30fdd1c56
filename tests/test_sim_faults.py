"""``ikn sim --fault``: faults injected into a simulated building on a real Mosquitto,
with the real ingest writing to PostgreSQL: what the devices made is stored exactly
once through duplicates, reordering, a broker outage and killed agents; a flooding
device raises its alert; bad switches are refused naming the switch."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from edge_agent import AgentConfig, MemoryOutbox
from edge_agent.faults import DeliveryFaults
from edge_agent.uplink import Uplink
from firmware_sim import Scenario, scenario_from_dict
from firmware_sim.errors import FaultError
from firmware_sim.faults import Kill, Outage, parse_faults
from firmware_sim.runner import SimOptions, SimResult, run_sim
from ikn.brokers import BrokerProcess
from ikn_core.contract import Observation, decode_batch, make_reading
from ikn_core.settings import IngestSettings, LogSettings, MqttSettings, MqttUrl, SimSettings
from ikn_store.fleet.devices import device_alerts, list_devices
from ikn_store.spaces import load_site
from ingest.service import IngestService
from tests.helpers import eventually
from tests.test_edge_agent import reading

Row = tuple[str, int, str, str]  # device, ts (epoch ms), kind, body as sorted JSON

SCENARIO: dict[str, Any] = {
    "name": "gangguan",
    "building": {"id": "ikn-b7", "name": "Gedung Uji Gangguan"},
    "floors": [{"key": "f1", "level": 1, "zones": [{"key": "a", "desks": 4}]}],
}
# Quick agents: small batches (many of them to duplicate and reorder), fast reconnects.
AGENT = AgentConfig(
    fw="ikn-sim-test",
    batch_max_readings=5,
    batch_latency_s=0.05,
    reconnect_min_s=0.1,
    reconnect_max_s=0.5,
    close_timeout_s=15.0,
)
SPEED = 3000.0  # a desk's 5-minute heartbeat every 0.1 s


def row(device_id: str, obs: Observation) -> Row:
    body = make_reading(obs, 1).body()
    return device_id, obs.ts, obs.kind, json.dumps(body, sort_keys=True)


@dataclass
class Recorder:
    """Every observation the simulated devices made, as rows."""

    rows: Counter[Row] = field(default_factory=Counter)

    def __call__(self, device_id: str, obs: Observation) -> None:
        self.rows[row(device_id, obs)] += 1

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@dataclass
class Platform:
    database_url: str
    mqtt: MqttSettings
    ingest: IngestService

    async def stored(self) -> Counter[Row]:
        conn = await asyncpg.connect(self.database_url)
        try:
            records = await conn.fetch("SELECT device_id, ts, kind, body::text FROM readings")
        finally:
            await conn.close()
        return Counter(
            (
                r["device_id"],
                round(r["ts"].timestamp() * 1000),
                r["kind"],
                json.dumps(json.loads(r["body"]), sort_keys=True),
            )
            for r in records
        )

    async def simulate(
        self,
        scenario: Scenario,
        options: SimOptions,
        seconds: float,
        *,
        config: AgentConfig = AGENT,
    ) -> tuple[Recorder, SimResult]:
        """Run the simulation for ``seconds``, stop it, and return what the devices made."""
        settings = SimSettings(mqtt=self.mqtt, log=LogSettings(), speed=SPEED, seed=11)
        recorder, stop = Recorder(), asyncio.Event()
        sim = asyncio.create_task(
            run_sim(
                settings, scenario, stop, agent_config=config, options=options, observe=recorder
            )
        )
        await asyncio.sleep(seconds)
        stop.set()
        async with asyncio.timeout(40):
            result = await sim
        return recorder, result

    async def stores_exactly(self, made: Counter[Row]) -> None:
        """Every row made is stored, none twice, nothing else."""
        await eventually(self.stored, lambda s: sum(s.values()) >= sum(made.values()), 30)
        stored = await self.stored()
        assert stored == made, (sum(stored.values()), sum(made.values()), made - stored)
        assert not [k for k in self.ingest.stats.counts if k.startswith("dead_letter")]


@pytest.fixture
async def platform(database_url: str, mosquitto: BrokerProcess) -> AsyncIterator[Platform]:
    scenario = scenario_from_dict(SCENARIO)
    conn = await asyncpg.connect(database_url)
    try:
        await load_site(conn, scenario.site)
    finally:
        await conn.close()
    settings = IngestSettings.from_env(
        {
            "IKN_DATABASE_URL": database_url,
            "IKN_MQTT_URL": mosquitto.url,
            "IKN_INGEST_CLIENT_ID": f"ingest-{uuid.uuid4().hex[:8]}",
            "IKN_INGEST_BATCH_LATENCY_MS": "20",
        }
    )
    service, stop = IngestService(settings), asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await eventually(lambda: asyncio.sleep(0, service), lambda s: s.subscribed or task.done())
    mqtt = MqttSettings(MqttUrl.parse(mosquitto.url), protocol=mosquitto.protocol)
    try:
        yield Platform(database_url, mqtt, service)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


# -- the switches --------------------------------------------------------------------------


def test_switches_parse_into_a_plan() -> None:
    plan = parse_faults(
        [
            "broker-outage=30s@1m",
            "broker-outage=500ms@90",
            "agent-kill@2m",
            "agent-kill=desk-f1-a-01@45s",
            "duplicate=0.05",
            "reorder=0.1",
            "flood=desk-f1-a-02:200/s",
            "clock-skew=-90s",
        ]
    )
    assert plan.outages == (Outage(60.0, 30.0), Outage(90.0, 0.5))
    assert plan.kills == (Kill(120.0, None), Kill(45.0, "desk-f1-a-01"))
    assert (plan.duplicate, plan.reorder, plan.line_noise) == (0.05, 0.1, 0.0)
    assert [(f.device_id, f.per_s) for f in plan.floods] == [("desk-f1-a-02", 200.0)]
    assert plan.clock_skew_s == -90.0


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("duplicate=1.5", "at most 1"),
        ("reorder", "expected reorder=P"),
        ("broker-outage=30s", "broker-outage=DURATION@AT"),
        ("broker-outage=soon@5s", "not a duration"),
        ("agent-kill=@5s", "agent-kill@AT"),
        ("flood=desk-1:lots", "flood=DEVICE:RATE/s"),
        ("earthquake=1", "unknown fault 'earthquake'"),
    ],
)
def test_a_bad_switch_is_named(spec: str, says: str) -> None:
    with pytest.raises(FaultError, match=says) as caught:
        parse_faults([spec])
    assert str(caught.value).startswith(f"--fault {spec}: ")


def test_switches_are_checked_against_the_run() -> None:
    scenario = scenario_from_dict(SCENARIO)
    with pytest.raises(FaultError, match="needs --outbox-dir"):
        parse_faults(["agent-kill@5s"]).check(scenario, serial=False, durable=False)
    with pytest.raises(FaultError, match="no device desk-zz in scenario gangguan"):
        parse_faults(["flood=desk-zz:10/s"]).check(scenario, serial=False, durable=False)
    with pytest.raises(FaultError, match="needs --serial"):
        parse_faults(["line-noise=0.1"]).check(scenario, serial=False, durable=False)
    with pytest.raises(FaultError, match="given twice"):
        parse_faults(["duplicate=0.1", "duplicate=0.2"])
    parse_faults(["agent-kill=desk-f1-a-01@5s"]).check(scenario, serial=False, durable=True)


def test_ikn_sim_exits_2_naming_the_bad_switch() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IKN_")}
    done = subprocess.run(
        [sys.executable, "-m", "ikn", "sim", "--fault", "reorder=0.1", "--fault", "flood=x"],
        env={**env, "IKN_MQTT_URL": "mqtt://127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--fault flood=x: expected flood=DEVICE:RATE/s" in done.stderr
    rush = subprocess.run(
        [sys.executable, "-m", "ikn", "sim", "--scenario", "rush", "--serial"],
        env={**env, "IKN_MQTT_URL": "mqtt://127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rush.returncode == 2
    assert "do not apply to --scenario rush" in rush.stderr


# -- on the real platform ----------------------------------------------------------------------


async def test_duplicates_and_reordering_are_stored_exactly_once(platform: Platform) -> None:
    plan = parse_faults(["duplicate=0.3", "reorder=0.3"])
    made, result = await platform.simulate(
        scenario_from_dict(SCENARIO), SimOptions(faults=plan), seconds=4
    )
    assert made.total >= 150
    assert result.faults["duplicate"] >= 10 and result.faults["reorder"] >= 10
    await platform.stores_exactly(made.rows)
    assert platform.ingest.stats.counts["duplicates"] >= result.faults["duplicate"] // 2
    assert result.fleet.undelivered == 0 and result.fleet.dropped == 0


async def test_a_broker_outage_and_killed_agents_lose_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    """The proxy cut at 1.5 s for 3 s; every agent killed in the outage and one after
    it: readings queued offline survive in the outbox files and arrive once."""
    plan = parse_faults(["broker-outage=3s@1.5s", "agent-kill@3s", "agent-kill=desk-f1-a-02@6s"])
    options = SimOptions(faults=plan, outbox_dir=tmp_path / "outboxes")
    made, result = await platform.simulate(scenario_from_dict(SCENARIO), options, seconds=8)
    assert result.faults == {"broker-outage": 1, "agent-kill": 7}
    assert made.total >= 200
    await platform.stores_exactly(made.rows)
    assert sorted(p.name for p in (tmp_path / "outboxes").glob("*.db")) == [
        "desk-f1-a-01.db",
        "desk-f1-a-02.db",
        "desk-f1-a-03.db",
        "desk-f1-a-04.db",
        "env-f1.db",
        "pc-f1-a.db",
    ]
    assert result.fleet.undelivered == 0 and result.fleet.dropped == 0


async def test_a_flooding_device_raises_the_flooding_alert(platform: Platform) -> None:
    plan = parse_faults(["flood=desk-f1-a-03:1500/s"])
    made, result = await platform.simulate(
        scenario_from_dict(SCENARIO), SimOptions(faults=plan), seconds=3
    )
    assert result.faults["flood"] >= 3500
    await platform.stores_exactly(made.rows)
    conn = await asyncpg.connect(platform.database_url)
    try:
        views = {v.id: v for v in await list_devices(conn)}
    finally:
        await conn.close()
    now = datetime.now(UTC)
    assert "flooding" in device_alerts(views["desk-f1-a-03"], now)
    assert "flooding" not in device_alerts(views["desk-f1-a-01"], now)


async def test_uplink_faults_resend_after_puback_and_swap_neighbours() -> None:
    """Certain faults (P = 1): the first batch waits for the second; each batch goes
    again after its PUBACK; readings are forgotten only on their own batch's PUBACK."""
    sent: list[bytes] = []

    def send(payload: bytes) -> int:
        sent.append(payload)
        return len(sent)

    faults = DeliveryFaults(duplicate=1.0, reorder=1.0, rng=random.Random(1))
    outbox = MemoryOutbox()
    uplink = Uplink(outbox, send, batch_max=2, latency_s=60, window=4, faults=faults)
    uplink.set_online(True)
    for seq in range(1, 5):
        uplink.offer(reading(seq))
    seqs = [[r.seq for r in decode_batch(p).readings] for p in sent]
    assert seqs == [[3, 4], [1, 2]] and faults.reordered == 1
    uplink.offer(reading(5))
    uplink.flush()  # held (the next batch may wait): a later fill lets it go alone
    assert len(sent) == 2 and len(outbox) == 5
    uplink.flush()
    assert [r.seq for r in decode_batch(sent[-1]).readings] == [5] and faults.reordered == 2
    assert uplink.acked(2, ok=True) and len(outbox) == 3  # [1, 2] forgotten, sent again
    assert [r.seq for r in decode_batch(sent[-1]).readings] == [1, 2]
    assert not uplink.acked(4, ok=True)  # the copy's PUBACK forgets nothing more
    assert uplink.acked(1, ok=True) and uplink.acked(3, ok=True) and uplink.idle
    assert faults.duplicated == 3 and uplink.delivered == 5
    uplink.stop()
