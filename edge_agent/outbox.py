"""Where readings wait until the broker has acknowledged them.

The agent numbers each valid observation with the outbox's ``stream`` and
``next_seq`` and appends it; the uplink ``take``\\ s the oldest pending readings
into a batch (they are then *in flight*) and ``ack``\\ s them when the broker's
PUBACK for that batch arrives, or, with ``AgentConfig.await_stored``, when the
platform's ``stored`` notice says PostgreSQL holds them: only then are they
forgotten. ``held`` hands out again what stays unconfirmed for too long.

:class:`MemoryOutbox` keeps them in memory, bounded: a restart loses them, so
it starts a new stream each time. :class:`edge_agent.sqlite_outbox.SqliteOutbox`
implements the same :class:`Outbox` protocol in a file: it keeps its stream and
sequence across restarts and hands every unacknowledged reading out again after one.
Both keep their counters in an :class:`OutboxCounters`.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol

from ikn_core.contract import Batch, Reading

log = logging.getLogger(__name__)

FIRST_SEQ = 1


class Outbox(Protocol):
    """Readings of one stream, oldest first, each pending or in flight until acknowledged."""

    @property
    def stream(self) -> str:
        """The stream UUID that, with ``seq``, names each reading once and for all."""
        ...

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next appended reading must carry."""
        ...

    @property
    def dropped(self) -> int:
        """Readings lost because the outbox was full, since it was opened."""
        ...

    @property
    def pending(self) -> int:
        """Readings not yet handed out by ``take``."""
        ...

    def __len__(self) -> int:
        """Readings held: pending and in flight."""
        ...

    def append(self, reading: Reading) -> None:
        """Keep ``reading`` (``seq == next_seq``); when full, drop the oldest pending one."""
        ...

    def take(self, limit: int) -> list[Reading]:
        """Hand out up to ``limit`` of the oldest pending readings; they are now in flight."""
        ...

    def ack(self, first_seq: int, last_seq: int) -> int:
        """Forget the readings with ``first_seq <= seq <= last_seq``; return how many."""
        ...

    def held(self, first_seq: int, last_seq: int) -> list[Reading]:
        """The readings handed out by ``take`` with ``first_seq <= seq <= last_seq`` that
        are still held (to publish them again: no stored notice confirmed them)."""
        ...


def checked_capacity(capacity: int) -> int:
    if capacity < 1:
        raise ValueError("an outbox needs room for at least one reading")
    return capacity


class OutboxCounters:
    """What every outbox counts: its stream, the next ``seq`` and the readings it has
    dropped, within a ``capacity`` of held readings."""

    def __init__(self, capacity: int, stream: str, next_seq: int, dropped: int) -> None:
        self.capacity = checked_capacity(capacity)
        self._stream = stream
        self._next_seq = next_seq
        self._dropped = dropped

    @property
    def stream(self) -> str:
        return self._stream

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def dropped(self) -> int:
        """Readings lost because the outbox was full (for a file: ever, persisted)."""
        return self._dropped


class MemoryOutbox(OutboxCounters):
    """A bounded in-memory outbox.

    When ``capacity`` readings are held and another arrives, the oldest *pending*
    reading is dropped and counted (``dropped``): the newest state of a device is
    worth more than its oldest, and a reading in flight is already with the MQTT
    client, which will retransmit it. Only when every held reading is in flight
    (capacity no larger than the in-flight window) is the oldest in flight dropped.
    """

    def __init__(self, capacity: int = 10_000, stream: str | None = None) -> None:
        super().__init__(capacity, stream or Batch.new_stream(), FIRST_SEQ, 0)
        self._pending: deque[Reading] = deque()
        self._in_flight: deque[Reading] = deque()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def __len__(self) -> int:
        return len(self._pending) + len(self._in_flight)

    def append(self, reading: Reading) -> None:
        if reading.seq != self._next_seq:
            raise ValueError(f"expected seq {self._next_seq}, got {reading.seq}")
        if len(self) >= self.capacity:
            self._drop_oldest()
        self._pending.append(reading)
        self._next_seq += 1

    def _drop_oldest(self) -> None:
        victim = self._pending.popleft() if self._pending else self._in_flight.popleft()
        self._dropped += 1
        log.debug("outbox %s full: dropped reading seq %d", self._stream, victim.seq)

    def take(self, limit: int) -> list[Reading]:
        taken = [self._pending.popleft() for _ in range(min(limit, len(self._pending)))]
        self._in_flight.extend(taken)
        return taken

    def ack(self, first_seq: int, last_seq: int) -> int:
        before = len(self._in_flight)
        while self._in_flight and first_seq <= self._in_flight[0].seq <= last_seq:
            self._in_flight.popleft()
        if self._in_flight and self._in_flight[0].seq < first_seq:  # an older batch is unacked
            self._in_flight = deque(
                r for r in self._in_flight if not first_seq <= r.seq <= last_seq
            )
        return before - len(self._in_flight)

    def held(self, first_seq: int, last_seq: int) -> list[Reading]:
        return [r for r in self._in_flight if first_seq <= r.seq <= last_seq]
