"""``ikn bench edge``: what one edge agent costs its device, and how fast it catches up.

A private Mosquitto is started; an agent runs in a child process (so that its
RSS is its own, not the harness's) with a durable ``SqliteOutbox`` (FULL sync, the
default) and the default ``AgentConfig``:

1. ``idle_s`` seconds at 10 readings/s: ``rss_mb`` (peak RSS of the process so
   far, MiB) and ``cpu_share`` (CPU seconds / wall seconds, one core = 1.0);
2. an outage leaves ``queued`` readings in a fresh outbox (written in bulk, not
   timed); ``outbox_bytes_per_reading`` is the file's size (WAL checkpointed) per
   reading; then the broker is reachable and ``drain_readings_per_s`` is how many
   readings per second the agent publishes and has acknowledged until empty.

With ``ack`` ``puback`` or ``stored`` an embedded PostgreSQL and one ``ikn ingest``
also run, both agents' devices registered: ``puback`` without the ingest's stored
notices (the agent forgets a reading on the broker's PUBACK), ``stored`` with them
and the agent's ``await_stored`` (the end-to-end acknowledgement: the drain ends
when PostgreSQL holds every reading). ``none`` (the default) runs no ingest. With
an ingest, ``stored_s`` is how long after the drain's start PostgreSQL held every
queued reading (the newest commit), whichever way the agent forgets them.

The child prints one JSON object; ``run`` returns it with the options added.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ikn.brokers import BrokerProcess, free_port, start_mosquitto

ACKS = ("none", "puback", "stored")
STORED_WAIT_S = 600.0


@dataclass(frozen=True)
class Options:
    queued: int = 1_000_000
    idle_s: float = 10.0
    ack: str = "none"  # one of ACKS


CHILD = textwrap.dedent(
    """
    import asyncio, os, resource, sqlite3, sys, time
    import orjson
    from edge_agent import AgentConfig, EdgeAgent, SqliteOutbox
    from ikn_core.contract import DeskOccupancy, Observation
    from ikn_core.settings import MqttSettings, MqttUrl

    url, workdir, queued, idle_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    mqtt = MqttSettings(MqttUrl.parse(url))
    config = AgentConfig(await_stored=sys.argv[5] == "stored")

    def cpu():
        t = os.times()
        return t.user + t.system

    async def idle():
        box = SqliteOutbox(os.path.join(workdir, "idle.db"))
        async with EdgeAgent("bench-idle", mqtt, config=config, outbox=box) as agent:
            async with asyncio.timeout(30):
                await agent.wait_connected()
            await asyncio.sleep(1.0)  # settle after start-up
            wall0, cpu0, n = time.monotonic(), cpu(), 0
            while time.monotonic() - wall0 < idle_s:
                ts = int(time.time() * 1000)
                agent.submit(Observation("environment", ts, {"co2_ppm": 600 + n % 50}))
                n += 1
                await asyncio.sleep(max(0.0, wall0 + n / 10 - time.monotonic()))
            share = (cpu() - cpu0) / (time.monotonic() - wall0)
        box.close()
        return share, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def fill(path):
        box = SqliteOutbox(path, queued, synchronous="NORMAL")
        ts0, seq = int(time.time() * 1000) - queued * 100, 1
        while seq <= queued:
            chunk = range(seq, min(queued, seq + 9999) + 1)
            box.extend(DeskOccupancy(seq=s, ts=ts0 + s * 100, occupied=s % 2 == 0) for s in chunk)
            seq = chunk[-1] + 1
        box.close()
        db = sqlite3.connect(path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return os.path.getsize(path) / queued

    async def drain(path):
        box = SqliteOutbox(path, queued)
        agent = EdgeAgent("bench-drain", mqtt, config=config, outbox=box)
        t0, started = time.monotonic(), time.time()
        await agent.start()
        async with asyncio.timeout(3600):
            await agent.flush()
        elapsed = time.monotonic() - t0
        delivered = queued - len(box)  # (with await_stored: confirmed, each once)
        await agent.close()
        box.close()
        return delivered, elapsed, started

    share, rss = asyncio.run(idle())
    path = os.path.join(workdir, "drain.db")
    per_reading = fill(path)
    delivered, elapsed, started = asyncio.run(drain(path))
    print(orjson.dumps({
        "rss_mb": round(rss, 1),
        "cpu_share": round(share, 4),
        "drain_readings_per_s": round(delivered / elapsed),
        "outbox_bytes_per_reading": round(per_reading, 1),
        "drained": delivered,
        "drain_s": round(elapsed, 2),
        "drain_started": started,
        "drain_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }).decode())
    """
)


def _agent(broker: BrokerProcess, tmp: str, options: Options) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            broker.url,
            tmp,
            str(options.queued),
            str(options.idle_s),
            options.ack,
        ],
        capture_output=True,
        check=False,
    )


@contextmanager
def _platform(
    broker: BrokerProcess, workdir: Path, ack: str
) -> Iterator[Callable[[int, float], float]]:
    """PostgreSQL and one ingest (notices on with ``stored``) while the block runs;
    it gets a function that waits until PostgreSQL holds the ``queued`` readings of
    the drain and says how long after ``started`` (Unix time) the last of them came."""
    import asyncio

    from ikn.benchmarks.ingest import Ingests, count_device, newest_commit, register_devices
    from ikn_core.domain import Device, DeviceKind
    from ikn_store.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(workdir / "pg", free_port())
    pg.start()
    try:
        devices = [
            Device("bench-idle", DeviceKind.ENVIRONMENT, "bb", "bz"),
            Device("bench-drain", DeviceKind.DESK_SENSOR, "bb", "bz", "bd0"),
        ]
        asyncio.run(register_devices(pg.url(), devices))
        env = {
            **os.environ,
            "IKN_DATABASE_URL": pg.url(),
            "IKN_MQTT_URL": broker.url,
            "IKN_LOG_LEVEL": "WARNING",
            "IKN_INGEST_STORED_NOTICES": "on" if ack == "stored" else "off",
        }
        ingests = Ingests(env, 1, workdir)

        def stored_after(queued: int, started: float) -> float:
            deadline = time.monotonic() + STORED_WAIT_S
            while asyncio.run(count_device(pg.url(), "bench-drain")) < queued:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL lacks readings after {STORED_WAIT_S} s")
                time.sleep(0.25)
            return newest_commit(ingests) - started

        try:
            ingests.wait_subscribed()
            yield stored_after
        finally:
            ingests.stop()
    finally:
        pg.stop()


def run(options: Options) -> dict[str, Any]:
    if options.ack not in ACKS:
        raise ValueError(f"ack must be one of {', '.join(ACKS)}")
    with tempfile.TemporaryDirectory(prefix="ikn-bench-edge-") as tmp:
        broker = start_mosquitto(Path(tmp) / "mosquitto")
        try:
            if options.ack == "none":
                figures = _figures(_agent(broker, tmp, options))
            else:
                with _platform(broker, Path(tmp), options.ack) as stored_after:
                    figures = _figures(_agent(broker, tmp, options))
                    stored_s = stored_after(options.queued, figures["drain_started"])
                    figures["stored_s"] = round(stored_s, 2)
        finally:
            broker.stop()
    del figures["drain_started"]
    return {**figures, "queued": options.queued, "idle_s": options.idle_s, "ack": options.ack}


def _figures(proc: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    if proc.returncode != 0:
        raise RuntimeError(f"the benchmark agent failed: {proc.stderr.decode()[-2000:]}")
    figures: dict[str, Any] = orjson.loads(proc.stdout.splitlines()[-1])
    return figures
