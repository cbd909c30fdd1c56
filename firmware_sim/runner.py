"""Running a simulated building: every device of a scenario behind its own edge agent.

This is the one module of ``firmware_sim`` that imports ``edge_agent``: the
device models and scenarios stay importable on their own.

``SimOptions`` adds what ``ikn sim`` switches on: fault injection
(``firmware_sim.faults``), durable outboxes (one SQLite file per device) and
``serial`` (each device on a pseudo-terminal, read by the real ``SerialDriver``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent import AgentConfig
from edge_agent.faults import DeliveryFaults
from edge_agent.fleet import Fleet, FleetStats, ensure_fd_limit
from edge_agent.serial_driver import SerialDriver
from firmware_sim.clock import ScaledClock, SimClock, SkewedClock
from firmware_sim.devices import build_drivers
from firmware_sim.faults import FaultPlan, FloodingDriver
from firmware_sim.proxy import BrokerProxy
from firmware_sim.scenario import Scenario
from firmware_sim.serial_link import PtyLink
from ikn_core.contract import Observation
from ikn_core.settings import MqttSettings, SimSettings

log = logging.getLogger(__name__)

FIRMWARE = "ikn-sim/0.1"
DRAIN_S = 10.0  # at the end of a --serial run, for the agents to read what waits on the lines
FDS_PER_PTY = 3  # master and slave here, the slave again in the agent's driver

Observe = Callable[[str, Observation], None]


@dataclass(frozen=True, slots=True)
class SimOptions:
    """What ``ikn sim`` switches on beyond the settings."""

    faults: FaultPlan = field(default_factory=FaultPlan)
    serial: bool = False
    outbox_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class SimResult:
    """A finished run: the fleet's totals and each fault's count."""

    fleet: FleetStats
    faults: dict[str, int]
    garbage: int  # lines the agents' serial drivers skipped


async def run_sim(
    settings: SimSettings,
    scenario: Scenario,
    stop: asyncio.Event,
    *,
    clock: SimClock | None = None,
    agent_config: AgentConfig | None = None,
    options: SimOptions | None = None,
    observe: Observe | None = None,
) -> SimResult:
    """Simulate ``scenario`` at ``settings.speed`` with ``settings.seed`` until ``stop``
    is set; then every agent flushes, says offline and disconnects (the fleet logs
    its totals). ``clock``, ``agent_config`` and ``observe`` (called with every
    observation a device makes) are for tests and benchmarks."""
    options = options or SimOptions()
    plan = options.faults
    plan.check(scenario, serial=options.serial, durable=options.outbox_dir is not None)
    clock = clock or ScaledClock(settings.speed)
    skew_s = settings.clock_skew_s if plan.clock_skew_s is None else plan.clock_skew_s
    if skew_s:  # fault injection: every device's clock is off
        clock = SkewedClock(clock, round(skew_s * 1000))
    devices: list[Any] = list(build_drivers(scenario, clock, settings.seed))
    floods = {f.device_id: f.per_s for f in plan.floods}
    devices = [
        FloodingDriver(d, floods[d.device_id], clock.epoch_ms) if d.device_id in floods else d
        for d in devices
    ]
    if observe is not None:
        devices = [Tapped(d, observe) for d in devices]
    log.info(
        "sim: %d devices in %s (%s, %s) at speed %gx, seed %d, broker %s (MQTT %s)%s%s",
        len(devices),
        scenario.building.id,
        scenario.building.name,
        scenario.name,
        settings.speed,
        settings.seed,
        settings.mqtt.url,
        settings.mqtt.protocol,
        ", serial lines" if options.serial else "",
        f", faults {' '.join(plan.specs)}" if plan.specs else "",
    )
    return await _Run(settings, plan, options, agent_config).run(devices, clock, stop)


class _Run:
    """One simulation: the fleet, the proxy and the serial lines the faults need."""

    def __init__(
        self,
        settings: SimSettings,
        plan: FaultPlan,
        options: SimOptions,
        agent_config: AgentConfig | None,
    ) -> None:
        self.settings, self.plan, self.options = settings, plan, options
        self.config = agent_config or AgentConfig(fw=FIRMWARE)
        self.proxy: BrokerProxy | None = None
        self.links: list[PtyLink] = []
        self.serial_drivers: list[SerialDriver] = []
        self.kills = 0
        self.outages = 0
        self.delivery: DeliveryFaults | None = None
        if plan.duplicate or plan.reorder:
            rng = random.Random(f"{settings.seed}:delivery")
            self.delivery = DeliveryFaults(plan.duplicate, plan.reorder, rng)

    async def run(self, devices: Sequence[Any], clock: SimClock, stop: asyncio.Event) -> SimResult:
        mqtt = await self._mqtt()
        agents_stop = asyncio.Event() if self.options.serial else stop
        agent_drivers = self._serial_drivers(devices, clock) if self.options.serial else devices
        fleet = Fleet(
            agent_drivers,
            mqtt,
            config=self.config,
            site_key=self.settings.site_key,
            outbox_dir=self.options.outbox_dir,
            faults=self.delivery,
            passwords=self.settings.device_passwords,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                running = tg.create_task(fleet.run(agents_stop))
                schedule = tg.create_task(self._schedule(fleet, stop))
                if self.options.serial:
                    tg.create_task(self._play_serial(devices, stop, agents_stop))
                totals = await running
                schedule.cancel()
        finally:
            for link in self.links:
                link.close()
            if self.proxy is not None:
                await self.proxy.close()
        result = SimResult(totals, self._fault_counts(devices), self._garbage())
        if self.plan.specs or self.options.serial:
            log.info(
                "sim: faults injected %s; serial garbage skipped %d", result.faults, result.garbage
            )
        return result

    async def _mqtt(self) -> MqttSettings:
        """The broker as the agents see it: through the proxy when it may go down."""
        mqtt = self.settings.mqtt
        if not self.plan.outages:
            return mqtt
        self.proxy = BrokerProxy(mqtt.url.host, mqtt.url.port)
        await self.proxy.start()
        log.info("sim: devices reach the broker through a proxy on port %d", self.proxy.port)
        url = dataclasses.replace(mqtt.url, host="127.0.0.1", port=self.proxy.port)
        return dataclasses.replace(mqtt, url=url)

    async def _schedule(self, fleet: Fleet, stop: asyncio.Event) -> None:
        """Cut and restore the proxy, kill agents, at their times (real seconds)."""
        events: list[tuple[float, str, Any]] = []
        for outage in self.plan.outages:
            events += [
                (outage.at_s, "cut", outage),
                (outage.at_s + outage.duration_s, "restore", outage),
            ]
        events += [(kill.at_s, "kill", kill.device_id) for kill in self.plan.kills]
        events.sort(key=lambda e: (e[0], e[1] != "restore"))
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            for at_s, what, arg in events:
                if await _stopped_by(stop, start + at_s):
                    return
                await self._inject(fleet, what, arg)
        finally:
            if self.proxy is not None and not self.proxy.up:
                await self.proxy.restore()  # so that the agents can flush as they close
                log.info("fault broker-outage: ended early, the simulation is stopping")

    async def _inject(self, fleet: Fleet, what: str, arg: Any) -> None:
        assert what != "cut" or self.proxy is not None
        if what == "cut" and self.proxy is not None:
            await self.proxy.cut()
            self.outages += 1
            log.warning(
                "fault broker-outage %d: the broker is unreachable for %gs",
                self.outages,
                arg.duration_s,
            )
        elif what == "restore" and self.proxy is not None:
            await self.proxy.restore()
            log.warning("fault broker-outage %d: the broker is reachable again", self.outages)
        elif what == "kill":
            targets = [arg] if arg is not None else [a.device_id for a in fleet.agents]
            for device_id in targets:
                await fleet.kill(device_id)
                self.kills += 1
            log.warning(
                "fault agent-kill: %d agents killed and restarted from their outboxes (%d so far)",
                len(targets),
                self.kills,
            )

    def _serial_drivers(self, devices: Sequence[Any], clock: SimClock) -> list[SerialDriver]:
        """A pseudo-terminal per device, and the agent's driver reading its other end."""
        ensure_fd_limit(len(devices) * FDS_PER_PTY + 256)
        for device in devices:
            rng = random.Random(f"{self.settings.seed}:noise:{device.device_id}")
            self.links.append(PtyLink(device.device_id, noise=self.plan.line_noise, rng=rng))
        self.serial_drivers = [
            SerialDriver(link.device_id, link.path, clock_ms=clock.epoch_ms) for link in self.links
        ]
        return self.serial_drivers

    async def _play_serial(
        self, devices: Sequence[Any], stop: asyncio.Event, agents_stop: asyncio.Event
    ) -> None:
        """Each device writes its frames to its line until ``stop``; then, once the
        agents have read what waits (at most ``DRAIN_S``), the agents stop."""
        try:
            async with asyncio.TaskGroup() as tg:
                for link in self.links:
                    link.start()
                for device, link in zip(devices, self.links, strict=True):
                    tg.create_task(_play(device, link, stop))
            await _drained(self.links, self.serial_drivers)
        finally:
            agents_stop.set()

    def _fault_counts(self, devices: Sequence[Any]) -> dict[str, int]:
        counts: dict[str, int] = {}
        if self.proxy is not None:
            counts["broker-outage"] = self.outages
        if self.plan.kills:
            counts["agent-kill"] = self.kills
        if self.delivery is not None:
            counts["duplicate"] = self.delivery.duplicated
            counts["reorder"] = self.delivery.reordered
        if self.plan.line_noise:
            counts["line-noise"] = sum(link.noise_lines for link in self.links)
        floods = [d for d in map(_unwrap, devices) if isinstance(d, FloodingDriver)]
        if floods:
            counts["flood"] = sum(d.extra for d in floods)
        return counts

    def _garbage(self) -> int:
        return sum(d.garbage for d in self.serial_drivers)


