"""Packing the outbox into contract-v1 batches, with a bounded in-flight window.

A batch leaves when ``batch_max`` readings are pending (a batch over
``max_bytes`` is split in halves), or when the oldest
pending reading has waited ``latency_s`` (so a quiet desk sensor still reports
within 200 ms), or at once while flushing. At most ``window`` batches are
unacknowledged at a time; each PUBACK frees a place and forgets the readings
that batch carried. While offline nothing is sent and readings wait in the outbox.

With :class:`edge_agent.faults.DeliveryFaults` (the simulator's fault injection) a
batch may be published again after its PUBACK, or held back and published after
the next one; the readings are still forgotten only on their own batch's PUBACK.

With ``Confirm`` (``AgentConfig.await_stored``, the end-to-end acknowledgement) a
PUBACK only frees the window place: the readings stay in the outbox, *awaiting*,
until the platform's ``stored`` notice names them (``stored``), and a span that
no notice confirmed within ``timeout_s`` of its PUBACK is published again (from
the outbox, ``held``); the database drops what it already had. The wait doubles
with each round that resent something, up to ``timeout_max_s`` (an ingest that is
down for an hour is not sent the outbox every 30 s), and is back at ``timeout_s``
as soon as a notice comes. At most ``max_unconfirmed`` readings are out
unconfirmed: an outbox draining after an outage goes at the pace PostgreSQL stores
it, not the broker's (which would only queue it, and make the oldest wait past the
timeout and be sent twice).

Everything here runs on the asyncio loop thread; ``send`` publishes one payload
with QoS 1 and returns the MQTT message id that its PUBACK will carry.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge_agent.faults import DeliveryFaults
from edge_agent.outbox import Outbox
from ikn_core.contract import MAX_PAYLOAD_BYTES, Batch, Reading, encode_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Confirm:
    """Keep readings until a ``stored`` notice confirms them; resend after ``timeout_s``
    (doubling, at most ``timeout_max_s``) without one."""

    timeout_s: float = 30.0
    timeout_max_s: float = 300.0
    max_unconfirmed: int = 200_000  # readings sent and not confirmed, at most


@dataclass(frozen=True, slots=True)
class Span:
    """The readings one message carried: ``first_seq..last_seq``, ``count`` of them."""

    first_seq: int
    last_seq: int
    count: int


class Uplink:
    """Moves readings from an outbox to the broker, a bounded number of batches at a time."""

    def __init__(
        self,
        outbox: Outbox,
        send: Callable[[bytes], int],
        *,
        batch_max: int,
        latency_s: float,
        window: int,
        max_bytes: int = MAX_PAYLOAD_BYTES,
        faults: DeliveryFaults | None = None,
        confirm: Confirm | None = None,
    ) -> None:
        self._outbox = outbox
        self._send = send
        self._batch_max = batch_max
        self._latency_s = latency_s
        self._window = window
        self._max_bytes = max_bytes
        self._in_flight: dict[int, Span] = {}
        self._online = False
        self._due = False  # the oldest pending reading has waited long enough
        self._timer: asyncio.TimerHandle | None = None
        self._fill_scheduled = False
        self._faults = faults
        self._held: list[Sequence[Reading]] = []  # reorder fault: waits for the next batch
        self._held_at = 0  # the fill that held it (a later one releases it if no batch came)
        self._fills = 0
        self._copies: dict[int, bytes] = {}  # duplicate fault: sent again after this PUBACK
        self._confirm = confirm
        self._wait_s = confirm.timeout_s if confirm is not None else 0.0
        self._awaiting: dict[int, tuple[Span, float]] = {}  # by first_seq: (span, PUBACK at)
        self._redo: deque[Span] = deque()  # awaiting too long: to publish again
        self.delivered = 0
        self.refused = 0
        self.confirmed = 0  # readings a stored notice let the outbox forget
        self.resent = 0  # readings published again for want of a stored notice

    @property
    def in_flight(self) -> int:
        """Messages published and not yet acknowledged."""
        return len(self._in_flight)

    @property
    def unconfirmed(self) -> int | None:
        """Readings published and not yet confirmed stored; None without ``Confirm``."""
        return None if self._confirm is None else self._out()

    def _out(self) -> int:
        """Readings handed out by ``take`` and still held."""
        return len(self._outbox) - self._outbox.pending

    @property
    def idle(self) -> bool:
        """Nothing pending and nothing in flight: every reading is acknowledged."""
        return not self._in_flight and len(self._outbox) == 0

    def offer(self, reading: Reading) -> None:
        """Keep a reading; publish now if a batch is full, else within ``latency_s``."""
        self._outbox.append(reading)
        if self._outbox.pending >= self._batch_max:
            self.fill()
        elif not self._due and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._latency_s, self._on_latency)

    def configure(self, *, batch_max: int, latency_s: float, max_bytes: int) -> None:
        """New limits (a config push), used from the next batch on."""
        self._batch_max = batch_max
        self._latency_s = latency_s
        self._max_bytes = max_bytes
        self.fill()

    def set_online(self, online: bool) -> None:
        """The connection came (publish what waits) or went (hold everything)."""
        self._online = online
        if online:
            self.fill()

    def flush(self) -> None:
        """Publish every pending reading now, whatever the batch size."""
        self._due = True
        self.fill()

    def acked(self, mid: int, ok: bool) -> bool:
        """The broker acknowledged message ``mid``; False when it was not a batch of ours."""
        span = self._in_flight.pop(mid, None)
        if span is None:
            return False
        if self._confirm is not None and ok:  # kept until the stored notice
            self._awaiting[span.first_seq] = (span, asyncio.get_running_loop().time())
        else:
            self._outbox.ack(span.first_seq, span.last_seq)
        copy = self._copies.pop(mid, None)
        if copy is not None and self._online:
            self._send(copy)  # its PUBACK matches no span: nothing more is forgotten
        if ok:
            self.delivered += span.count
        else:
            self.refused += span.count
            log.warning(
                "broker refused readings seq %d..%d (%d); they are dropped",
                span.first_seq,
                span.last_seq,
                span.count,
            )
        self._schedule_fill()
        return True

    def stored(self, stream: str, seqs: Sequence[tuple[int, int]]) -> int:
        """A stored notice: forget ``seqs`` of ``stream``; return how many readings went.
        Without ``Confirm`` the PUBACK forgot them already: nothing to do."""
        if self._confirm is None or stream != self._outbox.stream:
            return 0  # (another stream's: a memory outbox that restarted; long gone)
        forgotten = 0
        for first, last in seqs:
            forgotten += self._outbox.ack(first, last)
            self._forget_awaiting(first, last)
        self.confirmed += forgotten
        self._wait_s = self._confirm.timeout_s
        if forgotten:
            self._schedule_fill()  # (room under max_unconfirmed again)
        return forgotten

    def _forget_awaiting(self, first: int, last: int) -> None:
        for key, (span, at) in list(self._awaiting.items()):
            if span.last_seq < first or span.first_seq > last:
                continue
            del self._awaiting[key]
            for lo, hi in ((span.first_seq, first - 1), (last + 1, span.last_seq)):
                if lo <= hi:  # the part of the span the notice did not cover
                    self._awaiting[lo] = (Span(lo, hi, hi - lo + 1), at)

    def tick(self) -> None:
        """Queue for publishing again what waited longer than the timeout for its notice."""
        if self._confirm is None or not self._online:
            return
        due = asyncio.get_running_loop().time() - self._wait_s
        late = [key for key, (_, at) in self._awaiting.items() if at <= due]
        if not late:
            return
        self._redo.extend(self._awaiting.pop(key)[0] for key in late)
        self._wait_s = min(self._wait_s * 2, self._confirm.timeout_max_s)
        self.fill()

    def stop(self) -> None:
        """Cancel the latency timer (the agent is closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._online = False

    def fill(self) -> None:
        """Publish batches while online, ready, and the window has room."""
        self._fill_scheduled = False
        self._fills += 1
        while self._online and len(self._in_flight) < self._window:
            if self._redo:
                self._resend(self._redo.popleft())
                continue
            pending = self._outbox.pending
            if pending == 0:
                if self._held_at != self._fills:  # not held by this very fill: go now
                    self._release_held()
                self._due = False
                return
            if pending < self._batch_max and not self._due:
                return
            if self._confirm is not None and self._out() >= self._confirm.max_unconfirmed:
                return
            self._publish(self._outbox.take(self._batch_max))

    def _resend(self, span: Span) -> None:
        readings = self._outbox.held(span.first_seq, span.last_seq)
        if readings:  # (what a notice confirmed meanwhile is gone)
            self.resent += len(readings)
            self._publish(readings)

    def _schedule_fill(self) -> None:
        # Called from inside paho's PUBACK handling: publish after it returns,
        # once for however many PUBACKs one read brought.
        if not self._fill_scheduled:
            self._fill_scheduled = True
            asyncio.get_running_loop().call_soon(self.fill)

    def _on_latency(self) -> None:
        self._timer = None
        self._due = True
        self.fill()

    def _publish(self, readings: Sequence[Reading]) -> None:
        payload = encode_batch(Batch(self._outbox.stream, tuple(readings)))
        if len(payload) > self._max_bytes and len(readings) > 1:
            half = len(readings) // 2
            self._publish(readings[:half])
            self._publish(readings[half:])
            return
        if self._faults is not None and not self._held and self._faults.hold_now():
            self._held.append(readings)
            self._held_at = self._fills
            loop = asyncio.get_running_loop()
            loop.call_later(self._latency_s, self.fill)  # at the latest, it goes then
            return
        self._send_tracked(readings, payload)
        self._release_held()

    def _send_tracked(self, readings: Sequence[Reading], payload: bytes) -> None:
        mid = self._send(payload)
        self._in_flight[mid] = Span(readings[0].seq, readings[-1].seq, len(readings))
        if self._faults is not None and self._faults.duplicate_now():
            self._copies[mid] = payload

    def _release_held(self) -> None:
        """Publish the batch the reorder fault held back (after the one just sent)."""
        held, self._held = self._held, []
        for readings in held:
            self._send_tracked(readings, encode_batch(Batch(self._outbox.stream, tuple(readings))))
