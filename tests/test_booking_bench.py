"""``ikn bench booking`` runs end to end and its figures are consistent (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys

import orjson


def test_bench_booking_prints_one_json_line_of_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ikn", "bench", "booking", "--clients", "8", "--bookings", "60"],
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
