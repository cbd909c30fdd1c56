"""One paho-mqtt client driven by the asyncio loop (paho's external-loop mode).

Why not the house default (``loop_start``: a network thread per client, events
handed over with ``call_soon_threadsafe``)? Because one process must run
thousands of agents (``firmware_sim`` with 5,000 devices):

- paho's own loop waits with ``select()``, which cannot watch a file descriptor
  numbered 1024 or above: past a few hundred clients in a process (each thread
  loop also holds a socket pair) connections fail with "filedescriptor out of
  range" and paho reports them lost, over and over;
- 5,000 threads each waking every second contend for the GIL and hit the
  thread limits of many containers.

Here the asyncio loop (epoll, no descriptor limit) watches each client's one
socket and calls ``loop_read``/``loop_write``; ``loop_misc`` (keepalive) runs
from the agent's supervisor every second. Every paho callback runs on the loop
thread, so the agent needs no locks and no thread hand-over.

The one blocking step is paho's ``reconnect()`` (name lookup, TCP connect, TLS
handshake, CONNECT queued): it runs in an executor thread, bounded by paho's
``connect_timeout``. While it runs the socket is not watched, and socket
callbacks paho makes from that thread are ignored; the socket is watched once
``reconnect()`` has returned, from the loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from concurrent.futures import Executor
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ikn_core.settings import MqttSettings

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

log = logging.getLogger(__name__)


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


def make_client(
    device_id: str,
    settings: MqttSettings,
    *,
    keepalive_s: int,
    connect_timeout_s: float,
    will_topic: str,
    will_payload: bytes,
) -> Client:
    """A paho client for one device: client id = device id, MQTT 5 or 3.1.1,
    credentials and TLS from the URL, and a retained QoS 1 Will. Connects nothing."""
    v5 = settings.protocol == "5"
    client = _Client(
        CallbackAPIVersion.VERSION2,
        client_id=device_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else True,
        reconnect_on_failure=False,  # the agent reconnects, with its own backoff
    )
    client.connect_timeout = connect_timeout_s
    client.max_inflight_messages_set(0)  # the uplink bounds what is in flight, not paho
    url = settings.url
    if url.username:
        client.username_pw_set(url.username, url.password)
    if url.tls:
        client.tls_set_context(settings.tls_context())
    client.will_set(will_topic, will_payload, qos=1, retain=True)
    client.connect_async(url.host, url.port, keepalive=keepalive_s)
    return client


class LoopBridge:
    """Watches one paho client's socket from the asyncio loop it was made in."""

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._fd: int | None = None
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

    def _watch(self) -> None:
        sock = self._client.socket()
        if sock is None:
            return
        self._fd = sock.fileno()
        self._loop.add_reader(self._fd, self._on_readable)
        # Always watch for writability once: CONNECT is queued, and paho may believe
        # a writer is already registered from the executor thread (ignored there).
        self._loop.add_writer(self._fd, self._on_writable)

    def _on_readable(self) -> None:
        self._client.loop_read()
        sock = self._client.socket()
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
