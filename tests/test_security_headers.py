"""Security headers on every answer of the API's own server (what ``ikn api`` runs), on a
real port: a JSON answer, a problem, the docs page and its assets, the OpenAPI document,
the SSE stream and what the parser refuses; HSTS only over TLS, which behind a reverse
proxy is believed only when IKN_API_TRUSTED_PROXY says so (issue 16)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from api import server
from api.app import make_app
from ikn.brokers import free_port
from tests.helpers import api_settings, bearer
from tests.test_api_server import not_http

Serve = Callable[..., AbstractAsyncContextManager[str]]
HSTS = "Strict-Transport-Security"


@pytest.fixture
def serve(database_url: str) -> Serve:
    @asynccontextmanager
    async def serving(**env: str) -> AsyncIterator[str]:
        port = free_port()
        app = make_app(api_settings({"IKN_DATABASE_URL": database_url, **env}))
        async with server.serving(app, "127.0.0.1", port):
            yield f"http://127.0.0.1:{port}"

    return serving


def _assert_secured(headers: CIMultiDictProxy[str] | dict[str, str]) -> None:
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp  # no 'unsafe-inline', no 'unsafe-eval'
    assert "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def _head(
    base: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, str, CIMultiDictProxy[str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + path, headers=headers or {}) as response,
    ):
        return response.status, response.content_type, response.headers


async def test_every_kind_of_answer_has_the_headers(serve: Serve, database_url: str) -> None:
    fm = await bearer(database_url, "fm", "facility_manager")
    async with serve() as base:
        answers = {
            "json": await _head(base, "/api/v1/dead-letters", fm),
            "problem": await _head(base, "/api/v1/dead-letters"),
            "not found": await _head(base, "/api/v1/nothing-here"),
            "docs page": await _head(base, "/api/v1/docs"),
            "docs asset": await _head(base, "/api/v1/docs/assets/swagger-ui-bundle.js"),
            "openapi": await _head(base, "/api/v1/openapi.json"),
            "health": await _head(base, "/healthz"),
        }
        async with (
            aiohttp.ClientSession() as session,
            session.get(base + "/api/v1/occupancy/stream", headers=fm) as stream,
        ):
            answers["stream"] = (stream.status, stream.content_type, stream.headers)
    kinds = {name: (status, kind) for name, (status, kind, _) in answers.items()}
    assert kinds == {
        "json": (200, "application/json"),
        "problem": (401, "application/problem+json"),
        "not found": (404, "application/problem+json"),
        "docs page": (200, "text/html"),
        "docs asset": (200, "text/javascript"),
        "openapi": (200, "application/json"),
        "health": (200, "application/json"),
        "stream": (200, "text/event-stream"),
    }
    for name, (_, _, headers) in answers.items():
        _assert_secured(headers)
        assert HSTS not in headers, name  # plain HTTP, no trusted proxy


async def test_what_the_parser_refuses_has_the_headers_too(serve: Serve) -> None:
    async with serve() as base:
        answer = await not_http(base)
    head = answer.partition(b"\r\n\r\n")[0].decode()
    assert head.split("\r\n")[0].endswith(" 400 Bad Request"), answer
    fields = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
    _assert_secured(fields)


async def test_hsts_behind_a_trusted_proxy_only(serve: Serve) -> None:
    https = {"X-Forwarded-Proto": "https"}
    async with serve() as base:  # IKN_API_TRUSTED_PROXY unset: anyone may send the header
        assert HSTS not in (await _head(base, "/healthz", https))[2]
    async with serve(IKN_API_TRUSTED_PROXY="true") as base:
        hsts = (await _head(base, "/healthz", https))[2][HSTS]
        assert hsts.startswith("max-age=31536000")
        assert HSTS not in (await _head(base, "/healthz", {"X-Forwarded-Proto": "http"}))[2]
        assert HSTS not in (await _head(base, "/healthz"))[2]
        problem = await _head(base, "/api/v1/dead-letters", https)
        assert problem[0] == 401
        assert HSTS in problem[2]
