"""``ikn sim --serial``: each simulated device writes the serial line protocol to a
pseudo-terminal and its agent reads it with the real ``SerialDriver``; with the
``line-noise`` fault the driver skips (and counts) exactly the garbage injected,
and PostgreSQL holds exactly what the devices said."""

from __future__ import annotations

import random
from collections import Counter
from contextlib import suppress

from edge_agent.serial_driver import GarbageError, parse_frame
from firmware_sim import scenario_from_dict
from firmware_sim.faults import parse_faults
from firmware_sim.runner import SimOptions
from firmware_sim.serial_link import frame_line, garbage_line
from ikn_core.contract import Observation
from tests.helpers import eventually
from tests.test_sim_faults import SCENARIO, Platform, Row, platform

__all__ = ["platform"]  # the fixture, shared with test_sim_faults


def without_ts(rows: Counter[Row]) -> Counter[tuple[str, str, str]]:
    """The serial driver stamps a frame when its line arrives: compare all but ``ts``."""
    out: Counter[tuple[str, str, str]] = Counter()
    for (device, _ts, kind, body), n in rows.items():
        out[device, kind, body] += n
    return out


def test_frames_round_trip_and_garbage_is_always_garbage() -> None:
    observations = [
        Observation("desk_occupancy", 1, {"occupied": True}),
        Observation("people_count", 1, {"count": 17}),
        Observation("environment", 1, {"co2_ppm": 612, "temp_c": 24.53, "humidity_pct": 58.0}),
        Observation("badge_tap", 1, {"card": "0004417", "direction": "out"}),
    ]
    rng = random.Random(3)
    for obs in observations:
        line = frame_line(obs)
        assert line.endswith(b"\n") and parse_frame(line[:-1], 1) == obs
        for _ in range(50):
            bad = garbage_line(rng, line)
            assert bad.count(b"\n") == 1 and bad.endswith(b"\n")
            try:
                parse_frame(bad[:-1], 1)
            except GarbageError:
                continue
            raise AssertionError(f"{bad!r} parsed")


async def test_serial_lines_with_noise_store_exactly_what_the_devices_said(
    platform: Platform,
) -> None:
    options = SimOptions(faults=parse_faults(["line-noise=0.2"]), serial=True)
    made, result = await platform.simulate(scenario_from_dict(SCENARIO), options, seconds=4)
    assert made.total >= 150
    noise = result.faults["line-noise"]
    assert noise >= 20 and result.garbage == noise  # each garbage line skipped and counted
    with suppress(AssertionError):  # compared below, with what is missing
        await eventually(platform.stored, lambda s: sum(s.values()) >= made.total, 30)
    stored = without_ts(await platform.stored())
    assert stored == without_ts(made.rows), (result, without_ts(made.rows) - stored)
    assert result.fleet.undelivered == 0
