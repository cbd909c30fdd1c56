"""Many devices in one process: each driver runs into its own edge agent.

``run_fleet`` is what the simulator (and a gateway hosting several sensors)
calls. Each device is one task of a ``TaskGroup``: it connects, feeds its
driver's observations to its agent until the driver ends or ``stop`` is set, then
closes gracefully (flush, retained offline status, DISCONNECT). Outboxes are in
memory, or durable SQLite files, one per device (``outbox_dir``); the simulator's
fault injection can kill an agent and restart it from its file (``Fleet.kill``).
A device that fails is logged and does not take the others down. A progress line
says how many are connected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig, AgentStats
from edge_agent.driver import Driver
from edge_agent.errors import AgentClosedError
from edge_agent.faults import DeliveryFaults
from edge_agent.sqlite_outbox import SqliteOutbox
from ikn_core.settings import MqttSettings

log = logging.getLogger(__name__)

FDS_PER_AGENT = 1  # one socket each: the agents share the asyncio loop (no socket pairs)
FDS_PER_SQLITE_OUTBOX = 2  # the database and its WAL (exclusive: no shared-memory file)
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
    outbox_dir: Path | None = None,
    faults: DeliveryFaults | None = None,
) -> FleetStats:
    """Run each driver into its own ``EdgeAgent`` (client id = ``driver.device_id``)
    until ``stop`` is set (or every driver has ended), then close them all.
    ``site_key`` turns badge readers' card numbers into tokens; see :class:`Fleet`."""
    fleet = Fleet(
        drivers, mqtt, config=config, site_key=site_key, outbox_dir=outbox_dir, faults=faults
    )
    return await fleet.run(stop, progress_interval_s)


class Fleet:
    """Many devices, each driver behind its own agent, in one process.

    With ``outbox_dir`` every agent keeps its readings in a durable
    ``SqliteOutbox``, one file per device (``<outbox_dir>/<device id>.db``, WAL,
    ``synchronous=NORMAL``: it survives the process being killed, not a power cut;
    the simulator's host is not the device; locked exclusively: two descriptors each).
    One file per device is what a real device has, keeps each file a single stream as
    the outbox expects, and lets
    :meth:`kill` restart one agent from its own file. Without it the outboxes are
    in memory. ``faults`` (shared) makes every uplink duplicate and reorder batches.
    """

    def __init__(
        self,
        drivers: Sequence[Driver],
        mqtt: MqttSettings,
        *,
        config: AgentConfig | None = None,
        site_key: bytes | None = None,
        outbox_dir: Path | None = None,
        faults: DeliveryFaults | None = None,
        passwords: Mapping[str, str] | None = None,
    ) -> None:
        """``passwords``: each device logs in as itself (user name: its id) with its own
        password; without them every device uses ``mqtt``'s login."""
        ids = [d.device_id for d in drivers]
        if len(set(ids)) != len(ids):
            raise ValueError("two drivers share a device id; each needs its own MQTT client id")
        missing = sorted(set(ids) - set(passwords)) if passwords else []
        if missing:
            raise ValueError(f"no broker password for {len(missing)} device(s): {missing[:5]}")
        self._passwords = passwords
        self._mqtt, self._config, self._site_key = mqtt, config, site_key
        self._outbox_dir, self._faults = outbox_dir, faults
        if outbox_dir is not None:
            outbox_dir.mkdir(parents=True, exist_ok=True)
        per_agent = FDS_PER_AGENT + (FDS_PER_SQLITE_OUTBOX if outbox_dir is not None else 0)
        ensure_fd_limit(len(drivers) * per_agent + FD_HEADROOM)
        self._devices = {d.device_id: _Device(d, self._new_agent) for d in drivers}
        self.kills = 0

    @property
    def agents(self) -> list[EdgeAgent]:
        """The agents running now (a killed agent's successor replaces it)."""
        return [device.agent for device in self._devices.values()]

    def stats(self) -> FleetStats:
        """Totals over every agent, those killed included (what a killed agent held
        is its successor's to deliver: ``undelivered`` counts the agents of now)."""
        every = FleetStats.of([a.stats for d in self._devices.values() for a in d.generations])
        now = FleetStats.of([a.stats for a in self.agents])
        return dataclasses.replace(every, devices=now.devices, undelivered=now.undelivered)

    async def run(self, stop: asyncio.Event, progress_interval_s: float = 5.0) -> FleetStats:
        """Run every device until ``stop`` is set or its driver ends, then close them all."""
        log.info("fleet: starting %d devices on %s", len(self._devices), self._mqtt.url)
        async with asyncio.TaskGroup() as tg:
            reporter = tg.create_task(_report_progress(self, stop, progress_interval_s))
            devices = [tg.create_task(d.run(stop)) for d in self._devices.values()]
            await asyncio.gather(*devices)
            reporter.cancel()
        totals = self.stats()
        log.info("fleet: closed %s (%d agents killed and restarted)", totals, self.kills)
        return totals

    async def kill(self, device_id: str) -> None:
        """Fault injection: the agent of ``device_id`` vanishes as a SIGKILLed process
        would (no flush, no DISCONNECT: the broker publishes its Will) and a fresh
        agent takes over from the device's outbox file; the driver goes on."""
        device = self._devices[device_id]
        if device.closed:
            return
        await device.restart()
        self.kills += 1

    def _new_agent(self, device_id: str) -> tuple[EdgeAgent, SqliteOutbox | None]:
        outbox = None
        if self._outbox_dir is not None:
            capacity = (self._config or AgentConfig()).outbox_capacity
            path = self._outbox_dir / f"{device_id}.db"
            outbox = SqliteOutbox(path, capacity, synchronous="NORMAL", exclusive=True)
        mqtt = self._mqtt
        if self._passwords:
            mqtt = mqtt.with_login(device_id, self._passwords[device_id])
        agent = EdgeAgent(
            device_id,
            mqtt,
            config=self._config,
            outbox=outbox,
            site_key=self._site_key,
            faults=self._faults,
        )
        return agent, outbox


