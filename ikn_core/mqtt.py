"""The one MQTT adapter: a paho-mqtt 2.x client driven by the asyncio loop.

The edge agent, the ingest and the API's device commands all connect through
:class:`MqttConnection`. It owns what they used to set up three times:

- credentials (the URL's user name and password), TLS (``mqtts://``: the broker's
  certificate checked against ``IKN_MQTT_CA_FILE`` or the system's CAs, its host
  name against the URL) and the protocol (MQTT 5 or 3.1.1, ``IKN_MQTT_PROTOCOL``);
- the session (:class:`Session`: client id, clean or persistent with a session
  expiry, keepalive, manual QoS 1 acks, paho's in-flight limit, a Will);
- the event-loop bridge (:class:`LoopBridge`), connecting and reconnecting with
  backoff (:class:`Backoff`), CONNACK reason codes as :class:`ConnectRefused`,
  on-message dispatch, PUBACKs, and a graceful disconnect.

Why paho's external-loop API rather than ``loop_start`` (a network thread per client):
one process runs thousands of agents (``firmware_sim`` with 5,000 devices), and paho's
own loop waits with ``select()``, which cannot watch a descriptor numbered 1024 or
above ("filedescriptor out of range", connections reported lost over and over);
5,000 threads waking every second contend for the GIL. For the ingest, at one reading
a message, the thread cost more than the ingest's own work (124 µs of CPU a message
against 77 µs from the loop: two threads taking turns on the GIL, a ``select`` and a
wake-up byte per ``ack()``). So the asyncio loop (epoll) watches each client's one
socket and calls ``loop_read``/``loop_write``, and ``loop_misc`` (keepalive) runs
every ``tick_s``: every paho callback runs on the loop thread, with no locks and no
thread hand-over.

The one blocking step is paho's ``reconnect()`` (name lookup, TCP connect, TLS
handshake, CONNECT queued): it runs in an executor thread, bounded by
``Session.connect_timeout_s``. While it runs the socket is not watched, and socket
callbacks paho makes from that thread are ignored; the socket is watched once
``reconnect()`` has returned, from the loop thread. A failed TLS handshake closes its
socket (:class:`_Client`: paho 2.x leaves it to the garbage collector, one leaked
socket per retry of a device whose broker certificate does not verify).

Exceptions::

    IknError (ikn_core.errors)
    └── MqttError                 base of what this adapter raises on purpose
        └── ConnectRefused        CONNACK with a failure reason code (``code``, ``reason``)

A network failure stays ``OSError`` (a certificate that does not verify is
``ssl.SSLCertVerificationError``), a timeout ``TimeoutError``; the connection keeps
the last one in ``last_error`` and retries with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ikn_core.errors import IknError
from ikn_core.settings import MqttSettings

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

log = logging.getLogger(__name__)

TICK_S = 1.0  # keepalive checks (loop_misc) and the user's tick, while connected


class MqttError(IknError):
    """Base of every error the MQTT adapter raises on purpose."""


class ConnectRefused(MqttError):
    """The broker refused the connection; ``code`` is the CONNACK reason code and
    ``reason`` its name ("Not authorized", "Bad user name or password", ...)."""

    def __init__(self, client_id: str, code: int, reason: str) -> None:
        self.client_id = client_id
        self.code = code
        self.reason = reason
        super().__init__(f"{client_id}: broker refused the connection: {reason} ({code:#04x})")


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


@dataclass(frozen=True, slots=True)
class Will:
    """What the broker publishes when the client vanishes without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Session:
    """How one client connects. ``persistent``: the broker keeps the session while the
    client is away (3.1.1: clean session off; 5: clean start off and
    ``session_expiry_s``). ``max_inflight``: paho's window of unacknowledged QoS 1
    publishes (0: none, the caller bounds it). ``read_burst``: packets read per
    wake-up at most."""

    client_id: str
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0
    persistent: bool = False
    session_expiry_s: int = 0
    manual_ack: bool = False
    max_inflight: int = 20
    will: Will | None = None
    read_burst: int = 1


class _Client(Client):
    """paho's client, but a failed TLS handshake closes its socket: paho 2.x leaves the
    wrapped socket to the garbage collector, one leaked socket per retry of a device
    whose broker certificate does not verify."""

    def _ssl_wrap_socket(self, tcp_sock: socket.socket) -> ssl.SSLSocket:
        context = self._ssl_context
        assert context is not None  # tls_set_context ran
        ssl_sock = context.wrap_socket(
            tcp_sock, server_hostname=self._host, do_handshake_on_connect=False
        )
        try:
            ssl_sock.settimeout(self._connect_timeout)
            ssl_sock.do_handshake()  # the context checks the host name (check_hostname)
        except BaseException:
            ssl_sock.close()
            raise
        return ssl_sock


