"""The API's HTTP server: aiohttp's, with its parser's limits stated and the requests
it refuses answered as problems.

aiohttp's parser refuses a request it cannot read (a URL longer than ``MAX_LINE_SIZE``,
a header longer than ``MAX_FIELD_SIZE``, more than ``MAX_HEADERS`` headers, bytes that
are not HTTP) before any middleware runs: by itself it answers a ``text/plain`` 400 and
logs an ERROR with a traceback, so any client could fill the log. Here the refusal is
a problem (414 for the URL, 431 for the headers, 400 otherwise) and one WARNING line,
at most one per ``REFUSAL_LOG_INTERVAL_S`` (the next line counts those left out). It
names no part of the request: a header refused may be someone's bearer token.

aiohttp has no public hook for that answer (aio-libs/aiohttp#3287), so its connection
handler is subclassed (``handle_error``) and the runner builds its server with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from api import headers
from api.problems import Problem

log = logging.getLogger(__name__)

MAX_LINE_SIZE = 8190  # bytes of the request's URL (aiohttp's default)
# Bytes of one header. It differs from MAX_LINE_SIZE by design: the parser's error tells
# only which limit it hit, and so whether the URL (414) or a header (431) was too long.
MAX_FIELD_SIZE = 8192
MAX_HEADERS = 128
HANDLER_ARGS: dict[str, Any] = {
    "max_line_size": MAX_LINE_SIZE,
    "max_field_size": MAX_FIELD_SIZE,
    "max_headers": MAX_HEADERS,
}
REFUSAL_LOG_INTERVAL_S = 10.0


class RefusalLog:
    """One WARNING line per ``interval_s`` at most; the next says how many were left out."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._quiet_until = float("-inf")
        self._left_out = 0

    def refused(self, problem: Problem, remote: str | None) -> None:
        now = time.monotonic()
        if now < self._quiet_until:
            self._left_out += 1
            return
        since = f" ({self._left_out} more refused since the last line)" if self._left_out else ""
        log.warning(
            "refused an unreadable request from %s: %d %s%s",
            remote,
            problem.status,
            problem.title,
            since,
        )
        self._quiet_until = now + self.interval_s
        self._left_out = 0


REFUSALS = RefusalLog(REFUSAL_LOG_INTERVAL_S)


def refusal(exc: HttpProcessingError) -> Problem:
    """The problem for a request aiohttp's parser refused."""
    if isinstance(exc, LineTooLong) and exc.args[1:2] == (MAX_LINE_SIZE,):
        return Problem(
            414, "uri-too-long", "The request's URL is too long", f"at most {MAX_LINE_SIZE} bytes"
        )
    if isinstance(exc, LineTooLong) or "Too many headers" in exc.message:
        return Problem(
            431,
            "request-header-fields-too-large",
            "The request's headers are too large",
            f"at most {MAX_HEADERS} headers of at most {MAX_FIELD_SIZE} bytes each",
        )
    return Problem(400, "bad-request", "The request is not valid HTTP")


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering what its parser refuses as a problem."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        problem = refusal(exc)
        REFUSALS.refused(problem, request.remote)
        response = problem.response(None)  # no instance: the path was not read
        headers.add(response.headers, request.secure)  # no app: no on_response_prepare
        response.force_close()
        return response


class ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """aiohttp's runner of an application, with ``ProblemServer`` as its server."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return ProblemServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[ApiRunner]:
    """``app`` listening on ``host:port`` until the block ends (then cleaned up)."""
    runner = ApiRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield runner
    finally:
        await runner.cleanup()
