"""The person's secret calendar address (issue 18): ``/feeds/bookings/<secret>.ics``
serves the bookings of My bookings' iCalendar file to a calendar app that subscribes,
without a session (a calendar app has none). My bookings makes and replaces the address
(a POST with the session's CSRF token, ``web.bookings``); the secret is shown once, and
only its hash is kept (``ikn_store.booking.feeds``).

The address is a secret: nothing here logs it. This route is not one of the pages (no
session is looked up, ``web.errors`` does not wrap it), and the errors the API's
middleware would log with the request's path are caught here and logged without it.
The API runs without an access log (``api.server``) and Caddy, in front, keeps none.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ikn_service.booking_feed import feed_of
from ikn_store.booking.feeds import feed_owner
from ikn_store.errors import DATABASE_UNAVAILABLE
from web.ports import PORTS

log = logging.getLogger(__name__)
PATH = "/feeds/bookings/{secret}.ics"
RETRY_AFTER_S = 5
# A calendar app asks again every few hours; a shared cache must not keep a person's data.
CACHE_CONTROL = "private, max-age=300"


def address(origin: str, secret: str) -> str:
    return f"{origin}{PATH.format(secret=secret)}"


async def feed(request: web.Request) -> web.StreamResponse:
    """The bookings of the person whose secret the path holds; 404 for any other."""
    ports = request.app[PORTS]
    now = ports.now()
    try:
        async with ports.pool().acquire() as conn:
            owner = await feed_owner(conn, request.match_info["secret"])
            body = await feed_of(conn, owner, now) if owner is not None else None
    except DATABASE_UNAVAILABLE as exc:
        log.warning("database unavailable on the bookings feed: %r", exc)
        raise web.HTTPServiceUnavailable(headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    except Exception:
        log.exception("unhandled error on the bookings feed")  # not the path: its secret
        raise web.HTTPInternalServerError() from None
    if body is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=body.encode(),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": CACHE_CONTROL},
    )
