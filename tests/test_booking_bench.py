"""``ikn bench booking`` runs end to end and its figures are consistent (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest


@pytest.mark.parametrize("rate", [None, "120"])
def test_bench_booking_prints_one_json_line_of_figures(rate: str | None) -> None:
    """Closed loop, and open loop at a rate (60 requests at 120/s: about half a second)."""
    command = [
        sys.executable,
        "-m",
        "ikn",
        "bench",
        "booking",
        "--clients",
        "8",
        "--bookings",
        "60",
    ]
    done = subprocess.run(
        [*command, *(["--rate", rate] if rate else [])],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    figures = orjson.loads(lines[0])
    for key in ("bookings_per_s", "p50_ms", "p99_ms", "ceiling_bookings_per_s", "ratio"):
        assert figures[key] > 0, figures
    # 60 requests, 6 of them for a slot someone else wants: 54 win, 6 get 409, none 500.
    assert (figures["created"], figures["conflicts_409"], figures["errors_5xx"]) == (54, 6, 0)
    assert figures["double_bookings"] == 0
    assert figures["other_statuses"] == {}
    assert figures["rate"] == (float(rate) if rate else None)
    if rate:  # the requests were due over 0.5 s, so they cannot have taken much less
        assert figures["requests_per_s"] <= 130, figures


@pytest.mark.parametrize("rate", ["0", "-5", "fast"])
def test_a_bad_rate_is_refused_at_once(rate: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ikn", "bench", "booking", "--rate", rate],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--rate" in done.stderr
