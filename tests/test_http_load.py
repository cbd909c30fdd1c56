"""The benchmarks' lean HTTP/1.1 client against a real aiohttp server: it sends what
was prepared, reads every answer whole on one keep-alive connection, and refuses the
framings it does not read instead of misreading them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ikn.benchmarks import http_load


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    answer = {
        "method": request.method,
        "path": request.path,
        "auth": request.headers.get("Authorization"),
        "body": body.decode(),
    }
    return web.json_response(answer, status=int(request.query.get("status", "201")))


async def _chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(b"part")
    await response.write_eof()
    return response


async def _close(request: web.Request) -> web.Response:
    return web.Response(text="bye", headers={"Connection": "close"})


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/chunked", _chunked)
    app.router.add_get("/close", _close)
    running = TestServer(app, host="127.0.0.1")
    async with running:
        yield running


def _request(server: TestServer, path: str, body: bytes = b"", method: str = "POST") -> bytes:
    host = f"127.0.0.1:{server.port}"
    return http_load.prepare(method, host, path, {"Authorization": "Bearer t1"}, body)


async def test_answers_are_read_whole_one_after_another(server: TestServer) -> None:
    assert server.port is not None
    conn = await http_load.Connection.open("127.0.0.1", server.port)
    try:
        for n, status in enumerate((201, 409, 201, 500)):
            body = orjson.dumps({"n": n, "pad": "x" * 70_000 * (n % 2)})  # some span packets
            got, answer = await conn.request(_request(server, f"/echo?status={status}", body))
            assert got == status
            echoed = orjson.loads(answer)
            assert echoed["method"] == "POST" and echoed["path"] == "/echo"
            assert echoed["auth"] == "Bearer t1"
            assert orjson.loads(echoed["body"]) == orjson.loads(body)
    finally:
        conn.close()


async def test_many_connections_in_parallel_each_get_their_own_answers(
    server: TestServer,
) -> None:
    assert server.port is not None
    port = server.port
    conns = await asyncio.gather(*(http_load.Connection.open("127.0.0.1", port) for _ in range(20)))

    async def client(i: int, conn: http_load.Connection) -> list[str]:
        bodies = []
        for k in range(5):
            _, answer = await conn.request(_request(server, "/echo", f"{i}-{k}".encode()))
            bodies.append(orjson.loads(answer)["body"])
        return bodies

    try:
        results = await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
    finally:
        for conn in conns:
            conn.close()
    assert results == [[f"{i}-{k}" for k in range(5)] for i in range(20)]


@pytest.mark.parametrize(("path", "reason"), [("/chunked", "framing"), ("/close", "framing")])
async def test_framings_it_does_not_read_are_errors(
    server: TestServer, path: str, reason: str
) -> None:
    assert server.port is not None
    conn = await http_load.Connection.open("127.0.0.1", server.port)
    try:
        with pytest.raises(http_load.HttpLoadError, match=reason):
            await conn.request(_request(server, path, method="GET"))
    finally:
        conn.close()


async def test_a_connection_the_server_drops_fails_its_request(server: TestServer) -> None:
    assert server.port is not None
    conn = await http_load.Connection.open("127.0.0.1", server.port)
    await server.close()
    with pytest.raises(http_load.HttpLoadError, match="closed the connection"):
        await asyncio.wait_for(conn.request(_request(server, "/echo")), timeout=10)
