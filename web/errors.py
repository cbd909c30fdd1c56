"""Error pages: a request for a page that fails (403, 404, a form refused, the database
away) gets an HTML page in the person's language, with the navigation, instead of
the API's problem document; the API's paths keep their problem+json. A path no route
matches is a page's when it is not the API's and the browser asks for HTML."""

from __future__ import annotations

import logging
from http import HTTPStatus

from aiohttp import web

from ikn_store.errors import DATABASE_UNAVAILABLE
from web import i18n, sessions
from web.pages import render
from web.ports import Handler

log = logging.getLogger(__name__)
API_PREFIX = "/api/"
RETRY_AFTER_S = 5
# (title, what to do), by status; others fall back to their class (4xx, 5xx).
MESSAGES = {
    400: (
        i18n.gettext_noop("The request could not be read"),
        i18n.gettext_noop("Go back, check what you entered and try again."),
    ),
    403: (
        i18n.gettext_noop("Not for you"),
        i18n.gettext_noop(
            "Your role does not open this page, or the form was sent from elsewhere or "
            "has expired. Go back, reload the page and try again."
        ),
    ),
    404: (
        i18n.gettext_noop("Page not found"),
        i18n.gettext_noop("The address does not lead to a page. Use the menu to go on."),
    ),
    405: (
        i18n.gettext_noop("Not possible here"),
        i18n.gettext_noop("This page does not take that kind of request. Use the menu to go on."),
    ),
    413: (
        i18n.gettext_noop("Too large"),
        i18n.gettext_noop("What was sent is larger than this page accepts."),
    ),
    429: (
        i18n.gettext_noop("Too many requests"),
        i18n.gettext_noop("Wait a moment, then try again."),
    ),
    503: (
        i18n.gettext_noop("Temporarily unavailable"),
        i18n.gettext_noop(
            "The service cannot reach its database at the moment. Try again in a few seconds."
        ),
    ),
}
CLIENT_ERROR = (
    i18n.gettext_noop("The request could not be done"),
    i18n.gettext_noop("Go back and try again."),
)
SERVER_ERROR = (
    i18n.gettext_noop("Something went wrong on our side"),
    i18n.gettext_noop(
        "It has been logged. Try again later; if it persists, tell your administrator."
    ),
)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _for_a_page(request):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = "" if exc.reason == HTTPStatus(exc.status).phrase else exc.reason
        return _page(request, exc.status, dict(exc.headers), detail)
    except DATABASE_UNAVAILABLE as exc:
        log.warning("database unavailable on %s %s: %r", request.method, request.path, exc)
        return _page(request, 503, {"Retry-After": str(RETRY_AFTER_S)})
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _page(request, 500, {})


def _for_a_page(request: web.Request) -> bool:
    if sessions.is_page(request):
        return True
    if request.match_info.route in request.app[sessions.ALL_ROUTES]:
        return False  # a static file: a plain 404
    unrouted = isinstance(request.match_info.http_exception, web.HTTPException)
    html = "text/html" in request.headers.get("Accept", "")
    return unrouted and html and not request.path.startswith(API_PREFIX)


def _page(
    request: web.Request, status: int, headers: dict[str, str], detail: str = ""
) -> web.Response:
    """The error page; ``detail``: what the handler said was wrong (the field, in the
    terms of the address), shown below the explanation in the person's language."""
    fallback = SERVER_ERROR if status >= 500 else CLIENT_ERROR
    title, hint = MESSAGES.get(status, fallback)
    response = render(request, "error.html", title=title, hint=hint, status=status, detail=detail)
    response.set_status(status)
    for name in ("Allow", "Retry-After", "HX-Redirect"):
        if name in headers:
            response.headers[name] = headers[name]
    return response
