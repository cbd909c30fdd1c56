"""The pages as an installable app (issue 18): the web app manifest, the service worker
at ``/sw.js`` (root scope: it caches the shell and answers navigations with ``/offline``
when the network is away), the offline page, the session's CSRF token for the queue of
forms sent offline (``web/static/queue.js``), and gzip for the pages' HTML.

A form marked ``data-offline="queue"`` (a check-in) submitted offline waits in the
phone's IndexedDB with the phone's time; back online it is posted with ``client_time``
and ``X-Offline-Queued: 1``. The handler decides with ``ikn_core.attendance.sent``
whether that time is the event's (``sent_of``, ``oldest``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import re
from datetime import datetime, timedelta

from aiohttp import web

from ikn_core.attendance.sent import parse_sent
from ikn_core.domain import IKN_ZONE
from web import sessions, static
from web.pages import render
from web.ports import PORTS, Handler

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

NAME = "IKN Workspace"
SHORT_NAME = "IKN"
SENT_FIELD = "client_time"  # the phone's time of a form queued offline (ISO 8601)
QUEUED_HEADER = "X-Offline-Queued"
NO_CACHE = static.NO_CACHE
ICONS = (("icons/icon-192.png", "192x192"), ("icons/icon-512.png", "512x512"))
# What the service worker keeps for offline use (besides /offline and htmx).
SHELL = ("site.css", "app.js", "queue.js", "icons/icon.svg", *(name for name, _ in ICONS))
COMPRESSED = frozenset({"text/html", "application/manifest+json", "text/javascript"})


def colour(name: str) -> str:
    """A colour of the stylesheet's ``:root`` (``--brand``), for the manifest."""
    css = (static.STATIC / "site.css").read_text(encoding="utf-8")
    found = re.search(rf"--{name}:\s*(#[0-9a-fA-F]{{3,8}})", css)
    if found is None:
        raise ValueError(f"site.css defines no --{name}")
    return found[1]


@functools.cache
def manifest() -> bytes:
    icons = [{"src": static.asset_url("icons/icon.svg"), "sizes": "any", "type": "image/svg+xml"}]
    for name, sizes in ICONS:
        icons.append({"src": static.asset_url(name), "sizes": sizes, "type": "image/png"})
    icons.append({**icons[-1], "purpose": "maskable"})  # the mark stays in the safe circle
    return json.dumps(
        {
            "id": "/",
            "name": NAME,
            "short_name": SHORT_NAME,
            "lang": "id",
            "dir": "ltr",
            "start_url": "/",
            "scope": "/",
            "display": "standalone",
            "theme_color": colour("brand"),
            "background_color": colour("wash"),
            "icons": icons,
        },
        indent=1,
    ).encode()


@routes.get("/manifest.webmanifest")
async def web_manifest(request: web.Request) -> web.StreamResponse:
    body = manifest()
    return web.Response(
        body=body,
        content_type="application/manifest+json",
        headers={"Cache-Control": NO_CACHE},
    )


@functools.cache
def service_worker() -> static.Asset:
    """``static/sw.js`` after the addresses of this version's shell: a changed asset
    changes the worker, which the browser then installs anew."""
    names = (*SHELL, static.vendored("htmx.org"))
    shell = ["/offline", *(static.asset_url(name) for name in names)]
    queue = static.asset_url("queue.js")
    code = (static.STATIC / static.SERVICE_WORKER).read_text(encoding="utf-8")
    digest = hashlib.sha256((json.dumps(shell) + code).encode()).hexdigest()[:12]
    head = (
        f'import {{ TAG, sendAll }} from "{queue}";\n'
        f"const SHELL = {json.dumps(shell)};\n"
        f'const VERSION = "{digest}";\n'
    )
    body = (head + code).encode()
    return static.Asset(body, gzip.compress(body, 9, mtime=0), digest, "text/javascript")


@routes.get("/sw.js")
async def worker(request: web.Request) -> web.StreamResponse:
    """The service worker, at the root so that its scope is every page; never cached
    without asking (``no-cache``): a new version is found at once."""
    response = service_worker().answer(request, cache=NO_CACHE)
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@routes.get("/offline")
async def offline(request: web.Request) -> web.StreamResponse:
    """What the service worker shows when the network is away: in the person's language
    (it is cached again when the language changes), with what waits to be sent."""
    return render(request, "offline.html")


@routes.get("/offline/token")
async def token(request: web.Request) -> web.StreamResponse:
    """The session's CSRF token and person, for the queue sent back online (only the
    person's own items); 401 when the session ended meanwhile (the person must sign in
    again: the queue waits)."""
    session = request.get(sessions.SESSION)
    headers = {"Cache-Control": "no-store"}
    if session is None or session.person is None:
        return web.json_response({"signed_in": False}, status=401, headers=headers)
    csrf = sessions.mask(session.csrf_token)
    found = {"signed_in": True, "csrf": csrf, "person": session.person.id}
    return web.json_response(found, headers=headers)


async def sent_of(request: web.Request) -> datetime | None:
    """The phone's time of a form queued offline (``client_time``), None when sent at
    once; an unreadable one is refused (``SentTimeUnreadable``)."""
    text = str((await request.post()).get(SENT_FIELD, ""))
    if request.headers.get(QUEUED_HEADER) == "1":
        log.info("%s %s queued offline, sent %r", request.method, request.path, text)
    return parse_sent(text) if text.strip() else None


def oldest(request: web.Request) -> timedelta:
    """How old a queued action may be: the late-signal bound of the policy in force."""
    ports = request.app[PORTS]
    day = ports.now().astimezone(IKN_ZONE).date()
    return ports.policies().in_force(day).late_signal_after


@web.middleware
async def compression(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The pages' HTML (and the manifest, the worker) gzipped for a browser that
    accepts it; static files come compressed already (``web.static``)."""
    response = await handler(request)
    if (
        isinstance(response, web.Response)
        and request.match_info.route in request.app[sessions.ALL_ROUTES]
        and response.content_type in COMPRESSED
        and "Content-Encoding" not in response.headers
        and "gzip" in static.accepted(request)
    ):
        response.enable_compression(web.ContentCoding.gzip)
        if "Accept-Encoding" not in response.headers.get("Vary", ""):
            response.headers.add("Vary", "Accept-Encoding")
    return response
