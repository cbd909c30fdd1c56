"""The ingest's MQTT connection: paho-mqtt on its own thread, messages handed to asyncio.

- ``manual_ack=True``: a QoS 1 message is acknowledged by ``ack()`` only after the
  transaction holding its readings committed.
- Persistent session (stable client id, no clean start, session expiry), so what
  devices publish while the ingest restarts waits in the broker.
- The hand-over queue is bounded: when it is full the paho thread waits, stops
  reading the socket, and the broker holds the rest (TCP back-pressure).
- Each connection has a generation number; an ack for a message from an older
  connection is dropped (its packet id means nothing on the new connection, and the
  broker redelivers it; the database drops the duplicate).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ikn_core.contract import STATUS_FILTER, UP_FILTER, shared
from ikn_core.settings import MqttSettings
from ingest.decode import Received

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
KEEPALIVE_S = 30


class Handover(asyncio.Queue[Received]):
    """The bounded queue from the paho thread to asyncio.

    ``asyncio.run_coroutine_threadsafe(queue.put(...))`` per message cost a third of
    the ingest's time at one reading per message (a task, two futures and a wake-up
    of the loop each). Here the paho thread takes a permit (one per free place; it
    waits while there is none: back-pressure), appends to a list, and wakes the loop
    only if no hand-over is already scheduled; the loop moves the list into the queue.
    Taking an item out gives its permit back."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()  # the permits bound it, not asyncio's maxsize
        self._loop = asyncio.get_running_loop()
        self._room = threading.Semaphore(maxsize)
        self._lock = threading.Lock()
        self._arrived: list[Received] = []
        self._scheduled = False

    def offer(self, item: Received, closing: threading.Event) -> bool:
        """From the paho thread: wait for room, then hand ``item`` over; False if
        the source closed meanwhile (the message stays unacknowledged)."""
        while not self._room.acquire(timeout=1.0):
            if closing.is_set():
                return False
        with self._lock:
            self._arrived.append(item)
            wake, self._scheduled = not self._scheduled, True
        if wake:
            self._loop.call_soon_threadsafe(self._move)
        return True

    def _move(self) -> None:
        with self._lock:
            arrived, self._arrived, self._scheduled = self._arrived, [], False
        for item in arrived:
            self.put_nowait(item)  # never full: each item holds a permit

    def get_nowait(self) -> Received:  # Queue.get() ends here too
        item = super().get_nowait()
        self._room.release()
        return item


class MqttSource:
    """Subscribes to every device's ``up`` (shared) and ``status``; feeds ``queue``."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        share_group: str,
        queue: Handover,
    ) -> None:
        self.settings = settings
        self.share_group = share_group
        self.queue = queue
        self.generation = 0
        self.subscribed_generation = 0  # the connection whose SUBACK arrived last
        self.connected = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._closing = threading.Event()
        self._v5 = settings.protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else False,
            manual_ack=True,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        url = settings.url
        if url.username:
            self._client.username_pw_set(url.username, url.password)
        if url.tls:
            self._client.tls_set_context(settings.tls_context())

    def start(self) -> None:
        url = self.settings.url
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            self._client.connect_async(
                url.host, url.port, KEEPALIVE_S, clean_start=False, properties=props
            )
        else:
            self._client.connect_async(url.host, url.port, KEEPALIVE_S)
        self._client.loop_start()
        log.info("connecting to %s as %s", url, self._client._client_id.decode())

    def stop(self) -> None:
        self._closing.set()
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 without waiting (desk displays, ingest/display.py: state,
        the newest wins); paho queues it while the connection is down."""
        self._client.publish(topic, payload, qos=1)

    def ack(self, msg: Received) -> None:
        """Acknowledge a stored message, on the connection it came on."""
        if msg.qos > 0 and msg.generation == self.generation:
            self._client.ack(msg.mid, msg.qos)

    # -- paho thread ---------------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any = None
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self.generation += 1
        topics = [(shared(self.share_group, UP_FILTER), 1), (STATUS_FILTER, 1)]
        client.subscribe(topics)
        log.info("connected (generation %d), subscribed to %s", self.generation, topics)
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        failed = [c for c in codes if c.is_failure]
        if failed:
            log.error("the broker refused a subscription: %s", failed)
            return
        self.subscribed_generation = self.generation

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._loop.call_soon_threadsafe(self.connected.clear)
        if not self._closing.is_set():
            log.warning("disconnected from the broker (%s); paho reconnects", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        item = Received(
            message.topic,
            bytes(message.payload),
            message.mid,
            message.qos,
            datetime.now(UTC),
            self.generation,
        )
        self.queue.offer(item, self._closing)  # waits while the queue is full
