"""A TCP proxy between the simulated devices' agents and the broker, that the
simulator can cut (the ``broker-outage`` fault).

The agents connect to the proxy with real sockets; ``cut`` aborts every
connection and stops listening (a reconnect is refused, so the agents' real
backoff runs), ``restore`` listens again on the same port. Bytes pass through
untouched (MQTT, or TLS end to end).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

log = logging.getLogger(__name__)

CHUNK = 65536


class BrokerProxy:
    """Listens on ``127.0.0.1:port`` (a free one unless given) and relays to the broker."""

    def __init__(self, broker_host: str, broker_port: int, port: int = 0) -> None:
        self._broker = (broker_host, broker_port)
        self.port = port
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()  # both ends of every connection

    @property
    def up(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (again); the first call picks the port."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._relay, "127.0.0.1", self.port, reuse_address=True, backlog=4096
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """The broker becomes unreachable: stop listening, drop every connection."""
        if self._server is None:
            return
        self._server.close()
        self._server = None
        for writer in list(self._links):
            writer.transport.abort()  # no FIN: as a broker that vanished
        await asyncio.sleep(0)  # the relays see their ends gone

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._links.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(*self._broker)
            self._links.add(upstream)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_pipe(reader, upstream))
                tg.create_task(_pipe(up_reader, writer))
        except (OSError, ExceptionGroup) as exc:
            log.debug("proxy: a link ended: %r", exc)
        finally:
            for w in (writer, upstream):
                if w is not None:
                    self._links.discard(w)
                    w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of file, then end the other side too."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    with suppress(OSError):
        writer.write_eof()
    raise ConnectionResetError("one side closed")  # ends the sibling pipe
