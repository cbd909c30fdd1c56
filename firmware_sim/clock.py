"""Simulated time.

Behaviour is paced by simulated seconds since the simulation started:
``ScaledClock(speed=60)`` runs one simulated minute per real second, so a
desk's 50-minute sit lasts under a minute of real time. A device's clock (the
``ts`` of its readings) is still the real wall clock: the platform sees
readings of *now*, only more eventful ones (readings stamped hours ahead would
land in future partitions and confuse "live" views).

Tests inject a :class:`VirtualClock` instead: sleeping jumps time forward at
once, so hours of one device's behaviour run in milliseconds, deterministically.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

# 2026-11-17 08:00 WITA, a Tuesday: where a VirtualClock starts unless told otherwise.
VIRTUAL_EPOCH_MS = 1_794_873_600_000


class SimClock(Protocol):
    """What simulated devices know of time."""

    def now(self) -> float:
        """Simulated seconds since the simulation started."""
        ...

    def epoch_ms(self) -> int:
        """What the device's own clock reads, epoch milliseconds UTC (a reading's ``ts``)."""
        ...

    async def sleep_until(self, t: float) -> None:
        """Return when ``now() >= t`` (at once if it already is)."""
        ...


class ScaledClock:
    """Simulated time running ``speed`` times faster than real time; ``ts`` is real."""

    def __init__(
        self,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._monotonic = monotonic
        self._wall = wall
        self._start = monotonic()

    def now(self) -> float:
        return (self._monotonic() - self._start) * self.speed

    def epoch_ms(self) -> int:
        return int(self._wall() * 1000)

    async def sleep_until(self, t: float) -> None:
        delay = (t - self.now()) / self.speed
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """Time that jumps to wherever the device sleeps until: for driving one
    device's driver in a test (two devices sharing it would push each other's time)."""

    def __init__(self, start_epoch_ms: int = VIRTUAL_EPOCH_MS) -> None:
        self._start_epoch_ms = start_epoch_ms
        self._now = 0.0

    def now(self) -> float:
        return self._now

    def epoch_ms(self) -> int:
        return self._start_epoch_ms + int(self._now * 1000)

    async def sleep_until(self, t: float) -> None:
        self._now = max(self._now, t)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is


class SkewedClock:
    """Fault injection: ``inner``'s pace, but a device clock ``skew_ms`` off (positive:
    ahead), as a device with a drifting or unsynchronised clock stamps its readings."""

    def __init__(self, inner: SimClock, skew_ms: int) -> None:
        self._inner = inner
        self.skew_ms = skew_ms

    def now(self) -> float:
        return self._inner.now()

    def epoch_ms(self) -> int:
        return self._inner.epoch_ms() + self.skew_ms

    async def sleep_until(self, t: float) -> None:
        await self._inner.sleep_until(t)
