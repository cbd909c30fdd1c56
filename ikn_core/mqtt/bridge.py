"""The event-loop bridge: one paho client's socket watched by the asyncio loop."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol

from paho.mqtt.client import Client
from paho.mqtt.enums import MQTTErrorCode

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike


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
