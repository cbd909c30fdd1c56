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

    def response(self, instance: str | None) -> web.Response:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
        }
        if instance is not None:
            body["instance"] = instance
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


def _text(name: str, value: str) -> None:
    """PostgreSQL's text cannot hold NUL: refuse it here, naming the field, rather than
    as a 500 from the database. (Invalid UTF-8 cannot arrive: orjson refuses it in a
    body, and the path and query decode it to U+FFFD.)"""
    if "\x00" in value:
        raise invalid_parameter(name, "must not contain a NUL character")


MAX_DEPTH = 32  # of a body's nesting; no route's body nests deeper than 3


def _checked(value: Any, path: str, depth: int = 0) -> Any:
    """The JSON value with every string checked (``_text``) and every whole-valued float
    made an int (``190.0`` is the integer JSON Schema and the MQTT contract see)."""
    if depth > MAX_DEPTH:
        raise invalid_parameter(path, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _text(path, value)
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    elif isinstance(value, list):
        return [_checked(item, f"{path}[{n}]", depth + 1) for n, item in enumerate(value)]
    elif isinstance(value, dict):
        for key in value:
            _text(path or "body", key)
        return {k: _checked(v, f"{path}.{k}" if path else k, depth + 1) for k, v in value.items()}
    return value


async def json_object_body(request: web.Request) -> dict[str, Any]:
    """The request's body as a JSON object, the one reader of every route that takes one:
    415 unless it is sent as ``application/json``; 400 naming ``body``, or the field, when
    there is none, or it is not a JSON object, or it holds text PostgreSQL cannot store."""
    if not request.body_exists:
        raise invalid_parameter("body", "required: a JSON object")
    if request.content_type != "application/json":
        raise Problem(
            415,
            "unsupported-media-type",
            "The body must be sent as application/json",
            f"Content-Type: {request.content_type or 'none'}; send application/json",
            invalid_params=[{"name": "Content-Type", "reason": "must be application/json"}],
        )
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:  # where and why: NaN, 1e999, a stray comma
        raise invalid_parameter("body", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid_parameter("body", "must be a JSON object")
    checked: dict[str, Any] = _checked(body, "")
    return checked


@web.middleware
async def text_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Path segments and query parameters pass ``_text`` before any route reads them."""
    for name, value in request.match_info.items():
        _text(name, value)
    for name, value in request.query.items():
        _text("query", name)
        _text(name, value)
    return await handler(request)


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
        response = Problem(exc.status, kind, exc.reason).response(request.path)
        if "Allow" in exc.headers:  # a 405 says which methods the path has
            response.headers["Allow"] = exc.headers["Allow"]
        return response
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
