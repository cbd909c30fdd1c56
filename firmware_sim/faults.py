"""Fault injection for ``ikn sim``: what ``--fault`` switches mean, checked.

Each switch is one ``--fault`` argument (repeat it for several); times are real
seconds since the simulation started (``500ms``, ``30s``, ``2m``, ``1h``; a bare
number is seconds)::

    broker-outage=DURATION@AT   the broker is unreachable for DURATION from AT
                                (the devices reach it through an in-process TCP proxy
                                that the simulator cuts); repeatable
    agent-kill@AT               every agent vanishes at AT (no flush, no DISCONNECT)
    agent-kill=DEVICE@AT        ... only DEVICE's; a fresh agent restarts from the
                                device's durable outbox (needs --outbox-dir); repeatable
    duplicate=P                 each batch is published again after its PUBACK with
                                probability P (0..1)
    reorder=P                   each batch is held back behind the next with probability P
    line-noise=P                before each serial frame, a garbage line (noise bytes or
                                a half frame) with probability P (needs --serial)
    flood=DEVICE:RATE/s         DEVICE sends RATE extra readings a second (a copy of its
                                latest reading, stamped now); repeatable
    clock-skew=DURATION         every device's clock is DURATION ahead (``-90s``: behind);
                                overrides IKN_SIM_CLOCK_SKEW_S

A malformed switch raises :class:`FaultError` naming it (``ikn sim`` exits 2).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from firmware_sim.errors import FaultError
from firmware_sim.scenario import Scenario
from ikn_core.contract import Observation
from ikn_core.contract.identifiers import ID

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_RATE = re.compile(r"^(\d+(?:\.\d+)?)/s$")
MAX_FLOOD_PER_S = 100_000.0


@dataclass(frozen=True, slots=True)
class Outage:
    at_s: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class Kill:
    at_s: float
    device_id: str | None  # None: every agent


@dataclass(frozen=True, slots=True)
class Flood:
    device_id: str
    per_s: float


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Every fault a run injects; the default injects none."""

    outages: tuple[Outage, ...] = ()
    kills: tuple[Kill, ...] = ()
    duplicate: float = 0.0
    reorder: float = 0.0
    line_noise: float = 0.0
    floods: tuple[Flood, ...] = ()
    clock_skew_s: float | None = None
    specs: tuple[str, ...] = field(default=(), compare=False)  # as given, for messages

    def check(self, scenario: Scenario, *, serial: bool, durable: bool) -> None:
        """Raise FaultError when a switch does not fit this run."""
        known = {plan.device.id for plan in scenario.plans}
        for kill in self.kills:
            if not durable:
                raise FaultError(
                    self._spec("agent-kill"),
                    "needs --outbox-dir (a killed agent restarts from its durable outbox)",
                )
            if kill.device_id is not None and kill.device_id not in known:
                raise FaultError(
                    self._spec("agent-kill"),
                    f"no device {kill.device_id} in scenario {scenario.name}",
                )
        for flood in self.floods:
            if flood.device_id not in known:
                raise FaultError(
                    self._spec("flood"), f"no device {flood.device_id} in scenario {scenario.name}"
                )
        if self.line_noise and not serial:
            raise FaultError(
                self._spec("line-noise"), "needs --serial (the noise is on the serial line)"
            )

    def _spec(self, name: str) -> str:
        return next((s for s in self.specs if s.startswith(name)), name)


def parse_faults(specs: Iterable[str]) -> FaultPlan:
    """The plan for the ``--fault`` switches given; FaultError for a bad one."""
    plan = FaultPlan()
    seen: set[str] = set()
    for spec in specs:
        name = re.split(r"[=@]", spec, maxsplit=1)[0]
        if name in seen and name not in _REPEATABLE:
            raise FaultError(spec, f"{name} is given twice")
        seen.add(name)
        parse = _PARSERS.get(name)
        if parse is None:
            raise FaultError(spec, f"unknown fault {name!r}; known: {', '.join(_PARSERS)}")
        plan = parse(plan, spec, spec[len(name) :])
    return replace(plan, specs=tuple(specs))


