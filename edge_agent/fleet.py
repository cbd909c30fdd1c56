"""Many devices in one process: each driver runs into its own edge agent.

``run_fleet`` is what the simulator (and a gateway hosting several sensors)
calls. Each device is one task of a ``TaskGroup``: it connects, pumps its
driver until the driver ends or ``stop`` is set, then closes gracefully
(flush, retained offline status, DISCONNECT). A device that fails is logged
and does not take the others down. A progress line says how many are connected.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig, AgentStats
from edge_agent.driver import Driver
from ikn_core.settings import MqttSettings

log = logging.getLogger(__name__)

FDS_PER_AGENT = 1  # one socket each: the agents share the asyncio loop (no socket pairs)
FD_HEADROOM = 256


@dataclass(frozen=True, slots=True)
class FleetStats:
    """Totals over a fleet's agents, when it has closed."""

    devices: int
    delivered: int
    dropped: int
    rejected: int
    refused: int
    undelivered: int  # readings still in an outbox at close

    @classmethod
    def of(cls, stats: Sequence[AgentStats]) -> FleetStats:
        return cls(
            devices=len(stats),
            delivered=sum(s.delivered for s in stats),
            dropped=sum(s.dropped for s in stats),
            rejected=sum(s.rejected for s in stats),
            refused=sum(s.refused for s in stats),
            undelivered=sum(s.outbox for s in stats),
        )


async def run_fleet(
    drivers: Sequence[Driver],
    mqtt: MqttSettings,
    stop: asyncio.Event,
    *,
    config: AgentConfig | None = None,
    progress_interval_s: float = 5.0,
    site_key: bytes | None = None,
) -> FleetStats:
    """Run each driver into its own ``EdgeAgent`` (client id = ``driver.device_id``)
    until ``stop`` is set (or every driver has ended), then close them all.
    ``site_key`` turns badge readers' card numbers into tokens."""
    ids = [d.device_id for d in drivers]
    if len(set(ids)) != len(ids):
        raise ValueError("two drivers share a device id; each needs its own MQTT client id")
    ensure_fd_limit(len(drivers) * FDS_PER_AGENT + FD_HEADROOM)
    agents = [EdgeAgent(d.device_id, mqtt, config=config, site_key=site_key) for d in drivers]
    log.info("fleet: starting %d devices on %s", len(agents), mqtt.url)
    async with asyncio.TaskGroup() as tg:
        reporter = tg.create_task(_report_progress(agents, stop, progress_interval_s))
        devices = [
            tg.create_task(_run_device(a, d, stop)) for a, d in zip(agents, drivers, strict=True)
        ]
        await asyncio.gather(*devices)
        reporter.cancel()
    totals = FleetStats.of([a.stats for a in agents])
    log.info("fleet: closed %s", totals)
    return totals


async def _run_device(agent: EdgeAgent, driver: Driver, stop: asyncio.Event) -> None:
    try:
        async with agent:
            await agent.pump(driver, stop)
    except Exception:
        log.exception("fleet: device %s failed", agent.device_id)


async def _report_progress(agents: Sequence[EdgeAgent], stop: asyncio.Event, every: float) -> None:
    """Log ``connected N/M`` when the count has changed, at most every ``every`` seconds
    (at once when all are connected), until ``stop`` is set."""
    total, last = len(agents), -1
    poll = min(every, 0.5)
    waited = every
    while not stop.is_set():
        connected = sum(a.connected for a in agents)
        if connected != last and (waited >= every or connected == total):
            log.info("fleet: connected %d/%d devices", connected, total)
            last, waited = connected, 0.0
        try:
            async with asyncio.timeout(poll):
                await stop.wait()
        except TimeoutError:
            waited += poll


def ensure_fd_limit(needed: int) -> None:
    """Raise this process's open-file limit towards ``needed`` (each agent holds a
    socket); warn when the hard limit is lower."""
    if sys.platform == "win32":
        return
    import resource  # Unix only

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    log.info("fleet: raised the open-file limit from %d to %d", soft, target)
    if target < needed:
        log.warning("fleet: needs about %d open files, the hard limit is %d", needed, hard)
