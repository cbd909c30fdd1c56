"""A connection kept up from the asyncio loop: connect, reconnect with backoff, CONNACK
reason codes, dispatch of what paho reports, PUBACK waits, graceful disconnect."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ikn_core.mqtt.bridge import LoopBridge, ReadGate
from ikn_core.mqtt.client import Session, make_client
from ikn_core.mqtt.errors import ConnectRefused, MqttError
from ikn_core.settings import MqttSettings

log = logging.getLogger(__name__)

TICK_S = 1.0  # keepalive checks (loop_misc) and the user's tick, while connected


@dataclass(slots=True)
class Backoff:
    """Delays ``initial * 2**n`` capped at ``maximum``; with ``jitter`` each is drawn
    from its upper half ("equal jitter": never shorter than half the nominal delay),
    so thousands of devices that lost the same broker do not knock at once."""

    initial: float = 0.5
    maximum: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0
    jitter: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        nominal = min(self.maximum, self.initial * (1 << min(self.attempts, 32)))
        self.attempts += 1
        if not self.jitter:
            return nominal
        return nominal / 2 + self.rng.uniform(0, nominal / 2)

    def reset(self) -> None:
        """A connection succeeded: start again from ``initial``."""
        self.attempts = 0


class Handler:
    """What a connection tells its user, on the loop thread; override what you need."""

    def on_connected(self) -> None:
        """CONNACK accepted: subscribe, publish a status, go online."""

    def on_lost(self) -> None:
        """The connection went (or a connection attempt ended without CONNACK)."""

    def on_message(self, msg: MQTTMessage) -> None:
        """A message arrived (with ``Session.manual_ack``: ``ack`` it when done)."""

    def on_published(self, mid: int, ok: bool) -> None:
        """The broker acknowledged QoS 1 publish ``mid`` (``ok``: without a failure code)."""

    def on_subscribed(self, mid: int, reasons: list[ReasonCode]) -> None:
        """SUBACK of ``subscribe`` ``mid``, one reason code per topic."""

    def on_tick(self) -> None:
        """Every ``TICK_S`` while connected (after keepalive ran)."""


class MqttConnection:
    """One client's connection, kept up from the asyncio loop it is made in.

    ``start()`` connects in the background and connects again whenever the connection
    is lost (``backoff``); ``wait_connected`` waits for the CONNACK. ``publish``,
    ``subscribe`` and ``ack`` pass through to paho (a QoS 1 publish is queued while
    the connection is down); ``publish_acked`` waits for the PUBACK. ``close()``
    disconnects gracefully; ``sever()`` vanishes without DISCONNECT (the Will)."""

    def __init__(
        self,
        settings: MqttSettings,
        session: Session,
        handler: Handler | None = None,
        *,
        backoff: Backoff | None = None,
        executor: Executor | None = None,
        gate: ReadGate | None = None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.handler = handler or Handler()
        self._backoff = backoff or Backoff(1.0, 30.0)
        self._executor = executor
        self._loop = asyncio.get_running_loop()
        self.client = make_client(settings, session)
        c = self.client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        self.bridge = LoopBridge(
            c, self._loop, burst=session.read_burst, gate=gate, progress=self._received_count
        )
        self.generation = 0  # connections accepted so far (CONNACK without failure)
        self.connected = False
        self.last_error: BaseException | None = None  # of the last failed attempt
        self._received = 0
        self._connack: asyncio.Future[None] | None = None
        self._lost = asyncio.Event()
        self._changed = asyncio.Event()
        self._acks: dict[int, asyncio.Future[bool]] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (and again whenever the connection is lost)."""
        if self._supervisor is not None:
            raise RuntimeError(f"{self.session.client_id}: the connection was already started")
        name = f"mqtt-{self.session.client_id}"
        self._supervisor = asyncio.create_task(self._supervise(), name=name)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the connection until ``stop`` is set (or ``disconnect_now`` was called);
        the connection stays open for the caller to ``close`` or ``disconnect_now``."""
        self.start()
        stopping = asyncio.create_task(stop.wait())
        assert self._supervisor is not None
        try:
            await asyncio.wait({stopping, self._supervisor}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await self.stop_supervising()

    async def stop_supervising(self) -> None:
        """No more reconnecting; the connection, if up, stays open."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with suppress(asyncio.CancelledError):
                await self._supervisor

    async def close(self, grace_s: float = 2.0) -> None:
        """Stop reconnecting, send DISCONNECT and wait (``grace_s`` at most) until the
        socket is closed; then let go of the socket in any case."""
        self._closing = True
        await self.stop_supervising()
        if self.bridge.watching:
            self.client.disconnect()
            with suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self.wait_until(lambda: not self.bridge.watching)
        self.release()

    def disconnect_now(self) -> None:
        """Send DISCONNECT without waiting (the loop may be stopping) and stop
        reconnecting; what was not acknowledged yet the broker redelivers."""
        self._closing = True
        self._set_lost()
        if self._supervisor is not None:
            self._supervisor.cancel()
        if self.bridge.watching:
            self.client.disconnect()
            self.client.loop_write()  # sends DISCONNECT; paho then closes the socket
        self.bridge.unwatch()

    def sever(self) -> None:
        """Vanish as a device losing power would: no DISCONNECT (the broker publishes
        the Will), no more reconnecting."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        self.bridge.sever()
        self._set_lost()

    def release(self) -> None:
        """Let go of the client: callbacks taken back, socket closed."""
        self.bridge.detach()
        sock = self.client.socket()
        if sock is not None:
            sock.close()
        self._set_lost()

    # -- waiting ------------------------------------------------------------------------

    async def wait_until(self, ready: Callable[[], bool]) -> None:
        """Wait until ``ready()``, checked after every event of this connection."""
        while not ready():
            await self._changed.wait()

    async def wait_connected(self) -> None:
        await self.wait_until(lambda: self.connected)

    def notify(self) -> None:
        """Wake whoever waits in ``wait_until`` (the user's state changed)."""
        self._changed.set()
        self._changed = asyncio.Event()

    # -- traffic ------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Publish without waiting; the message id its PUBACK will carry."""
        return self.client.publish(topic, payload, qos=qos, retain=retain).mid

    async def publish_acked(self, topic: str, payload: bytes, timeout_s: float) -> bool:
        """Publish with QoS 1; True once the broker acknowledged it (without a failure
        code) within ``timeout_s``; False at once while not connected."""
        if not self.connected:
            return False
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        acked: asyncio.Future[bool] = self._loop.create_future()
        self._acks[info.mid] = acked
        try:
            async with asyncio.timeout(timeout_s):
                return await acked
        except TimeoutError:
            return False
        finally:
            self._acks.pop(info.mid, None)

    def subscribe(self, topics: list[tuple[str, int]]) -> int | None:
        """Subscribe; the mid that ``Handler.on_subscribed`` will be told (None when
        paho could not queue it)."""
        return self.client.subscribe(topics)[1]

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a message (``Session.manual_ack``)."""
        self.client.ack(mid, qos)

    def _received_count(self) -> int:
        return self._received

    # -- connecting ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = self._backoff
        while not self._closing:
            try:
                if not self.connected:  # (a late CONNACK may have come during the backoff)
                    await self._connect()
                backoff.reset()
                self.last_error = None
                await self._hold()
            except (OSError, TimeoutError, MqttError) as exc:
                self.last_error = exc
                # Once per outage at WARNING: a fleet of thousands must not flood the log.
                level = logging.WARNING if backoff.attempts == 0 else logging.DEBUG
                log.log(
                    level,
                    "%s: cannot connect to %s: %r",
                    self.session.client_id,
                    self.settings.url,
                    exc,
                )
                self.notify()
            except Exception:
                log.exception(
                    "%s: MQTT connection supervisor failed; retrying", self.session.client_id
                )
            if self._closing:
                return
            await asyncio.sleep(backoff.next_delay())

    async def _connect(self) -> None:
        self._lost = asyncio.Event()
        self._connack = self._loop.create_future()
        await self.bridge.open(self._executor)
        async with asyncio.timeout(self.session.connect_timeout_s):
            await self._connack

    async def _hold(self) -> None:
        """Keep the connection alive until it is lost."""
        while not self._lost.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._lost.wait()
            self.bridge.tick()
            if self.connected:
                self.handler.on_tick()

    def _set_lost(self) -> None:
        was = self.connected
        self.connected = False
        self._lost.set()
        if was:
            self.handler.on_lost()
        self.notify()

    def _settle_connack(self, error: BaseException | None) -> None:
        fut = self._connack
        if fut is None or fut.done():
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)

    # -- paho callbacks (on the loop thread) --------------------------------------------

    def _on_connect(
        self,
        _client: Client,
        _userdata: Any,
        _flags: ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            refused = ConnectRefused(self.session.client_id, reason.value, str(reason))
            self.last_error = refused
            self._settle_connack(refused)
            self.notify()
            return
        self.generation += 1
        self.connected = True
        self.handler.on_connected()
        self.notify()
        self._settle_connack(None)

    def _on_disconnect(
        self,
        _client: Client,
        _userdata: Any,
        _flags: DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if self.connected and not self._closing:
            log.warning("%s: connection lost (%s); reconnecting", self.session.client_id, reason)
        self._set_lost()
        self._settle_connack(ConnectionError(f"connection closed before CONNACK ({reason})"))

    def _on_message(self, _client: Client, _userdata: Any, msg: MQTTMessage) -> None:
        self._received += 1
        self.handler.on_message(msg)

    def _on_publish(
        self,
        _client: Client,
        _userdata: Any,
        mid: int,
        reason: ReasonCode,
        _properties: Properties,
    ) -> None:
        ok = not reason.is_failure
        waiter = self._acks.get(mid)
        if waiter is not None and not waiter.done():
            waiter.set_result(ok)
        self.handler.on_published(mid, ok)
        self.notify()

    def _on_subscribe(
        self,
        _client: Client,
        _userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        self.handler.on_subscribed(mid, reasons)
        self.notify()
