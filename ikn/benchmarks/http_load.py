"""A lean HTTP/1.1 load client for the benchmarks, in the manner of wrk.

The benchmarks run the load client on the same two cores as the API and the
database, so whatever the client spends per request is taken from what it measures.
With aiohttp's client (headers, a response object and a stream reader per request)
the booking bench's process used 40 % of a core at 1,108 requests/s; with this one,
16.5 % at 1,110 (``top`` during the open-loop rush). It writes each request as bytes
prepared before the clock starts, on one keep-alive connection per client, and reads
an answer by its status line and its ``Content-Length``.

It speaks only what the benchmarks need: answers with a ``Content-Length`` (aiohttp's
``web.Response`` always sends one). A chunked or unframed answer, or a connection
the server closes, is an error of the benchmark, raised as ``HttpLoadError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


class HttpLoadError(Exception):
    """The server answered in a way this client does not read, or went away."""


def prepare(method: str, host: str, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """One request as the bytes sent on the wire."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._status = 0
        self._head = 0  # where the body starts, once the head was read
        self._length = 0
        self._lost: BaseException | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        _, protocol = await asyncio.get_running_loop().create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = HttpLoadError(f"the server closed the connection ({exc or 'EOF'})")
        self._fail(self._lost)

    def _fail(self, error: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self._waiter = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        """Sends prepared request bytes; returns the answer's status and body."""
        if self._lost is not None:
            raise self._lost
        assert self._transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(data)
        return await self._waiter

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None:
            self._fail(HttpLoadError("the server sent bytes nobody asked for"))
            assert self._transport is not None
            self._transport.close()
            return
        try:
            if not self._head and not self._read_head():
                return
        except (HttpLoadError, ValueError, IndexError) as exc:
            self._fail(exc if isinstance(exc, HttpLoadError) else HttpLoadError(str(exc)))
            assert self._transport is not None
            self._transport.close()
            return
        end = self._head + self._length
        if len(self._buffer) < end:
            return
        body = bytes(self._buffer[self._head : end])
        del self._buffer[:end]
        self._head = 0
        waiter, self._waiter = self._waiter, None
        waiter.set_result((self._status, body))

    def _read_head(self) -> bool:
        """Reads the status line and headers once they are all there."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        status_line, *fields = bytes(self._buffer[:end]).split(b"\r\n")
        length = None
        for field in fields:
            name, _, value = field.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" or (
                name == b"connection" and value.strip().lower() == b"close"
            ):
                raise HttpLoadError(f"unsupported answer framing: {field!r}")
        if length is None:
            raise HttpLoadError(f"an answer without Content-Length: {status_line!r}")
        self._status = int(status_line.split(b" ", 2)[1])
        self._head, self._length = end + 4, length
        return True

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
