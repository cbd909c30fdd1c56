"""Simulated devices: drivers (async iterators of observations) for the edge agent.

Each matches ``edge_agent.Driver`` by shape (``device_id`` and ``__aiter__``)
without importing it: the simulator's devices stand where hardware would.

- :class:`DeskSensor` reports its desk's state at once when started (so a live
  view fills immediately), then every change, and a heartbeat between changes.
- :class:`PeopleCounter` reports its zone's head count every interval.
- :class:`EnvironmentSensor` reports its floor's CO2, temperature and humidity.

Every device also takes what the platform sends down (:class:`Controls`): it records
commands and display states, and a counter or environment sensor samples at the
pushed ``sample_interval_s``.

The devices of one building share an :class:`Occupancy`, so counters and air
follow the desks. Each device draws from its own generator seeded with
``(seed, device id)``: a run is reproducible whatever the order devices start in.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TypeVar

from firmware_sim.behaviour import (
    BadgeBehaviour,
    CounterBehaviour,
    DeskBehaviour,
    EnvironmentBehaviour,
)
from firmware_sim.clock import SimClock
from firmware_sim.models import (
    DAY,
    MINUTE,
    Air,
    badge_cards,
    badge_day,
    desk_reports,
    people_count,
)
from firmware_sim.scenario import DevicePlan, Scenario
from ikn_core.contract import ConfigCommand, DisplayCommand, DownCommand, Observation
from ikn_core.domain import DeviceKind

B = TypeVar("B", DeskBehaviour, CounterBehaviour, EnvironmentBehaviour, BadgeBehaviour)


class Occupancy:
    """Which desks are taken now, by zone; written by desk sensors, read by the others."""

    def __init__(self, desk_zones: Mapping[str, str]) -> None:
        self._desk_zones = dict(desk_zones)
        self._taken: dict[str, set[str]] = {zone: set() for zone in desk_zones.values()}

    def set(self, desk_id: str, occupied: bool) -> None:
        taken = self._taken[self._desk_zones[desk_id]]
        if occupied:
            taken.add(desk_id)
        else:
            taken.discard(desk_id)

    def people(self, zones: Iterable[str]) -> int:
        return sum(len(self._taken.get(zone, ())) for zone in zones)


KEEP_COMMANDS = 100  # commands and display states a simulated device remembers


class Controls:
    """The downlink's end in a simulated device: what it was told, newest last."""

    def __init__(self) -> None:
        self.commands: deque[DownCommand] = deque(maxlen=KEEP_COMMANDS)
        self.displays: deque[DisplayCommand] = deque(maxlen=KEEP_COMMANDS)
        self.sample_interval_s: float | None = None

    def on_command(self, command: DownCommand) -> None:
        """Called by the edge agent for ``config``, ``identify`` and ``reboot``."""
        self.commands.append(command)
        if isinstance(command, ConfigCommand) and command.sample_interval_s is not None:
            self.sample_interval_s = float(command.sample_interval_s)

    def show(self, display: DisplayCommand) -> None:
        """Called by the edge agent with what the desk display shows now."""
        self.displays.append(display)

    def interval(self, default: float) -> float:
        return self.sample_interval_s if self.sample_interval_s is not None else default


BATTERY_DRAIN_PCT_PER_DAY = 0.25  # a coin-cell sensor lasts about a year


class Battery:
    """A battery-powered device's charge: starts between 10 and 100 % (its own
    generator, so readings stay as they were) and drains with simulated time."""

    def __init__(self, device_id: str, clock: SimClock) -> None:
        self._start = random.Random(f"battery:{device_id}").uniform(10.0, 100.0)
        self._battery_clock = clock

    @property
    def battery_pct(self) -> int:
        """What the edge agent reports in the device's status (``battery_pct``)."""
        days = self._battery_clock.now() / 86_400
        return max(0, round(self._start - days * BATTERY_DRAIN_PCT_PER_DAY))


def _expect(plan: DevicePlan, cls: type[B]) -> B:
    if not isinstance(plan.behaviour, cls):
        raise TypeError(f"{plan.device.id}: expected {cls.__name__}, got {plan.behaviour!r}")
    return plan.behaviour


def device_rng(seed: int, device_id: str) -> random.Random:
    """The generator of one device: the same for the same seed and id, on any machine."""
    return random.Random(f"{seed}:{device_id}")


