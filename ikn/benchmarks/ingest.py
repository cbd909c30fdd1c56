"""``ikn bench ingest``: readings/s from publish to commit, against two ceilings.

It starts its own PostgreSQL (embedded, durable settings), Mosquitto and ingest
process(es), then:

1. broker ceiling: the same messages drained from Mosquitto by ``mosquitto_sub``;
2. ours: a separate publisher process sends N readings from D devices in batches
   of B; we poll the ingests' metrics until every reading is committed;
3. COPY ceiling: the same readings copied straight into ``readings`` by one asyncpg COPY.

Latency p50/p99 come from the ingests' ``ikn_ingest_lag_seconds`` histogram
(device clock of a message's newest reading to the commit that stored it),
interpolated within buckets.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil
from prometheus_client.parser import text_string_to_metric_families

from ikn.benchmarks.publisher import device_id
from ikn.brokers import BrokerProcess, free_port, start_mosquitto
from ikn_core.domain import Building, Desk, Device, DeviceKind, Floor, Site, Zone
from ikn_store.embedded import EmbeddedPostgres
from ikn_store.migrations import migrate
from ikn_store.readings.partitions import ensure_partitions
from ikn_store.readings.rows import stream_counts
from ikn_store.spaces import load_site

SCRAPE_INTERVAL_S = 0.25
STALL_S = 120.0  # no reading stored for this long: the run failed
# The publisher offers messages faster than one ingest stores them (at B=1 several
# times faster): the broker holds the backlog for the ingest's session. Mosquitto
# drops QoS 1 messages past max_queued_messages (start_mosquitto's 100,000), and
# the run would wait for them for ever; here the backlog is not limited.
BROKER_CONF = "max_queued_messages 0\n"


@dataclass(frozen=True, slots=True)
class Options:
    readings: int = 200_000
    devices: int = 100
    batch: int = 100
    ingest_processes: int = 1
    stored_notices: bool = True  # the end-to-end acknowledgement (IKN_INGEST_STORED_NOTICES)


def _site(devices: int) -> Site:
    desks = tuple(Desk(f"bd{n}", "bz", f"Desk {n}", n % 50, n // 50) for n in range(devices))
    return Site(
        buildings=(Building("bb", "Bench building"),),
        floors=(Floor("bf", "bb", "Floor", 1),),
        zones=(Zone("bz", "bf", "Zone"),),
        desks=desks,
        devices=tuple(
            Device(device_id(n), DeviceKind.DESK_SENSOR, "bb", "bz", f"bd{n}")
            for n in range(devices)
        ),
    )


async def register_devices(url: str, devices: list[Device]) -> None:
    """A migrated database holding the bench building and ``devices`` (ikn bench edge)."""
    site = _site(1)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await load_site(conn, replace(site, devices=tuple(devices)))
        await ensure_partitions(conn, [datetime.now(UTC).date()])
    finally:
        await conn.close()


async def count_device(url: str, device: str) -> int:
    """Readings stored of ``device`` (ikn bench edge)."""
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM readings WHERE device_id = $1", device)
        )
    finally:
        await conn.close()


def newest_commit(ingests: Ingests) -> float:
    """Unix time of the ingests' newest commit."""
    return _newest(_scrape(ingests.ports), "ikn_ingest_last_commit_seconds")


