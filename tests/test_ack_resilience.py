"""Broker restarts and crashes lose nothing once the edge agents wait for the ingest's
stored notices (``await_stored``): real processes throughout, `ikn ingest` children,
edge agent children with durable SQLite outboxes, Mosquitto with persistence as in
production, PostgreSQL. Each test compares the exact set of (device, stream, seq)
the agents numbered with what is stored, and that each is stored once.

Without the notices (``AGENT_CONFIRM=off``, run by hand) the same runs lose readings:
the graceful restart those the broker acknowledged before the ingests subscribed
again (a restarted Mosquitto does not restore a shared subscription), the crash what
the broker had acknowledged and queued since its last autosave."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from ikn.benchmarks.publisher import device_id
from ikn.brokers import BrokerProcess, start_mosquitto
from tests.helpers import fetch, poll
from tests.test_edge_outbox import outbox_state
from tests.test_ingest_resilience import _env, _ingest, _probe_until_stored, seeded

pytestmark = pytest.mark.slow
__all__ = ["seeded"]  # the fixture, shared with test_ingest_resilience
AGENTS, TOTAL = 3, 1200
CONFIRM = os.environ.get("AGENT_CONFIRM", "on")  # "off": see the failures it prevents
DEADLINE_S = 180.0

AGENT_CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    import orjson
    from edge_agent import AgentConfig, EdgeAgent, SqliteOutbox
    from ikn_core.contract import Observation
    from ikn_core.settings import MqttSettings, MqttUrl

    path, url, device, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    confirm = sys.argv[5] == "on"

    class Desk:
        device_id = device
        def __init__(self, first):
            self.first = first
        async def __aiter__(self):
            for k in range(self.first, total + 1):  # reading k gets seq k
                ts = int(time.time() * 1000)
                yield Observation("desk_occupancy", ts, {"occupied": k % 2 == 0})
                await asyncio.sleep(0.005)

    async def main():
        box = SqliteOutbox(path)
        config = AgentConfig(
            reconnect_min_s=0.05, reconnect_max_s=0.3, batch_max_readings=50,
            await_stored=confirm, stored_timeout_s=3.0, stored_timeout_max_s=6.0,
        )
        agent = EdgeAgent(device, MqttSettings(MqttUrl.parse(url)), config=config, outbox=box)
        await agent.start()
        await agent.pump(Desk(box.next_seq))
        async with asyncio.timeout(150):
            await agent.flush()  # confirmed, or (without the notices) acknowledged
        stats = agent.stats
        await agent.close()
        box.close()
        print(orjson.dumps({"resent": stats.resent, "confirmed": stats.confirmed}).decode())

    asyncio.run(main())
    """
)


def _broker_conf(workdir: Path) -> str:
    """Persistence as in deploy/mosquitto: the store is written on a graceful stop
    and every autosave_interval (here an hour: a crash loses the queue)."""
    return f"persistence true\npersistence_location {workdir}/\nautosave_interval 3600\n"


def _broker(workdir: Path, port: int | None = None) -> BrokerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    return start_mosquitto(workdir, port=port, extra_conf=_broker_conf(workdir))