class DeskSensor(Controls, Battery):
    """An occupancy sensor under one desk (iterate it once: it is one device's life)."""

    def __init__(
        self, plan: DevicePlan, clock: SimClock, rng: random.Random, occupancy: Occupancy
    ) -> None:
        behaviour = _expect(plan, DeskBehaviour)
        if plan.device.desk_id is None:
            raise TypeError(f"{plan.device.id}: a desk sensor needs a desk")
        Controls.__init__(self)
        Battery.__init__(self, plan.device.id, clock)
        self.device_id = plan.device.id
        self.desk_id = plan.device.desk_id
        self._clock = clock
        self._occupancy = occupancy
        self._reports = desk_reports(rng, behaviour)
        self._first = next(self._reports)
        occupancy.set(self.desk_id, self._first[1])  # counters see the desks from the start

    async def __aiter__(self) -> AsyncIterator[Observation]:
        t, occupied = self._first
        while True:
            await self._clock.sleep_until(t)
            self._occupancy.set(self.desk_id, occupied)
            yield Observation("desk_occupancy", self._clock.epoch_ms(), {"occupied": occupied})
            t, occupied = next(self._reports)


class PeopleCounter(Controls):
    """A people counter over one zone's entrance."""

    def __init__(
        self, plan: DevicePlan, clock: SimClock, rng: random.Random, occupancy: Occupancy
    ) -> None:
        Controls.__init__(self)
        self._behaviour = _expect(plan, CounterBehaviour)
        self.device_id = plan.device.id
        self.zones = plan.zones
        self._clock, self._rng, self._occupancy = clock, rng, occupancy

    async def __aiter__(self) -> AsyncIterator[Observation]:
        t, default = 0.0, self._behaviour.interval_minutes * MINUTE
        while True:
            await self._clock.sleep_until(t)
            seated = self._occupancy.people(self.zones)
            count = people_count(self._rng, self._behaviour, seated)
            yield Observation("people_count", self._clock.epoch_ms(), {"count": count})
            t += self.interval(default)


class EnvironmentSensor(Controls, Battery):
    """A CO2, temperature and humidity sensor on one floor."""

    def __init__(
        self, plan: DevicePlan, clock: SimClock, rng: random.Random, occupancy: Occupancy
    ) -> None:
        Controls.__init__(self)
        Battery.__init__(self, plan.device.id, clock)
        self._behaviour = _expect(plan, EnvironmentBehaviour)
        self.device_id = plan.device.id
        self.zones = plan.zones
        self._clock, self._rng, self._occupancy = clock, rng, occupancy

    async def __aiter__(self) -> AsyncIterator[Observation]:
        t, default = 0.0, self._behaviour.interval_minutes * MINUTE
        air = Air.settled(self._behaviour, self._occupancy.people(self.zones))
        step = 0.0
        while True:
            await self._clock.sleep_until(t)
            people = self._occupancy.people(self.zones)
            air.step(step, people)
            fields = air.sample(self._rng, people)
            yield Observation("environment", self._clock.epoch_ms(), fields)
            step = self.interval(default)
            t += step


class BadgeReader(Controls):
    """A badge reader at a building entrance: taps in waves (``BadgeBehaviour``), each
    with the card number as the hardware reads it; the edge agent turns it into the
    site-keyed token before anything is stored or sent (it needs the site key)."""

    def __init__(
        self, plan: DevicePlan, clock: SimClock, rng: random.Random, _occupancy: Occupancy
    ) -> None:
        Controls.__init__(self)
        self._behaviour = _expect(plan, BadgeBehaviour)
        self.device_id = plan.device.id
        self._clock, self._rng = clock, rng
        self.cards = badge_cards(rng, self._behaviour)

    async def __aiter__(self) -> AsyncIterator[Observation]:
        day = 0
        while True:
            for t, card, direction in badge_day(self._rng, self._behaviour, self.cards, day):
                await self._clock.sleep_until(t)
                fields = {"card": card, "direction": direction}
                yield Observation("badge_tap", self._clock.epoch_ms(), fields)
            day += 1
            await self._clock.sleep_until(day * DAY)


SimDriver = DeskSensor | PeopleCounter | EnvironmentSensor | BadgeReader
_DRIVERS: dict[DeviceKind, type[SimDriver]] = {
    DeviceKind.BADGE_READER: BadgeReader,
    DeviceKind.DESK_SENSOR: DeskSensor,
    DeviceKind.PEOPLE_COUNTER: PeopleCounter,
    DeviceKind.ENVIRONMENT: EnvironmentSensor,
}


def build_drivers(scenario: Scenario, clock: SimClock, seed: int = 0) -> list[SimDriver]:
    """A driver for every device of the scenario, sharing one clock and one occupancy."""
    occupancy = Occupancy({d.id: d.zone_id for d in scenario.site.desks})
    return [
        _DRIVERS[plan.device.kind](plan, clock, device_rng(seed, plan.device.id), occupancy)
        for plan in scenario.plans
    ]
