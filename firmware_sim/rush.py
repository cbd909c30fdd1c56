"""The morning-rush scenario: thousands of ASN arriving between 07:00 and 08:00 local
time through the entrance readers of several buildings.

``morning_rush`` draws who arrives where and when (seeded: the same plan every run);
``RushReader`` is one door's badge reader replaying its share of the plan on a
``SimClock`` (at any speed) and reporting each tap with the card number, which the
edge agent turns into the badge token. A tap's ``ts`` is the planned arrival on
``day``, whatever the speed, so the records it makes can be checked exactly.
"""

from __future__ import annotations

import random
import time as clock_time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from firmware_sim.clock import SimClock
from ikn_core.contract import Observation

RUSH_START = time(7, 0)
RUSH_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Arrival:
    person: int  # index into the population
    card: str  # the card number the reader reads (10 digits)
    door: str  # the reader's device id
    offset_s: float  # seconds after 07:00 local time
    ts_ms: int  # epoch milliseconds of the tap


def card_number(person: int) -> str:
    return f"{person:010d}"


def home_door(person: int, doors: list[str]) -> str:
    """The door of a person's home building: people are spread over the buildings."""
    return doors[person % len(doors)]


def morning_rush(
    people: int,
    doors: list[str],
    day: date,
    zone: ZoneInfo,
    *,
    seed: int = 0,
    away_share: float = 0.1,
) -> list[Arrival]:
    """One arrival per person, uniform over 07:00-08:00 of ``day`` in ``zone``: at the
    door of their home building, or (``away_share`` of them) another building's;
    oldest first."""
    rng = random.Random(seed)
    start = datetime.combine(day, RUSH_START, zone)
    arrivals = []
    for person in range(people):
        offset = rng.uniform(0, RUSH_SECONDS)
        ts = start + timedelta(seconds=offset)
        door = home_door(person, doors)
        if rng.random() < away_share and len(doors) > 1:
            door = rng.choice([d for d in doors if d != door])
        arrivals.append(
            Arrival(person, card_number(person), door, offset, int(ts.timestamp() * 1000))
        )
    return sorted(arrivals, key=lambda a: a.offset_s)


class RushReader:
    """A door's badge reader replaying the rush: sleeps on ``clock`` until each planned
    arrival (simulated seconds after 07:00) and reports the tap."""

    def __init__(self, device_id: str, arrivals: list[Arrival], clock: SimClock) -> None:
        self.device_id = device_id
        self._arrivals = [a for a in arrivals if a.door == device_id]
        self._clock = clock
        self.finished: float | None = None  # monotonic seconds after the last tap

    async def __aiter__(self) -> AsyncIterator[Observation]:
        for a in self._arrivals:
            await self._clock.sleep_until(a.offset_s)
            yield Observation("badge_tap", a.ts_ms, {"card": a.card, "direction": "in"})
        self.finished = clock_time.monotonic()
