"""``ikn bench ingest`` end to end on a small load: its own PostgreSQL, Mosquitto,
ingest process and publisher process; every reading stored exactly once."""

from __future__ import annotations

import pytest

from ikn.benchmarks.ingest import Options, run

pytestmark = pytest.mark.slow

KEYS = {
    "readings_per_s",
    "messages_per_s",
    "p50_ms",
    "p99_ms",
    "rss_mb",
    "count_ok",
    "ceiling_copy_readings_per_s",
    "ceiling_broker_readings_per_s",
    "ratio",
}


@pytest.mark.parametrize("batch", [1, 7])
def test_the_bench_stores_every_reading_once_and_prints_its_figures(batch: int) -> None:
    figures = run(Options(readings=3000, devices=5, batch=batch))
    assert figures.keys() >= KEYS
    assert figures["count_ok"] is True
    messages = -(-3000 // batch)
    elapsed = 3000 / figures["readings_per_s"]
    assert figures["messages_per_s"] == pytest.approx(messages / elapsed, rel=0.01, abs=1)
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