class Agents:
    """Edge agent children, one per device, each with its SQLite outbox in ``workdir``."""

    def __init__(self, broker: BrokerProcess, workdir: Path) -> None:
        self.broker, self.workdir = broker, workdir
        self.devices = [device_id(n) for n in range(AGENTS)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.start()

    def outbox(self, device: str) -> Path:
        return self.workdir / f"{device}.db"

    def start(self) -> None:
        self.procs = []
        for device in self.devices:
            with (self.workdir / f"{device}.log").open("ab") as log:
                self.procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            AGENT_CHILD,
                            str(self.outbox(device)),
                            self.broker.url,
                            device,
                            str(TOTAL),
                            CONFIRM,
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

    def numbered(self) -> int:
        """Readings numbered so far, all agents together (read from their outboxes)."""
        return sum(outbox_state(self.outbox(d))[0] for d in self.devices if self.outbox(d).exists())

    def kill(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()

    def wait_done(self) -> list[dict[str, int]]:
        """Wait for every agent to finish; what each says of itself."""
        summaries = []
        for device, proc in zip(self.devices, self.procs, strict=True):
            proc.wait(DEADLINE_S)
            log = (self.workdir / f"{device}.log").read_text()
            assert proc.returncode == 0, log[-3000:]
            summaries.append(orjson.loads(log.strip().splitlines()[-1]))
        return summaries

    def streams(self) -> list[str]:
        """Each agent's stream (from its outbox; one that has not opened it yet: none)."""
        found = []
        for device in self.devices:
            if not self.outbox(device).exists():
                continue
            db = sqlite3.connect(f"file:{self.outbox(device)}?mode=ro", uri=True)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'stream'").fetchone()
            except sqlite3.OperationalError:  # the schema is not there yet
                row = None
            finally:
                db.close()
            if row is not None:
                found.append(row[0])
        return found

    def expected(self) -> set[tuple[str, str, int]]:
        """Every (device, stream, seq) the agents numbered."""
        streams = self.streams()
        assert len(streams) == len(self.devices)
        return {
            (device, stream, seq)
            for device, stream in zip(self.devices, streams, strict=True)
            for seq in range(1, TOTAL + 1)
        }

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _stored(db: str, agents: Agents) -> tuple[set[tuple[str, str, int]], int]:
    """(the distinct (device, stream, seq) stored of the agents' streams, how many rows)."""
    rows = asyncio.run(
        fetch(
            db,
            "SELECT device_id, stream::text AS stream, seq FROM readings"
            " WHERE stream = ANY($1::uuid[])",
            agents.streams(),
        )
    )
    return {(r["device_id"], r["stream"], r["seq"]) for r in rows}, len(rows)


def _stored_count(db: str, agents: Agents) -> int:
    return _stored(db, agents)[1]


@contextmanager
def _ingests(
    env: dict[str, str], tmp_path: Path, count: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [_ingest(env, f"ack-ingest-{n}", tmp_path / f"ingest{n}.log") for n in range(count)]
    try:
        yield procs
    finally:
        _stop_ingests(procs)


def _stop_ingests(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        assert proc.wait(timeout=60) == 0


def _check(agents: Agents, db: str) -> None:
    summaries = agents.wait_done()
    expected = agents.expected()
    deadline = time.monotonic() + 60  # (the agents say all is confirmed: it should be now)
    while _stored_count(db, agents) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.3)
    stored, rows = _stored(db, agents)
    assert stored == expected, (
        f"lost {len(expected - stored)}, foreign {len(stored - expected)}; agents: {summaries}"
    )
    assert rows == len(expected), f"{rows - len(expected)} stored twice"


def test_a_graceful_broker_restart_with_two_shared_ingests_loses_nothing(
    seeded: str, tmp_path: Path
) -> None:
    broker = _broker(tmp_path / "mosquitto")
    env = _env(seeded, broker)
    agents: Agents | None = None
    try:
        with _ingests(env, tmp_path, 2):
            _probe_until_stored(broker, seeded)
            agents = Agents(broker, tmp_path)
            poll(lambda: _stored_count(seeded, agents), lambda n: n > 300, 60)
            port = broker.port
            broker.stop()  # SIGTERM: Mosquitto saves its store and exits
            broker = _broker(tmp_path / "mosquitto", port)
            at_restart = _stored_count(seeded, agents)
            assert at_restart < AGENTS * TOTAL, "the stream ended before the restart"
            _check(agents, seeded)
    finally:
        if agents is not None:
            agents.stop()
        broker.stop()


def _crash_while_the_ingest_is_away(seeded: str, tmp_path: Path, *, kill_agents: bool) -> None:
    broker = _broker(tmp_path / "mosquitto")
    env = _env(seeded, broker)
    agents: Agents | None = None
    try:
        with _ingests(env, tmp_path, 1) as procs:
            _probe_until_stored(broker, seeded)
            agents = Agents(broker, tmp_path)
            poll(lambda: _stored_count(seeded, agents), lambda n: n > 300, 60)
            _stop_ingests(procs)
            at_stop = agents.numbered()
            # The broker acknowledges and queues these for the ingest's session.
            poll(agents.numbered, lambda n: n > at_stop + 600, 60)
            broker.proc.send_signal(signal.SIGKILL)
            broker.proc.wait()
            if kill_agents:
                at_kill = agents.numbered()
                poll(agents.numbered, lambda n: n > at_kill + 150, 60)  # queued offline
                agents.kill()
            assert agents.numbered() < AGENTS * TOTAL, "the stream ended before the crash"
            broker = _broker(tmp_path / "mosquitto", broker.port)
            if kill_agents:
                agents.start()  # the same outboxes: the same streams, going on
        with _ingests(env, tmp_path, 1):
            _probe_until_stored(broker, seeded)
            _check(agents, seeded)
    finally:
        if agents is not None:
            agents.stop()
        broker.stop()


def test_a_broker_crash_with_the_ingest_stopped_loses_nothing(seeded: str, tmp_path: Path) -> None:
    _crash_while_the_ingest_is_away(seeded, tmp_path, kill_agents=False)


def test_a_broker_crash_with_the_agents_killed_too_loses_nothing(
    seeded: str, tmp_path: Path
) -> None:
    _crash_while_the_ingest_is_away(seeded, tmp_path, kill_agents=True)
