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

Why not paho's own network thread (``loop_start``), as the house style says: at one
reading per message the thread cost more than the ingest's own work. Two threads
took turns on the GIL per message, paho's loop ran a ``select`` and its
housekeeping per packet, every ``ack()`` wrote a byte to paho's wake-up socket
pair, and each hand-over needed a lock and a semaphore: a bare paho client
acknowledging in its callback used 124 µs of CPU a message with the thread and
77 µs driven from one loop (MQTT 5, this machine). So paho runs here through its
external-loop API (``loop_read``, ``loop_write``, ``loop_misc`` and the socket
callbacks), as aiomqtt does: the loop watches the socket, reads packets in bounded
bursts, and the on_message callback puts straight into the asyncio queue. Only
the blocking part of connecting (``reconnect()``: TCP, TLS handshake, CONNECT)
runs in a worker thread, with the reconnect backoff of before (1 s doubling to 30 s).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ikn_core.contract import STATUS_FILTER, UP_FILTER, shared
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
MISC_INTERVAL_S = 1.0  # keep-alive pings and the check that the broker answers them


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


class MqttSource:
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
        self.generation = 0
        self.subscribed_generation = 0  # the connection whose SUBACK arrived last
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._closing = False
        self._live = False  # CONNACK received and the socket not closed since
        self._fd: int | None = None  # the socket the loop watches
        self._reading = False
        self._lost = asyncio.Event()  # set when the socket closes
        self._had_connack = False  # on the connection being made or last made
        self._delivered = 0  # messages handed to the queue, ever
        self._v5 = settings.protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else False,
            manual_ack=True,
        )
        c = self._client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        url = settings.url
        if url.username:
            c.username_pw_set(url.username, url.password)
        if url.tls:
            c.tls_set_context(settings.tls_context())
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            c.connect_async(url.host, url.port, KEEPALIVE_S, clean_start=False, properties=props)
        else:
            c.connect_async(url.host, url.port, KEEPALIVE_S)

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, and connect again whenever the connection is lost, until ``stop``
        is set or ``stop()`` was called."""
        log.info("connecting to %s as %s", self.settings.url, self._client._client_id.decode())
        misc = asyncio.create_task(self._misc())
        stopping = asyncio.create_task(stop.wait())
        delay = RECONNECT_MIN_S
        try:
            while not self._closing and not stop.is_set():
                self._lost.clear()
                self._had_connack = False
                try:
                    await self._loop.run_in_executor(None, self._client.reconnect)
                except OSError as exc:
                    log.warning("cannot connect to the broker (%s); retry in %.0f s", exc, delay)
                else:
                    if self._closing:  # stop() came while connecting
                        self.stop()
                        break
                    lost = asyncio.create_task(self._lost.wait())
                    try:
                        await asyncio.wait({lost, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        lost.cancel()
                    if self._had_connack:  # it was up: the backoff starts again
                        delay = RECONNECT_MIN_S
                if self._closing or stop.is_set():
                    break
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    delay = min(delay * 2, RECONNECT_MAX_S)
        finally:
            stopping.cancel()
            misc.cancel()
            await asyncio.gather(misc, stopping, return_exceptions=True)

    def stop(self) -> None:
        """Disconnect (messages not acknowledged yet are redelivered to the next ingest)."""
        self._closing = True
        self._live = False
        self._lost.set()
        if self._fd is not None:
            self._client.disconnect()
            self._client.loop_write()  # sends DISCONNECT; paho then closes the socket
        self._unwatch()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish without waiting (desk displays, ingest/display.py: state, the newest
        wins; stored notices at QoS 0, ingest/stored.py); paho queues a QoS 1 message
        while the connection is down and drops a QoS 0 one."""
        self._client.publish(topic, payload, qos=qos)

    def ack(self, msg: Received) -> None:
        """Acknowledge a stored message, on the connection it came on."""
        if msg.qos > 0 and self._live and msg.generation == self.generation:
            self._client.ack(msg.mid, msg.qos)

    # -- socket events (loop) -----------------------------------------------------------

    def _read(self) -> None:
        """The socket is readable: read packets while the queue has room, at most
        ``READ_BURST`` calls (the loop calls again while data is waiting)."""
        client = self._client
        for _ in range(READ_BURST):
            if self.queue.at_limit():
                self._pause()
                return
            before = self._delivered
            if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or self._fd is None:
                return  # the connection is gone (paho closed the socket)
            if self._delivered == before:
                break  # nothing more to read, or a packet that was not a message
        sock = client.socket()
        if sock is not None and getattr(sock, "pending", lambda: 0)() > 0:
            self._loop.call_soon(self._read)  # TLS: decrypted bytes no event announces

    def _write(self) -> None:
        self._client.loop_write()

    def _pause(self) -> None:
        if self._reading and self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._reading = False
            self.queue.when_room(self._resume)

    def _resume(self) -> None:
        if not self._reading and self._fd is not None:
            self._loop.add_reader(self._fd, self._read)
            self._reading = True

    def _watch(self, fd: int) -> None:
        self._unwatch()
        self._fd = fd
        self._resume()

    def _unwatch(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._fd = None
        self._reading = False

    async def _misc(self) -> None:
        while True:
            await asyncio.sleep(MISC_INTERVAL_S)
            if self._fd is not None:
                self._client.loop_misc()

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn`` on the loop: now when called there, else as soon as it can
        (paho calls the socket callbacks from ``reconnect()`` in the worker thread)."""
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    # -- paho callbacks -----------------------------------------------------------------

    def _on_socket_open(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        self._on_loop(self._watch, sock.fileno())

    def _on_socket_close(self, _c: mqtt.Client, _u: Any, _sock: Any) -> None:
        self._live = False
        # now, when on the loop: paho closes the socket right after this callback
        self._on_loop(self._unwatch)
        self._on_loop(self._lost.set)

    def _on_register_write(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        fd = sock.fileno()
        self._on_loop(self._add_writer, fd)

    def _add_writer(self, fd: int) -> None:
        if fd == self._fd:
            self._loop.add_writer(fd, self._write)

    def _on_unregister_write(self, _c: mqtt.Client, _u: Any, _sock: Any) -> None:
        self._on_loop(self._remove_writer)

    def _remove_writer(self) -> None:
        if self._fd is not None:
            self._loop.remove_writer(self._fd)

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any = None
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self.generation += 1
        self._live = self._had_connack = True
        topics = [(shared(self.share_group, UP_FILTER), 1), (STATUS_FILTER, 1)]
        client.subscribe(topics)
        log.info("connected (generation %d), subscribed to %s", self.generation, topics)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        failed = [c for c in codes if c.is_failure]
        if failed:
            log.error("the broker refused a subscription: %s", failed)
            return
        self.subscribed_generation = self.generation

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._live = False
        if not self._closing:
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.queue.put_nowait(
            Received(
                message.topic,
                bytes(message.payload),  # the same object when it is bytes already
                message.mid,
                message.qos,
                datetime.now(UTC),
                self.generation,
            )
        )
        self._delivered += 1