class Tapped:
    """A device whose every observation is also handed to ``observe`` (tests)."""

    def __init__(self, inner: Any, observe: Observe) -> None:
        self.inner = inner
        self.device_id: str = inner.device_id
        self._observe = observe

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def __aiter__(self) -> AsyncIterator[Observation]:
        async for obs in self.inner:
            self._observe(self.device_id, obs)
            yield obs


def _unwrap(device: Any) -> Any:
    return device.inner if isinstance(device, Tapped) else device


async def _play(device: Any, link: PtyLink, stop: asyncio.Event) -> None:
    """Write the device's frames until ``stop``; a frame begun is always finished
    (only the wait for the next observation is cancelled)."""
    observations = aiter(device)
    try:
        while (obs := await _next_unless(observations, stop)) is not None:
            await link.send(obs)
    finally:
        await observations.aclose()


async def _next_unless(
    observations: AsyncGenerator[Observation, None], stop: asyncio.Event
) -> Observation | None:
    """The next observation, or None once ``stop`` is set (or the device ended)."""
    if stop.is_set():
        return None
    following = asyncio.ensure_future(anext(observations, None))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if following.done():
        return following.result()
    following.cancel()
    with suppress(asyncio.CancelledError):
        await following
    return None


async def _drained(links: Sequence[PtyLink], drivers: Sequence[SerialDriver]) -> None:
    """Wait until every agent has read every line written to it (each frame and each
    garbage line counts once in its driver), for at most ``DRAIN_S``. (The
    pseudo-terminal's own byte count lags: the kernel moves bytes in a worker.)"""
    deadline = asyncio.get_running_loop().time() + DRAIN_S
    while any(
        d.open and d.frames + d.garbage < link.frames + link.noise_lines
        for link, d in zip(links, drivers, strict=True)
    ):
        if asyncio.get_running_loop().time() > deadline:
            log.warning("sim: closing with serial lines not yet read")
            return
        await asyncio.sleep(0.05)


async def _stopped_by(stop: asyncio.Event, deadline: float) -> bool:
    """Wait until the loop time ``deadline``; True when ``stop`` came first."""
    try:
        async with asyncio.timeout_at(deadline):
            await stop.wait()
    except TimeoutError:
        return False
    return True
