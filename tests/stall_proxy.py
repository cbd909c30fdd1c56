"""A TCP proxy in front of PostgreSQL that can make the connections open through it go
silent, as a network partition or a server wedged mid-reply does: the sockets stay open,
nothing more arrives either way. Connections opened afterwards work. It runs its own
event loop in a thread, so a test can use it for a service in a child process.

A silenced connection that its client closes is closed towards the server too, so that
the server rolls back what that client left open (and releases its locks)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TypeVar

from ikn.brokers import free_port

CHUNK = 65_536
T = TypeVar("T")


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    silent: bool = False

    def close(self) -> None:
        for writer in (self.client, self.server):
            writer.close()


@dataclass
class StallProxy:
    upstream_port: int
    port: int = field(default_factory=free_port)
    _links: set[_Link] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _stop: asyncio.Event = field(init=False)

    @property
    def open_links(self) -> int:
        return len(self._links)

    def silence(self) -> int:
        """Silence every connection open now; how many there were."""
        return self._call(self._silence)

    def cut_silent(self) -> None:
        """Close the silenced connections both ways (the partition ends in a reset)."""
        self._call(self._cut_silent)

    def _silence(self) -> int:
        for link in self._links:
            link.silent = True
        return len(self._links)

    def _cut_silent(self) -> None:
        for link in [link for link in self._links if link.silent]:
            link.close()

    def _call(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for link in self._links:
                link.close()
            # the links' tasks end with their sockets
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.sleep(0.1)  # the transports finish closing

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._link(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, link), self._pump(up_reader, writer, link)
            )
        finally:
            self._links.discard(link)
            link.close()

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        """Forward until either side ends; a silenced link's bytes are dropped."""
        with suppress(OSError):
            while chunk := await reader.read(CHUNK):
                if not link.silent:
                    writer.write(chunk)
                    await writer.drain()
        link.close()  # one side ended: end the other (the server then rolls back)


@contextmanager
def stall_proxy(upstream_port: int) -> Iterator[StallProxy]:
    proxy = StallProxy(upstream_port)
    ready = threading.Event()

    def run() -> None:
        try:
            proxy._loop.run_until_complete(proxy._serve(ready))
        finally:
            proxy._loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the proxy did not start")
    try:
        yield proxy
    finally:
        proxy.stop()
        thread.join(10)