class _Device:
    """One driver and the agent feeding on it now; restartable (``restart``)."""

    def __init__(
        self, driver: Driver, new_agent: Callable[[str], tuple[EdgeAgent, SqliteOutbox | None]]
    ) -> None:
        self.driver = driver
        self._new_agent = new_agent
        self.agent, self._outbox = new_agent(driver.device_id)
        self.agent.attach(driver)
        self.generations = [self.agent]
        self.closed = False

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.agent.start()
            await _until_stopped(self._feed(), stop)
        except Exception:
            log.exception("fleet: device %s failed", self.driver.device_id)
        finally:
            self.closed = True
            await self.agent.close()
            if self._outbox is not None:
                self._outbox.close()

    async def restart(self) -> None:
        """Abort the agent, reopen the outbox file, start a fresh agent on it."""
        old, old_outbox = self.agent, self._outbox
        old.abort()  # from here on the old agent touches neither socket nor outbox
        if old_outbox is not None:
            old_outbox.close()
        self.agent, self._outbox = self._new_agent(self.driver.device_id)
        self.agent.attach(self.driver)
        self.generations.append(self.agent)
        await self.agent.start()  # no suspension before: the feeder submits to the new one
        await old.close()

    async def _feed(self) -> None:
        observations = aiter(self.driver)
        try:
            async for obs in observations:
                self.agent.submit(obs)
        except AgentClosedError:
            pass
        finally:
            aclose: Callable[[], Any] | None = getattr(observations, "aclose", None)
            if aclose is not None:
                await aclose()


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run ``work`` until it ends or ``stop`` is set (then cancel it)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, stopper):
            t.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    if not task.cancelled() and task.exception() is not None:
        log.error("fleet: the driver failed; no more observations", exc_info=task.exception())


async def _report_progress(fleet: Fleet, stop: asyncio.Event, every: float) -> None:
    """Log ``connected N/M`` when the count has changed, at most every ``every`` seconds
    (at once when all are connected), until ``stop`` is set."""
    total, last = len(fleet.agents), -1
    poll = min(every, 0.5)
    waited = every
    while not stop.is_set():
        connected = sum(a.connected for a in fleet.agents)
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
