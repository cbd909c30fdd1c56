"""``ikn bench web`` runs end to end on a small floor and its figures are consistent
(no timing asserted): every page load 200, every booking through the page 303 and
through the API 201 (the benchmark raises otherwise), the page compressed, the plan
marked ready in Chromium."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

pytestmark = pytest.mark.browser


def test_bench_web_prints_one_json_line_of_figures() -> None:
    command = [sys.executable, "-m", "ikn", "bench", "web", "--desks", "24", "--users", "4"]
    command += ["--clients", "2", "--requests", "20"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    figures = orjson.loads(lines[0])
    assert (figures["desks"], figures["users"], figures["requests"]) == (24, 4, 20)
    assert figures["page_compressed"] is True
    assert 0 < figures["repeat_load_kb"] < figures["first_load_kb"]
    assert figures["assets"] >= 3  # the stylesheet, htmx, the floor plan's module at least
    for name in ("find", "book"):
        assert 0 < figures[f"{name}_p50_ms"] <= figures[f"{name}_p99_ms"]
        assert figures[f"{name}_ratio"] > 0
    assert figures["interactive_ms"] > 0
