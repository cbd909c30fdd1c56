"""Reconnect delays: exponential growth with jitter, so that thousands of devices
that lost the same broker do not all knock on its door in the same instant."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays ``initial * 2**n`` capped at ``maximum``, each drawn from its upper half
    ("equal jitter": never shorter than half the nominal delay, never longer)."""

    initial: float = 0.5
    maximum: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        nominal = min(self.maximum, self.initial * (1 << min(self.attempts, 32)))
        self.attempts += 1
        return nominal / 2 + self.rng.uniform(0, nominal / 2)

    def reset(self) -> None:
        """A connection succeeded: start again from ``initial``."""
        self.attempts = 0
