"""A client that hangs up in the middle of its request body is not the API's error:
nothing is logged as unhandled, and the API goes on answering. The server runs as in
production (aiohttp's test server cancels handlers on disconnect; `ikn api` does not)."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import urllib.request

import asyncpg
import pytest
from aiohttp import web

from api.app import make_app
from ikn_store.tokens import create_token
from tests.helpers import api_settings, seed


async def test_a_client_hanging_up_mid_body_is_no_unhandled_error(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        token = await create_token(conn, "admin", "admin")
    finally:
        await conn.close()
    runner = web.AppRunner(make_app(api_settings({"IKN_DATABASE_URL": database_url})))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        caplog.set_level(logging.INFO, logger="api.problems")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /api/v1/devices HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
            + b'{"id": "desk-'
        )
        await writer.drain()
        with pytest.raises(TimeoutError):  # the API waits for the rest of the body
            await asyncio.wait_for(reader.read(1), 0.5)
        # then the client dies: a reset, as when its process is killed
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
        for _ in range(50):
            if any("client left" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.1)
        health = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status
        )
        assert health == 200
    finally:
        await runner.cleanup()
    assert any("client left during POST /api/v1/devices" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