async def _prepare(url: str, devices: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await load_site(conn, _site(devices))
        await ensure_partitions(conn, [datetime.now(UTC).date()])
    finally:
        await conn.close()


def _publish(broker: BrokerProcess, o: Options, stream: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ikn.benchmarks.publisher",
            str(broker.port),
            str(o.devices),
            str(o.readings),
            str(o.batch),
            stream,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return dict(orjson.loads(done.stdout))


def broker_ceiling(broker: BrokerProcess, o: Options) -> float:
    """Readings/s that mosquitto_sub drains, first publish to last message received."""
    messages = -(-o.readings // o.batch)
    sub = subprocess.Popen(
        [
            "mosquitto_sub",
            "-p",
            str(broker.port),
            "-q",
            "1",
            "-t",
            "ikn/v1/dev/+/up",
            "-t",
            "bench/ready",
            "-C",
            str(messages + 1),
            "-N",
        ],
        stdout=subprocess.PIPE,
    )
    assert sub.stdout is not None
    deadline = time.monotonic() + 30
    while True:  # wait until it is subscribed: it receives one of these probes
        probe = ["mosquitto_pub", "-p", str(broker.port), "-t", "bench/ready", "-m", "x"]
        subprocess.run([*probe, "-q", "1"], check=True, timeout=10)
        if select.select([sub.stdout], [], [], 0.2)[0] and sub.stdout.read(1):
            break
        if time.monotonic() > deadline:
            sub.kill()
            sub.stdout.close()
            sub.wait()
            raise RuntimeError("mosquitto_sub did not subscribe within 30 s")
    published = _publish(broker, o, str(uuid.uuid4()))
    with sub.stdout:
        sub.stdout.read()
    sub.wait(timeout=600)
    return o.readings / (time.time() - float(published["first"]))


async def copy_ceiling(url: str, o: Options) -> float:
    stream, now = uuid.uuid4(), datetime.now(UTC)
    records = [
        (device_id(i % o.devices), stream, i, now, now, "desk_occupancy", b'\x01{"occupied":true}')
        for i in range(o.readings)
    ]
    conn = await asyncpg.connect(url)
    try:
        await conn.set_type_codec(
            "jsonb", schema="pg_catalog", format="binary", encoder=lambda b: b, decoder=lambda b: b
        )
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "readings",
            records=records,
            columns=("device_id", "stream", "seq", "ts", "received_at", "kind", "body"),
        )
        return o.readings / (time.perf_counter() - started)
    finally:
        await conn.close()


def _scrape(ports: list[int]) -> list[Any]:
    families = []
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
            families += list(text_string_to_metric_families(r.read().decode()))
    return families


def _total(families: list[Any], name: str) -> float:
    return float(sum(s.value for f in families for s in f.samples if s.name == name))


def _newest(families: list[Any], name: str) -> float:
    return max(float(s.value) for f in families for s in f.samples if s.name == name)


def _quantile(families: list[Any], q: float) -> float:
    buckets: dict[float, float] = {}
    for f in families:
        for s in f.samples:
            if s.name == "ikn_ingest_lag_seconds_bucket":
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    rank, low, below = q * total, 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            share = (rank - below) / max(buckets[le] - below, 1e-9)
            return float(low + (le - low) * share) if le != float("inf") else low
        low, below = le, buckets[le]
    return low


class Ingests:
    def __init__(self, env: dict[str, str], count: int, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = [free_port() for _ in range(count)]
        self.procs = []
        for n, port in enumerate(self.ports):
            with (workdir / f"ingest{n}.log").open("ab") as out:  # the child keeps its own copy
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "ikn", "ingest"],
                        stdout=out,
                        stderr=out,
                        env={
                            **env,
                            "IKN_INGEST_CLIENT_ID": f"bench-ingest-{n}",
                            "IKN_INGEST_METRICS_PORT": str(port),
                        },
                    )
                )
        self.peak_rss = 0.0

    def wait_subscribed(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                if _total(_scrape(self.ports), "ikn_ingest_subscribed") == len(self.ports):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        logs = "".join(
            f"\n--- ingest{n}.log (exit code {proc.poll()}):\n"
            + (self.workdir / f"ingest{n}.log").read_text(errors="replace")[-2000:]
            for n, proc in enumerate(self.procs)
        )
        raise RuntimeError(f"the ingest processes did not subscribe within {within:.0f} s{logs}")

    def sample_rss(self) -> None:
        for proc in self.procs:
            rss = psutil.Process(proc.pid).memory_info().rss / 2**20
            self.peak_rss = max(self.peak_rss, rss)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=60)


def _ours(broker: BrokerProcess, ingests: Ingests, o: Options) -> dict[str, Any]:
    stream = str(uuid.uuid4())
    published: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: published.update(_publish(broker, o, stream)))
    thread.start()
    progress, last_stored = time.monotonic(), -1.0
    while True:  # not too often: each scrape costs the ingest CPU it would spend on readings
        families = _scrape(ingests.ports)
        ingests.sample_rss()
        stored = _total(families, "ikn_ingest_readings_stored_total")
        if stored >= o.readings:
            break
        if stored > last_stored:
            progress, last_stored = time.monotonic(), stored
        elif time.monotonic() - progress > STALL_S:
            raise RuntimeError(f"nothing stored for {STALL_S:.0f} s: {stored:.0f} of {o.readings}")
        time.sleep(SCRAPE_INTERVAL_S)
    finished = _newest(families, "ikn_ingest_last_commit_seconds")  # exact, not the poll's time
    thread.join()
    return {
        "stream": stream,
        "first": published["first"],
        "last_commit": finished,
        "messages": published["messages"],
        "families": families,
    }


async def _count(url: str, stream: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        return await stream_counts(conn, stream)
    finally:
        await conn.close()


def run(o: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ikn-bench-") as tmp:
        work = Path(tmp)
        pg = EmbeddedPostgres(work / "pg", free_port())
        pg.start()
        broker = start_mosquitto(work / "mosquitto", extra_conf=BROKER_CONF)
        try:
            url = pg.url()
            asyncio.run(_prepare(url, o.devices))
            broker_rps = broker_ceiling(broker, o)
            env = {
                **os.environ,
                "IKN_DATABASE_URL": url,
                "IKN_MQTT_URL": broker.url,
                "IKN_LOG_LEVEL": "WARNING",
                "IKN_INGEST_STORED_NOTICES": "on" if o.stored_notices else "off",
            }
            ingests = Ingests(env, o.ingest_processes, work)
            try:
                ingests.wait_subscribed()
                ours = _ours(broker, ingests, o)
            finally:
                ingests.stop()
            count, distinct = asyncio.run(_count(url, ours["stream"]))
            copy_rps = asyncio.run(copy_ceiling(url, o))
        finally:
            broker.stop()
            pg.stop()
    elapsed = ours["last_commit"] - ours["first"]
    readings_per_s = o.readings / elapsed
    return {
        "readings_per_s": round(readings_per_s),
        "messages_per_s": round(ours["messages"] / elapsed),
        "p50_ms": round(_quantile(ours["families"], 0.5) * 1000, 1),
        "p99_ms": round(_quantile(ours["families"], 0.99) * 1000, 1),
        "rss_mb": round(ingests.peak_rss, 1),
        "count_ok": count == distinct == o.readings,
        "ceiling_copy_readings_per_s": round(copy_rps),
        "ceiling_broker_readings_per_s": round(broker_rps),
        "ratio": round(readings_per_s / min(copy_rps, broker_rps), 3),
        "readings": o.readings,
        "devices": o.devices,
        "batch": o.batch,
        "ingest_processes": o.ingest_processes,
        "stored_notices": o.stored_notices,
        "notices_sent": round(_total(ours["families"], "ikn_ingest_stored_notices_total")),
    }