def duration_s(text: str, spec: str, what: str, *, signed: bool = False) -> float:
    """``30s`` / ``500ms`` / ``2m`` / ``1h`` / ``12`` (seconds) as seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise FaultError(spec, f"{what} {text!r} is not a duration such as 500ms, 30s, 2m")
    value = float(match[1]) * _UNITS[match[2]]
    if value < 0 and not signed:
        raise FaultError(spec, f"{what} must not be negative")
    return value


def _probability(plan: FaultPlan, spec: str, rest: str, name: str) -> FaultPlan:
    if not rest.startswith("="):
        raise FaultError(spec, f"expected {name}=P, P a probability such as 0.05")
    try:
        p = float(rest[1:])
    except ValueError:
        raise FaultError(spec, f"{rest[1:]!r} is not a number") from None
    if not 0.0 < p <= 1.0:
        raise FaultError(spec, "the probability must be above 0 and at most 1")
    if name == "duplicate":
        return replace(plan, duplicate=p)
    if name == "reorder":
        return replace(plan, reorder=p)
    return replace(plan, line_noise=p)


def _outage(plan: FaultPlan, spec: str, rest: str) -> FaultPlan:
    duration, at, ok = _value_at(rest)
    if not ok:
        raise FaultError(spec, "expected broker-outage=DURATION@AT, as in broker-outage=30s@60s")
    outage = Outage(duration_s(at, spec, "AT"), duration_s(duration, spec, "DURATION"))
    if outage.duration_s <= 0:
        raise FaultError(spec, "the outage must last a while")
    return replace(plan, outages=(*plan.outages, outage))


def _kill(plan: FaultPlan, spec: str, rest: str) -> FaultPlan:
    device, at, ok = _value_at(rest)
    if not ok or (device and not ID.fullmatch(device)):
        raise FaultError(spec, "expected agent-kill@AT or agent-kill=DEVICE@AT")
    kill = Kill(duration_s(at, spec, "AT"), device or None)
    return replace(plan, kills=(*plan.kills, kill))


def _flood(plan: FaultPlan, spec: str, rest: str) -> FaultPlan:
    device, colon, rate = rest.removeprefix("=").rpartition(":")
    match = _RATE.match(rate)
    if not rest.startswith("=") or not colon or not ID.fullmatch(device) or match is None:
        raise FaultError(spec, "expected flood=DEVICE:RATE/s, as in flood=desk-f1-a-01:200/s")
    per_s = float(match[1])
    if not 0 < per_s <= MAX_FLOOD_PER_S:
        raise FaultError(spec, f"the rate must be above 0 and at most {MAX_FLOOD_PER_S:g}/s")
    return replace(plan, floods=(*plan.floods, Flood(device, per_s)))


def _skew(plan: FaultPlan, spec: str, rest: str) -> FaultPlan:
    if not rest.startswith("="):
        raise FaultError(spec, "expected clock-skew=DURATION, as in clock-skew=-90s")
    return replace(plan, clock_skew_s=duration_s(rest[1:], spec, "DURATION", signed=True))


def _value_at(rest: str) -> tuple[str, str, bool]:
    """``=VALUE@AT`` or ``@AT`` as (VALUE or "", AT, well formed)."""
    value, at_sign, at = rest.removeprefix("=").rpartition("@")
    well_formed = bool(at_sign) and bool(at) and (rest.startswith("=") == bool(value))
    return value, at, well_formed


_PARSERS = {
    "broker-outage": _outage,
    "agent-kill": _kill,
    "duplicate": lambda plan, spec, rest: _probability(plan, spec, rest, "duplicate"),
    "reorder": lambda plan, spec, rest: _probability(plan, spec, rest, "reorder"),
    "line-noise": lambda plan, spec, rest: _probability(plan, spec, rest, "line-noise"),
    "flood": _flood,
    "clock-skew": _skew,
}
_REPEATABLE = frozenset({"broker-outage", "agent-kill", "flood"})


def fault_names() -> Sequence[str]:
    return tuple(_PARSERS)


class FloodingDriver:
    """The ``flood`` fault: ``inner``'s observations, and ``per_s`` extra ones a real
    second between them (a copy of its latest, stamped now by ``epoch_ms``)."""

    TICK_S = 0.05

    def __init__(self, inner: Any, per_s: float, epoch_ms: Callable[[], int]) -> None:
        self.inner = inner
        self.device_id: str = inner.device_id
        self.per_s = per_s
        self.extra = 0
        self._epoch_ms = epoch_ms

    def __getattr__(self, name: str) -> Any:  # on_command, show: the device's own
        return getattr(self.inner, name)

    async def __aiter__(self) -> AsyncIterator[Observation]:
        queue: asyncio.Queue[Observation] = asyncio.Queue(maxsize=1)
        own = asyncio.create_task(_into(self.inner, queue))
        loop = asyncio.get_running_loop()
        latest: Observation | None = None
        due, owed = loop.time(), 0.0
        try:
            while True:
                obs = await _get_until(queue, due)
                if obs is not None:
                    latest = obs
                    yield obs
                    continue
                due += self.TICK_S
                owed += self.per_s * self.TICK_S
                while owed >= 1 and latest is not None:
                    owed -= 1
                    self.extra += 1
                    if self.extra == 1 or self.extra % 1000 == 0:
                        log.info("fault flood: %s: %d extra readings", self.device_id, self.extra)
                    yield Observation(latest.kind, self._epoch_ms(), dict(latest.fields))
        finally:
            own.cancel()


async def _into(driver: Any, queue: asyncio.Queue[Observation]) -> None:
    async for obs in driver:
        await queue.put(obs)


async def _get_until(queue: asyncio.Queue[Observation], deadline: float) -> Observation | None:
    try:
        async with asyncio.timeout_at(deadline):
            return await queue.get()
    except TimeoutError:
        return None
