"""The API's own HTTP server (api.server, what ``ikn api`` runs) on a real port: what
aiohttp's parser refuses is a problem (414, 431, 400), and one rate-limited WARNING line
in the log, never an ERROR with a traceback nor any part of the request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from api import server
from api.app import make_app
from ikn.brokers import free_port
from tests.helpers import api_settings

PROBLEM = "application/problem+json"


@pytest.fixture
async def base(database_url: str) -> AsyncIterator[str]:
    port = free_port()
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with server.serving(app, "127.0.0.1", port):
        yield f"http://127.0.0.1:{port}"


async def _refused(base: str, path: str, headers: dict[str, str], status: int, kind: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + path, headers=headers) as response,
    ):
        assert response.status == status, await response.text()
        assert response.content_type == PROBLEM
        body = await response.json(content_type=PROBLEM)
        assert body["type"].endswith("/" + kind)
        assert body["status"] == status


async def test_over_long_requests_are_problems_logged_once(
    base: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "REFUSALS", server.RefusalLog(3600))
    secret = "s3cr3t" * 2000  # 12,000 characters
    caplog.set_level(logging.DEBUG)
    await _refused(base, "/api/v1/availability?q=" + "x" * 100_000, {}, 414, "uri-too-long")
    big_key = {"Idempotency-Key": "k" * 100_000}
    await _refused(base, "/api/v1/bookings", big_key, 431, "request-header-fields-too-large")
    bearer = {"Authorization": f"Bearer {secret}"}
    await _refused(base, "/api/v1/bookings", bearer, 431, "request-header-fields-too-large")
    many = {f"X-Header-{n}": "1" for n in range(server.MAX_HEADERS + 1)}
    await _refused(base, "/healthz", many, 431, "request-header-fields-too-large")

    records = [r for r in caplog.records if r.name.startswith(("aiohttp", "api"))]
    assert [r.levelno for r in records if r.levelno >= logging.WARNING] == [logging.WARNING]
    assert all(r.exc_info is None for r in records), [r.getMessage() for r in records]
    (line,) = [r.getMessage() for r in records if r.name == "api.server"]
    assert "414" in line
    assert "s3cr3t" not in caplog.text
    assert "xxxx" not in caplog.text

    # A request within the limits is served as usual.
    async with aiohttp.ClientSession() as session, session.get(base + "/healthz") as ok:
        assert ok.status == 200


async def test_the_next_line_counts_the_refusals_left_out(
    base: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusals = server.RefusalLog(3600)
    monkeypatch.setattr(server, "REFUSALS", refusals)
    caplog.set_level(logging.INFO, logger="api.server")
    for _ in range(3):
        await _refused(base, "/?" + "x" * 10_000, {}, 414, "uri-too-long")
    refusals.interval_s = 0.0  # the quiet time is over at the next refusal
    refusals._quiet_until = 0.0
    await _refused(base, "/?" + "x" * 10_000, {}, 414, "uri-too-long")
    lines = [r.getMessage() for r in caplog.records if r.name == "api.server"]
    assert len(lines) == 2, lines
    assert "2 more refused" in lines[1]


async def not_http(base: str) -> bytes:
    """The server's whole answer to a request with a malformed header line."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return answer


async def test_bytes_that_are_not_http_are_a_400_problem(base: str) -> None:
    answer = await not_http(base)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer
    assert b"Content-Type: application/problem+json" in head
    assert b"bad-request" in body
