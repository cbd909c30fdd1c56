"""``ikn edge-agent``: one device's edge agent; ``ikn bench edge``: its footprint and drain rate.

Edge-side only: nothing here imports the server libraries (tests/test_layers.py),
so a badge reader that installed the base package runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from ikn.logs import configure
from ikn.running import run_until_signal
from ikn_core.errors import SettingsError
from ikn_core.settings import EdgeSettings, describe

log = logging.getLogger(__name__)


def cmd_edge_agent(_args: argparse.Namespace) -> None:
    settings = EdgeSettings.from_env()
    configure(settings.log, "edge-agent")
    run_until_signal(lambda stop: run_edge_agent(settings, stop))


async def run_edge_agent(settings: EdgeSettings, stop: asyncio.Event) -> None:
    """Run the configured driver into an agent with a durable outbox until ``stop``."""
    from edge_agent import AgentConfig, EdgeAgent, SqliteOutbox

    driver = _driver(settings)
    log.info("edge-agent: %s", describe(settings))
    outbox = SqliteOutbox(
        settings.outbox_path,
        settings.outbox_max_readings,
        synchronous="NORMAL" if settings.outbox_sync == "NORMAL" else "FULL",
    )
    config = AgentConfig(
        await_stored=settings.await_stored,
        stored_timeout_s=settings.stored_timeout_s,
        stored_timeout_max_s=max(300.0, settings.stored_timeout_s),
    )
    try:
        agent = EdgeAgent(
            settings.device_id,
            settings.mqtt,
            config=config,
            outbox=outbox,
            site_key=settings.site_key,
        )
        async with agent:
            await agent.pump(driver, stop)
    finally:
        outbox.close()


def _driver(settings: EdgeSettings) -> Any:
    """The device's driver: ``serial`` reads the line protocol from a port; ``sim``
    plays the device of that id in a scenario."""
    if settings.driver == "serial":
        from edge_agent.serial_driver import SerialDriver

        return SerialDriver(settings.device_id, settings.serial_port)
    from firmware_sim.clock import ScaledClock
    from firmware_sim.devices import build_drivers
    from firmware_sim.scenario import load_scenario

    scenario = load_scenario(settings.sim_scenario)
    drivers = build_drivers(scenario, ScaledClock(settings.speed), settings.seed)
    for driver in drivers:
        if driver.device_id == settings.device_id:
            return driver
    raise SettingsError(
        [
            f"IKN_DEVICE_ID={settings.device_id!r}: no such device in scenario "
            f"{settings.sim_scenario!r} (IKN_SIM_SCENARIO)"
        ]
    )


def cmd_bench_edge(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    from ikn.benchmarks.edge import Options, run
    from ikn.benchmarks.results import emit

    options = Options(queued=args.queued, idle_s=args.idle_s, ack=args.ack)
    emit(args, run(options))


def register(sub: Any) -> None:
    agent = sub.add_parser("edge-agent", help="run one device's edge agent (durable outbox)")
    agent.set_defaults(func=cmd_edge_agent)


def register_bench(kinds: Any) -> None:
    """``ikn bench edge`` (called by ikn/commands/bench.py)."""
    edge = kinds.add_parser("edge", help="edge agent RSS, CPU, drain readings/s, outbox bytes")
    edge.add_argument("--queued", type=int, default=1_000_000, help="readings left by an outage")
    edge.add_argument("--idle-s", type=float, default=10.0, help="seconds at 10 readings/s")
    edge.add_argument(
        "--ack",
        choices=("none", "puback", "stored"),
        default="none",
        help="none: broker only; puback/stored: with PostgreSQL and an ingest, the agent"
        " forgetting readings on the PUBACK or on the ingest's stored notice",
    )
    edge.set_defaults(func=cmd_bench_edge)
