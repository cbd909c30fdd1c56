"""The behaviour of simulated devices as plain functions of a seeded random
generator: no clock, no I/O, so a test can check hours of it in microseconds.

Times are simulated seconds since the simulation started.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from firmware_sim.behaviour import (
    BadgeBehaviour,
    CounterBehaviour,
    DeskBehaviour,
    EnvironmentBehaviour,
)

MINUTE = 60.0


def desk_reports(rng: random.Random, b: DeskBehaviour) -> Iterator[tuple[float, bool]]:
    """``(time, occupied)`` of each report of a desk sensor, forever: its state at
    time 0, every change, and a heartbeat every ``heartbeat_minutes`` in between."""
    t, occupied = 0.0, rng.random() < b.initially_occupied
    heartbeat = b.heartbeat_minutes * MINUTE
    while True:
        end = t + spell_s(rng, b, occupied)
        yield t, occupied
        beat = t + heartbeat
        while beat < end:
            yield beat, occupied
            beat += heartbeat
        t, occupied = end, not occupied


def spell_s(rng: random.Random, b: DeskBehaviour, occupied: bool) -> float:
    """How long a desk stays as it is: someone sitting, or a break, a meeting, or
    nobody for a while."""
    if occupied:
        low, high = b.sit_range_minutes
        minutes = min(high, max(low, rng.expovariate(1 / b.sit_minutes)))
    else:
        draw = rng.random()
        if draw < b.meeting_share:
            span = b.meeting_minutes
        elif draw < b.meeting_share + b.idle_share:
            span = b.idle_minutes
        else:
            span = b.break_minutes
        minutes = rng.uniform(*span)
    return minutes * MINUTE


def people_count(rng: random.Random, b: CounterBehaviour, seated: int) -> int:
    """What a zone's counter reads: the people at desks, a few passing through,
    and now and then a miscount by one."""
    miscount = rng.choice((-1, 0, 0, 0, 0, 0, 0, 1))
    return max(0, seated + rng.randint(0, b.visitors_max) + miscount)


@dataclass(slots=True)
class Air:
    """A floor's air: CO2 relaxes towards ``outdoor + per_person * people``."""

    behaviour: EnvironmentBehaviour
    co2_ppm: float

    @classmethod
    def settled(cls, b: EnvironmentBehaviour, people: int) -> Air:
        """Air that has had ``people`` in it for a long while."""
        return cls(b, b.outdoor_co2_ppm + b.co2_per_person_ppm * people)

    def step(self, dt_s: float, people: int) -> None:
        b = self.behaviour
        target = b.outdoor_co2_ppm + b.co2_per_person_ppm * people
        alpha = 1 - math.exp(-dt_s / (b.co2_time_constant_minutes * MINUTE))
        self.co2_ppm += (target - self.co2_ppm) * alpha

    def sample(self, rng: random.Random, people: int) -> dict[str, float | int]:
        """What the sensor reports now: CO2 (ppm), temperature (°C), humidity (%)."""
        b = self.behaviour
        temp = b.temp_c + b.temp_per_person_c * people + rng.gauss(0, 0.15)
        humidity = b.humidity_pct + b.humidity_per_person_pct * people + rng.gauss(0, 1.0)
        return {
            "co2_ppm": max(0, round(self.co2_ppm + rng.gauss(0, 8))),
            "temp_c": round(temp, 1),
            "humidity_pct": round(min(100.0, max(0.0, humidity)), 1),
        }


DAY = 24 * 60 * MINUTE
HOUR = 60 * MINUTE


def badge_cards(rng: random.Random, b: BadgeBehaviour) -> list[str]:
    """The card numbers of a door's population, as readers report them (10 digits)."""
    return [f"{rng.randrange(10**10):010d}" for _ in range(b.population)]


def badge_day(
    rng: random.Random, b: BadgeBehaviour, cards: list[str], day: int
) -> list[tuple[float, str, str]]:
    """``(time, card, "in" | "out")`` of every tap at the door on ``day`` (0 = the
    first), oldest first; time in seconds since the simulation started."""
    taps: list[tuple[float, str, str]] = []
    offset = day * DAY - b.start_hour * HOUR

    def wave(hour: float, spread_minutes: float) -> float:
        return offset + rng.gauss(hour * HOUR, spread_minutes * MINUTE)

    for card in cards:
        if rng.random() >= b.office_share:
            continue
        arrive = wave(b.arrival_hour, b.arrival_spread_minutes)
        leave = max(arrive + 30 * MINUTE, wave(b.departure_hour, b.departure_spread_minutes))
        taps += [(arrive, card, "in"), (leave, card, "out")]
        if rng.random() < b.lunch_share:
            out = wave(b.lunch_hour, b.lunch_spread_minutes)
            back = out + rng.uniform(*b.lunch_minutes) * MINUTE
            if arrive < out and back < leave:
                taps += [(out, card, "out"), (back, card, "in")]
    return sorted(t for t in taps if t[0] >= 0)
