"""``ikn bench ui-latency`` runs end to end with the demo building (a few changes) and
prints one JSON line of consistent figures (no timing asserted): every change reached
the page's DOM, its own stream and the bare EventSource (the benchmark raises
otherwise), the percentiles in order, the clocks aligned within the round trip."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

pytestmark = pytest.mark.browser


def test_bench_ui_latency_prints_one_json_line_of_figures() -> None:
    command = [sys.executable, "-m", "ikn", "bench", "ui-latency", "--changes", "4"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    figures = orjson.loads(lines[0])
    assert (figures["changes"], figures["speed"]) == (4, 60.0)
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert 0 < figures["ceiling_p50_ms"] <= figures["ceiling_p99_ms"]
    assert 0 < figures["own_stream_p50_ms"] <= figures["p50_ms"]
    assert figures["ratio"] > 0 and figures["ratio_p99"] > 0
    assert figures["page_work_p50_ms"] >= 0
    assert 0 <= figures["clock_error_ms"] < 1000
