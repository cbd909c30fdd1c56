"""The ingest's MQTT connection: paho-mqtt driven by the asyncio loop.

- ``manual_ack=True``: a QoS 1 message is acknowledged by ``ack()`` only after the
  transaction holding its readings committed.
- Persistent session (stable client id, no clean start, session expiry), so what
  devices publish while the ingest restarts waits in the broker.
- The queue of received messages is bounded (``Inbox``, ``IKN_INGEST_QUEUE_MAX``
  messages and ``IKN_INGEST_QUEUE_MAX_BYTES`` of payload):
  when it is full the loop stops reading the socket (``remove_reader``), and the
  broker holds the rest (TCP back-pressure); reading resumes once the consumer
  emptied half of it.
- Each connection has a generation number; an ack for a message from an older
  connection is dropped (its packet id means nothing on the new connection, and the
  broker redelivers it; the database drops the duplicate).

paho runs on the asyncio loop through the project's MQTT adapter
(``ikn_core.mqtt``, which says why not paho's own thread): the loop watches the
socket, reads packets in bounded bursts (``READ_BURST``), and the on_message callback
puts straight into the asyncio queue. Reconnects back off from 1 s doubling to 30 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from ikn_core.contract import STATUS_FILTER, UP_FILTER, shared
from ikn_core.mqtt import Backoff, Handler, MqttConnection, Session
from ikn_core.settings import MqttSettings
from ingest.decode import Received

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
KEEPALIVE_S = 30
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0
# Packets read per wake-up of the loop at most (about 10 ms of work at one reading a
# message), so the writers' database round trips are not held up behind a flood.
READ_BURST = 128


class Inbox(asyncio.Queue[Received]):
    """The queue between the MQTT source and the consumer, kept to about ``limit``
    messages and ``byte_limit`` payload bytes: the source stops reading while it is
    ``at_limit()``, and taking an item out of a queue at most half full (in both) wakes
    it again (``when_room``), so it reads in bursts.

    ``put_nowait`` itself never refuses: one ``loop_read()`` of paho can deliver
    more than one message (it reads as many packets as it has QoS 1 messages of its
    own in flight, the desk display updates), and a message paho delivered must not
    be dropped. So it can go past ``limit`` by that many, no more (and past
    ``byte_limit`` by their size)."""

    def __init__(self, limit: int, byte_limit: int = 1 << 62) -> None:
        super().__init__()
        self.limit = limit
        self.byte_limit = byte_limit
        self.bytes = 0  # payload bytes waiting
        self._on_room: Callable[[], None] | None = None

    def at_limit(self) -> bool:
        """Whether the source should stop reading (``full()`` stays asyncio's: an
        unbounded queue is never full, so ``put_nowait`` never raises)."""
        return self.qsize() >= self.limit or self.bytes >= self.byte_limit

    def _has_room(self) -> bool:
        return self.qsize() <= self.limit // 2 and self.bytes <= self.byte_limit // 2

    def when_room(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) as soon as the queue is at most half full."""
        if self._has_room():
            callback()
        else:
            self._on_room = callback

    def put_nowait(self, item: Received) -> None:  # Queue.put() ends here too
        super().put_nowait(item)
        self.bytes += len(item.payload)

    def get_nowait(self) -> Received:  # Queue.get() ends here too
        item = super().get_nowait()
        self.bytes -= len(item.payload)
        if self._on_room is not None and self._has_room():
            callback, self._on_room = self._on_room, None
            callback()
        return item


class MqttSource(Handler):
    """Subscribes to every device's ``up`` (shared) and ``status``; feeds ``queue``.

    ``run()`` keeps the connection (reconnecting with backoff) until ``stop`` is set;
    ``stop()`` then disconnects. Everything but ``reconnect()`` runs on the loop."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        share_group: str,
        queue: Inbox,
    ) -> None:
        self.settings = settings
        self.share_group = share_group
        self.queue = queue
        self.subscribed_generation = 0  # the connection whose SUBACK arrived last
        session = Session(
            client_id,
            keepalive_s=KEEPALIVE_S,
            persistent=True,
            session_expiry_s=SESSION_EXPIRY_S,
            manual_ack=True,
            read_burst=READ_BURST,
        )
        backoff = Backoff(RECONNECT_MIN_S, RECONNECT_MAX_S, jitter=False)
        self.connection = MqttConnection(settings, session, self, backoff=backoff, gate=queue)

    @property
    def generation(self) -> int:
        """The connection's number: 1 for the first CONNACK, then one more each time."""
        return self.connection.generation

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, and connect again whenever the connection is lost, until ``stop``
        is set or ``stop()`` was called."""
        log.info("connecting to %s as %s", self.settings.url, self.connection.session.client_id)
        await self.connection.run(stop)

    def stop(self) -> None:
        """Disconnect (messages not acknowledged yet are redelivered to the next ingest)."""
        self.connection.disconnect_now()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish without waiting (desk displays, ingest/display.py: state, the newest
        wins; stored notices at QoS 0, ingest/stored.py); paho queues a QoS 1 message
        while the connection is down and drops a QoS 0 one."""
        self.connection.publish(topic, payload, qos)

    def ack(self, msg: Received) -> None:
        """Acknowledge a stored message, on the connection it came on."""
        conn = self.connection
        if msg.qos > 0 and conn.connected and msg.generation == conn.generation:
            conn.ack(msg.mid, msg.qos)

    # -- connection events (Handler, on the loop) ---------------------------------------

    def on_connected(self) -> None:
        topics = [(shared(self.share_group, UP_FILTER), 1), (STATUS_FILTER, 1)]
        self.connection.subscribe(topics)
        log.info("connected (generation %d), subscribed to %s", self.generation, topics)

    def on_subscribed(self, mid: int, reasons: list[ReasonCode]) -> None:
        failed = [c for c in reasons if c.is_failure]
        if failed:
            log.error("the broker refused a subscription: %s", failed)
            return
        self.subscribed_generation = self.generation

    def on_message(self, msg: mqtt.MQTTMessage) -> None:
        self.queue.put_nowait(
            Received(
                msg.topic,
                bytes(msg.payload),  # the same object when it is bytes already
                msg.mid,
                msg.qos,
                datetime.now(UTC),
                self.connection.generation,
            )
        )