def make_client(settings: MqttSettings, session: Session) -> Client:
    """A paho client for ``session``: MQTT 5 or 3.1.1, credentials and TLS from the
    URL, the Will. Connects nothing (``reconnect()`` does, see :class:`LoopBridge`)."""
    v5 = settings.protocol == "5"
    client = _Client(
        CallbackAPIVersion.VERSION2,
        client_id=session.client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else not session.persistent,
        manual_ack=session.manual_ack,
        reconnect_on_failure=False,  # MqttConnection reconnects, with its backoff
    )
    client.connect_timeout = session.connect_timeout_s
    client.max_inflight_messages_set(session.max_inflight)
    url = settings.url
    if url.username:
        client.username_pw_set(url.username, url.password)
    if url.tls:
        client.tls_set_context(settings.tls_context())
    if session.will is not None:
        w = session.will
        client.will_set(w.topic, w.payload, qos=w.qos, retain=w.retain)
    if v5 and session.persistent:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho
        props.SessionExpiryInterval = session.session_expiry_s
        client.connect_async(
            url.host, url.port, session.keepalive_s, clean_start=False, properties=props
        )
    else:
        client.connect_async(url.host, url.port, keepalive=session.keepalive_s)
    return client


class ReadGate(Protocol):
    """A bounded consumer the bridge stops reading for while it is at its limit."""

    def at_limit(self) -> bool: ...

    def when_room(self, callback: Callable[[], None]) -> None: ...


class LoopBridge:
    """Watches one paho client's socket from the asyncio loop it was made in.

    Each readable event reads up to ``burst`` packets (``progress`` tells whether a
    read delivered a message: a read that did not ends the burst). With a ``gate``
    it stops reading while the gate is at its limit (the broker then holds the rest:
    TCP back-pressure) and resumes when the gate calls back."""

    def __init__(
        self,
        client: Client,
        loop: asyncio.AbstractEventLoop,
        *,
        burst: int = 1,
        gate: ReadGate | None = None,
        progress: Callable[[], int] = lambda: 0,
    ) -> None:
        self._client = client
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._burst = burst
        self._gate = gate
        self._progress = progress
        self._fd: int | None = None
        self._reading = False
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    @property
    def watching(self) -> bool:
        """Whether a socket is open and watched (connecting or connected)."""
        return self._fd is not None

    async def open(self, executor: Executor | None = None) -> None:
        """Open the connection and queue CONNECT; the CONNACK arrives through ``on_connect``.

        Raises ``OSError`` (refused, unreachable, TLS) or ``TimeoutError`` (paho's
        ``connect_timeout``), as paho's ``reconnect()`` does.
        """
        self.unwatch()
        attempt = self._loop.run_in_executor(executor, self._client.reconnect)
        try:
            await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(self._discard)  # the thread goes on; close what it opens
            raise
        self._watch()

    def _discard(self, attempt: asyncio.Future[Any]) -> None:
        if attempt.cancelled() or attempt.exception() is not None:
            return
        sock = self._client.socket()
        if sock is not None:
            sock.close()

    def tick(self) -> None:
        """Keepalive: send PINGREQ when due, notice a broker that stopped answering."""
        if self._fd is not None:
            self._client.loop_misc()

    def sever(self) -> None:
        """Cut the connection as a power failure would: no DISCONNECT, so the broker
        publishes the Will. The client must not be used afterwards."""
        sock = self._client.socket()
        self.detach()
        if sock is not None:
            with suppress(OSError):
                _shutdown(sock)
            sock.close()

    def detach(self) -> None:
        """Stop watching and take back the callbacks, so a late paho call is a no-op."""
        self.unwatch()
        self._client.on_socket_close = None
        self._client.on_socket_register_write = None
        self._client.on_socket_unregister_write = None

    def unwatch(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._fd = None
        self._reading = False

    def _watch(self) -> None:
        sock = self._client.socket()
        if sock is None:
            return
        self._fd = sock.fileno()
        self._resume()
        # Always watch for writability once: CONNECT is queued, and paho may believe
        # a writer is already registered from the executor thread (ignored there).
        self._loop.add_writer(self._fd, self._on_writable)

    def _pause(self) -> None:
        if self._reading and self._fd is not None and self._gate is not None:
            self._loop.remove_reader(self._fd)
            self._reading = False
            self._gate.when_room(self._resume)

    def _resume(self) -> None:
        if not self._reading and self._fd is not None:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _on_readable(self) -> None:
        client, gate = self._client, self._gate
        for _ in range(self._burst):
            if gate is not None and gate.at_limit():
                self._pause()
                return
            before = self._progress()
            if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or self._fd is None:
                return  # the connection is gone (paho closed the socket)
            if self._progress() == before:
                break  # nothing more to read, or a packet that was not a message
        sock = client.socket()
        if self._fd is not None and sock is not None and _tls_pending(sock):
            self._loop.call_soon(self._on_readable)  # TLS holds decrypted bytes epoll can't see

    def _on_writable(self) -> None:
        self._client.loop_write()
        if self._fd is not None and not self._client.want_write():
            self._loop.remove_writer(self._fd)

    def _on_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _on_socket_close(self, _client: Client, _userdata: Any, _sock: SocketLike) -> None:
        if self._on_loop_thread():
            self.unwatch()

    def _on_register_write(self, _client: Client, _userdata: Any, _sock: SocketLike) -> None:
        if self._on_loop_thread() and self._fd is not None:
            self._loop.add_writer(self._fd, self._on_writable)

    def _on_unregister_write(self, _client: Client, _userdata: Any, _sock: SocketLike) -> None:
        if self._on_loop_thread() and self._fd is not None:
            self._loop.remove_writer(self._fd)


def _tls_pending(sock: SocketLike) -> bool:
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def _shutdown(sock: SocketLike) -> None:
    if isinstance(sock, socket.socket):  # ssl.SSLSocket is one too
        sock.shutdown(socket.SHUT_RDWR)


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
