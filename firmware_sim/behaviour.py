"""How each kind of simulated device behaves: parameters a scenario can tune.

Durations are in simulated minutes, as a facility manager would say them.
Each class checks itself; a scenario sets them for the whole building and may
override the desk behaviour per zone (a busy zone, a quiet one).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


def _check_range(name: str, span: tuple[float, float]) -> None:
    low, high = span
    if not 0 < low <= high:
        raise ValueError(f"{name} must be [low, high] with 0 < low <= high, got {list(span)}")


def _check_share(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")


def _check_positive(obj: Any) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, int | float) and not value > 0 and not f.name.endswith("share"):
            raise ValueError(f"{f.name} must be positive, got {value}")


@dataclass(frozen=True, slots=True)
class DeskBehaviour:
    """Someone sits (exponential, mean ``sit_minutes``), then the desk is free for a
    short break, a meeting or a long idle spell, drawn with the given shares."""

    initially_occupied: float = 0.55  # probability that the desk is taken at the start
    sit_minutes: float = 50.0
    sit_range_minutes: tuple[float, float] = (5.0, 180.0)
    break_minutes: tuple[float, float] = (2.0, 15.0)
    meeting_share: float = 0.2
    meeting_minutes: tuple[float, float] = (30.0, 90.0)
    idle_share: float = 0.15
    idle_minutes: tuple[float, float] = (30.0, 180.0)
    heartbeat_minutes: float = 5.0  # the state is re-reported this often while it holds

    def __post_init__(self) -> None:
        _check_positive(self)
        _check_share("initially_occupied", self.initially_occupied)
        _check_share("meeting_share", self.meeting_share)
        _check_share("idle_share", self.idle_share)
        _check_share("meeting_share + idle_share", self.meeting_share + self.idle_share)
        for name in ("sit_range_minutes", "break_minutes", "meeting_minutes", "idle_minutes"):
            _check_range(name, getattr(self, name))


@dataclass(frozen=True, slots=True)
class CounterBehaviour:
    """A zone's people counter: the people at desks plus a few passing through."""

    interval_minutes: float = 1.0
    visitors_max: int = 3

    def __post_init__(self) -> None:
        _check_positive(self)


@dataclass(frozen=True, slots=True)
class EnvironmentBehaviour:
    """A floor's air: CO2 approaches ``outdoor + per_person * people`` with a time
    constant; temperature and humidity rise a little with the people present."""

    interval_minutes: float = 5.0
    outdoor_co2_ppm: float = 420.0
    co2_per_person_ppm: float = 15.0
    co2_time_constant_minutes: float = 20.0
    temp_c: float = 23.5
    temp_per_person_c: float = 0.03
    humidity_pct: float = 55.0
    humidity_per_person_pct: float = 0.05

    def __post_init__(self) -> None:
        _check_positive(self)
        _check_share("humidity_pct / 100", self.humidity_pct / 100)


@dataclass(frozen=True, slots=True)
class BadgeBehaviour:
    """The people who badge through one door on a working day, in local time (WITA in
    Nusantara): arrivals in a wave around ``arrival_hour``, some going out for lunch
    and back, departures in a wave around ``departure_hour``. Simulated time 0 is
    ``start_hour`` local time; each following day repeats the pattern with new draws."""

    population: int = 200  # card holders who use this door
    office_share: float = 0.6  # of them, those who work in the office on a given day
    arrival_hour: float = 7.5
    arrival_spread_minutes: float = 20.0  # standard deviation of the arrival wave
    lunch_share: float = 0.4  # of those present, those who go out for lunch
    lunch_hour: float = 12.0
    lunch_spread_minutes: float = 15.0
    lunch_minutes: tuple[float, float] = (30.0, 60.0)
    departure_hour: float = 16.0
    departure_spread_minutes: float = 30.0
    start_hour: float = 6.0

    def __post_init__(self) -> None:
        if not 0 <= self.population <= 100_000:
            raise ValueError(f"population must be 0..100000, got {self.population}")
        _check_share("office_share", self.office_share)
        _check_share("lunch_share", self.lunch_share)
        for name in ("arrival_hour", "lunch_hour", "departure_hour", "start_hour"):
            if not 0 <= getattr(self, name) < 24:
                raise ValueError(f"{name} must be 0 <= hour < 24, got {getattr(self, name)}")
        if not self.arrival_hour < self.lunch_hour < self.departure_hour:
            raise ValueError("arrival_hour < lunch_hour < departure_hour is required")
        for name in ("arrival_spread_minutes", "lunch_spread_minutes", "departure_spread_minutes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        _check_range("lunch_minutes", self.lunch_minutes)


Behaviour = DeskBehaviour | CounterBehaviour | EnvironmentBehaviour | BadgeBehaviour
