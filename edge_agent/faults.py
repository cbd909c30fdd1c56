"""Delivery faults an uplink can be told to commit, for the simulator (``ikn sim --fault``).

- ``duplicate``: a batch is published once more after its PUBACK (the same payload,
  so the same ``(stream, seq)``), as a device whose PUBACK got lost resends.
- ``reorder``: a batch is held back and published right after the next one.

Both stay within the contract: the platform drops a ``(stream, seq)`` it already
has and does not rely on order. One :class:`DeliveryFaults` may serve a whole
fleet; its counters are the totals.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

LOG_EVERY = 100  # one INFO line per this many injected faults of a kind


@dataclass(slots=True)
class DeliveryFaults:
    """Probabilities (per batch, 0..1) of a duplicate and of a reorder, and counters."""

    duplicate: float = 0.0
    reorder: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    duplicated: int = 0  # batches published a second time
    reordered: int = 0  # batches held back behind the next

    def __post_init__(self) -> None:
        for name in ("duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1")

    def duplicate_now(self) -> bool:
        """Whether this batch is to be published again after its PUBACK (counted)."""
        if not (self.duplicate and self.rng.random() < self.duplicate):
            return False
        self.duplicated += 1
        _note("duplicate", self.duplicated)
        return True

    def hold_now(self) -> bool:
        """Whether this batch is to wait for the next one (counted)."""
        if not (self.reorder and self.rng.random() < self.reorder):
            return False
        self.reordered += 1
        _note("reorder", self.reordered)
        return True


def _note(kind: str, count: int) -> None:
    if count == 1 or count % LOG_EVERY == 0:
        log.info("fault %s: %d batches so far", kind, count)
