"""Prometheus metrics of the ingest, on a registry of its own (one per service instance).

Served at ``/metrics`` on ``IKN_INGEST_METRICS_PORT`` (0: not served).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

_LAG_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1,
    2,
    5,
    10,
    30,
    60,
    300,
)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("ikn_ingest_messages", "MQTT messages handled", registry=r)
        self.stored = Counter("ikn_ingest_readings_stored", "readings stored", registry=r)
        self.duplicates = Counter(
            "ikn_ingest_readings_duplicate", "readings already stored (redelivery)", registry=r
        )
        self.dead_letters = Counter(
            "ikn_ingest_dead_letters", "messages kept as dead letters", ["reason"], registry=r
        )
        self.batch_messages = Histogram(
            "ikn_ingest_batch_messages",
            "messages per transaction",
            registry=r,
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
        )
        self.commit_seconds = Histogram(
            "ikn_ingest_commit_seconds",
            "time to write one batch",
            registry=r,
            buckets=_LAG_BUCKETS,
        )
        self.lag_seconds = Histogram(
            "ikn_ingest_lag_seconds",
            "from a message's newest reading (device clock) to the commit that stored it",
            registry=r,
            buckets=_LAG_BUCKETS,
        )
        self.queue_depth = Gauge("ikn_ingest_queue_depth", "messages waiting", registry=r)
        self.last_commit = Gauge(
            "ikn_ingest_last_commit_seconds", "Unix time of the newest commit", registry=r
        )
        self.subscribed = Gauge(
            "ikn_ingest_subscribed",
            "1 while the broker has confirmed the subscriptions",
            registry=r,
        )
        self.stored_notices = Counter(
            "ikn_ingest_stored_notices",
            "stored notices published (end-to-end acknowledgement, one per device and stream)",
            registry=r,
        )
        self.db_retries = Counter(
            "ikn_ingest_db_retries", "writes retried because PostgreSQL was away", registry=r
        )
        self.device_alerts = Gauge(
            "ikn_device_alerts",
            "devices with each alert (offline, flooding, clock-drift, ...)",
            ["alert"],
            registry=r,
        )
        self.influx_written = Counter(
            "ikn_ingest_influx_written", "readings written to InfluxDB", registry=r
        )
        self.influx_dropped = Counter(
            "ikn_ingest_influx_dropped",
            "readings not written to InfluxDB (buffer_full, rejected)",
            ["reason"],
            registry=r,
        )
        self.influx_failures = Counter(
            "ikn_ingest_influx_failures", "InfluxDB writes that failed (retried)", registry=r
        )
        self.influx_buffer = Gauge(
            "ikn_ingest_influx_buffer", "readings waiting for InfluxDB", registry=r
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@asynccontextmanager
async def serve_metrics(metrics: IngestMetrics, host: str, port: int) -> AsyncIterator[None]:
    """Serve ``/metrics`` while the block runs (nothing when ``port`` is 0)."""
    if port == 0:
        yield
        return

    async def handle(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("metrics at http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        await runner.cleanup()
