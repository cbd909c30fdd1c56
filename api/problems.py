"""Errors as RFC 9457 ``application/problem+json``, each with a stable ``type``.

Handlers raise ``Problem``; the middleware turns it (and aiohttp's own HTTP
errors) into a problem document. A database that cannot be reached, or no pooled
connection free within the pool's deadline, is a 503 with ``Retry-After``. An
unexpected exception is logged with its traceback and answered with a 500 problem
that reveals nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from ikn_store.errors import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5  # what a 503 for an unavailable database asks clients to wait

TYPE_BASE = "https://ikn-workspace.example/problems/"
CONTENT_TYPE = "application/problem+json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Problem(Exception):
    """A problem document; ``retry_after_s`` adds ``Retry-After`` (429, 503)."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str = "",
        *,
        retry_after_s: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.extra = extra

    def response(self, instance: str) -> web.Response:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "instance": instance,
        }
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extra)
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}
        if self.retry_after_s is not None:
            headers["Retry-After"] = str(self.retry_after_s)
        return web.Response(
            status=self.status,
            body=orjson.dumps(body),
            content_type=CONTENT_TYPE,
            headers=headers,
        )


def invalid_parameter(name: str, reason: str) -> Problem:
    return Problem(
        400,
        "invalid-parameter",
        "A request parameter is invalid",
        f"{name}: {reason}",
        invalid_params=[{"name": name, "reason": reason}],
    )


async def json_object_body(request: web.Request) -> dict[str, Any]:
    """The request's body as a JSON object; a 400 naming ``body`` otherwise."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise invalid_parameter("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise invalid_parameter("body", "must be a JSON object")
    return body


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response(request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = exc.reason.lower().replace(" ", "-")
        return Problem(exc.status, kind, exc.reason).response(request.path)
    except ConnectionResetError:
        # The client went away mid-request: nobody reads the answer, and it is not our
        # error. 499 ("client closed request", nginx's name) shows so in the access log.
        log.info("client left during %s %s", request.method, request.path)
        return web.Response(status=499)
    except DATABASE_UNAVAILABLE as exc:
        # Not the request's fault, and worth trying again soon: 503 with Retry-After.
        log.warning("database unavailable on %s %s: %r", request.method, request.path, exc)
        unavailable = Problem(
            503,
            "database-unavailable",
            "The database is not answering",
            "try again in a few seconds",
            retry_after_s=RETRY_AFTER_S,
        )
        return unavailable.response(request.path)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return Problem(500, "internal-error", "Internal server error").response(request.path)
