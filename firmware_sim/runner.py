"""Running a simulated building: every device of a scenario behind its own edge agent.

This is the one module of ``firmware_sim`` that imports ``edge_agent``: the
device models and scenarios stay importable on their own.
"""

from __future__ import annotations

import asyncio
import logging

from edge_agent import AgentConfig, run_fleet
from firmware_sim.clock import ScaledClock, SimClock, SkewedClock
from firmware_sim.devices import build_drivers
from firmware_sim.scenario import Scenario
from ikn_core.settings import SimSettings

log = logging.getLogger(__name__)

FIRMWARE = "ikn-sim/0.1"


async def run_sim(
    settings: SimSettings,
    scenario: Scenario,
    stop: asyncio.Event,
    *,
    clock: SimClock | None = None,
    agent_config: AgentConfig | None = None,
) -> None:
    """Simulate ``scenario`` at ``settings.speed`` with ``settings.seed`` until ``stop``
    is set; then every agent flushes, says offline and disconnects (the fleet logs
    its totals). ``clock`` and ``agent_config`` are for tests and benchmarks."""
    clock = clock or ScaledClock(settings.speed)
    if settings.clock_skew_s:  # fault injection: every device's clock is off
        clock = SkewedClock(clock, round(settings.clock_skew_s * 1000))
    drivers = build_drivers(scenario, clock, settings.seed)
    log.info(
        "sim: %d devices in %s (%s, %s) at speed %gx, seed %d, broker %s (MQTT %s)",
        len(drivers),
        scenario.building.id,
        scenario.building.name,
        scenario.name,
        settings.speed,
        settings.seed,
        settings.mqtt.url,
        settings.mqtt.protocol,
    )
    config = agent_config or AgentConfig(fw=FIRMWARE)
    await run_fleet(drivers, settings.mqtt, stop, config=config, site_key=settings.site_key)
