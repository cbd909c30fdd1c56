"""Sessions and CSRF protection of the pages (never of ``/api/v1``, whose bearer tokens
a browser does not send by itself).

The cookie holds a random 256-bit id (``ikn_store.web_sessions`` keeps its hash):
``HttpOnly``, ``SameSite=Lax``, ``Secure`` over TLS. A visitor gets a session before
signing in, for the login form's CSRF token; signing in ends it and starts another
(a new id: a fixated one is worth nothing). Every request but GET/HEAD/OPTIONS must
come from our own origin (``Origin``) and carry the session's token, as the form
field ``csrf_token`` or the header ``X-CSRF-Token`` (htmx's ``hx-headers`` on <body>).
A form field holding a NUL (which PostgreSQL's text cannot hold) is refused, 400 naming it.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
from datetime import timedelta

from aiohttp import web
from multidict import MultiDictProxy

from ikn_core.domain import Role
from ikn_core.settings import WebSettings
from ikn_store import web_sessions
from ikn_store.people import get_person
from ikn_store.web_sessions import WebSession
from web.ports import PORTS, Handler

log = logging.getLogger(__name__)

COOKIE = "ikn_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
SESSION = web.RequestKey("web_session", WebSession)
SESSION_ID = web.RequestKey("web_session_id", str)
SETTINGS = web.AppKey("web_settings", WebSettings)
PAGE_ROUTES = web.AppKey("web_routes", frozenset[web.AbstractRoute])  # pages, not assets
ALL_ROUTES = web.AppKey("web_all_routes", frozenset[web.AbstractRoute])  # and assets


def is_page(request: web.Request) -> bool:
    """Whether the request is for one of the pages (not the API, nor a static file)."""
    return request.match_info.route in request.app[PAGE_ROUTES]


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Finds the page's session (``request[SESSION]``) and refuses a forged write, or
    one whose form holds text PostgreSQL cannot store."""
    if not is_page(request):
        return await handler(request)
    session_id = request.cookies.get(COOKIE, "")
    found = await _find(request, session_id) if session_id else None
    if found is not None:
        request[SESSION] = found
        request[SESSION_ID] = session_id
    if request.method not in SAFE_METHODS:
        await _check_forgery(request, found)
        await _check_text(request)
    return await handler(request)


async def _find(request: web.Request, session_id: str) -> WebSession | None:
    ports = request.app[PORTS]
    idle = timedelta(seconds=request.app[SETTINGS].session_idle_s)
    async with ports.pool().acquire() as conn:
        return await web_sessions.find(conn, session_id, ports.now(), idle)


async def still_signed_in(request: web.Request, roles: frozenset[Role]) -> bool:
    """Whether the request's session is still live, its person in one of ``roles``: for
    a long-lived answer (an event stream) that outlives a sign-out or a timeout."""
    found = await _find(request, request[SESSION_ID])
    return found is not None and found.person is not None and found.person.role in roles


async def _check_forgery(request: web.Request, session: WebSession | None) -> None:
    origin = request.headers.get("Origin")
    if origin != own_origin(request):
        log.warning("refused %s %s from origin %r", request.method, request.path, origin)
        raise web.HTTPForbidden(reason="Cross-origin request refused")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in FORM_TYPES:
        sent = str((await _form(request)).get(CSRF_FIELD, ""))
    if session is None or not _token_matches(sent or "", session.csrf_token):
        raise web.HTTPForbidden(reason="Missing or wrong CSRF token")


async def _check_text(request: web.Request) -> None:
    """A form's text PostgreSQL cannot store (a NUL) is refused naming its field, as
    the API refuses it in a path, a query or a body, rather than as a 500 from the
    database wherever a page writes it."""
    if request.content_type not in FORM_TYPES:
        return
    for name, value in (await _form(request)).items():
        if isinstance(value, str) and "\x00" in value:
            raise web.HTTPBadRequest(reason=f"{name}: must not contain a NUL character")


async def _form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The form (kept by aiohttp for the handler); a file larger than the request limit
    is refused naming it (the error page's detail)."""
    try:
        return await request.post()
    except web.HTTPRequestEntityTooLarge:
        limit = request.client_max_size
        raise web.HTTPRequestEntityTooLarge(
            max_size=limit,
            actual_size=request.content_length or limit + 1,
            reason=f"file: larger than {limit // 1024} KiB",
        ) from None


def _token_matches(sent: str, token: str) -> bool:
    """The session's token, masked as the pages show it, or bare (a client that read it
    elsewhere: a bare token in a request gives nothing away)."""
    expected = token.encode()
    return hmac.compare_digest(unmask(sent).encode(), expected) or hmac.compare_digest(
        sent.encode(), expected
    )


# The token as a page shows it: a new random pad and the token XORed with it, so that no
# two responses carry the same bytes. Pages are gzipped (web.pwa) and echo what was typed
# into them; a secret repeated in every response would let an attacker who sees the
# compressed sizes guess it byte by byte (BREACH). Django masks its token the same way.
def mask(token: str) -> str:
    raw = token.encode()
    pad = secrets.token_bytes(len(raw))
    masked = pad + bytes(a ^ b for a, b in zip(pad, raw, strict=True))
    return base64.urlsafe_b64encode(masked).decode().rstrip("=")


def unmask(sent: str) -> str:
    """The token a masked value carries ("" when it is not one of ours)."""
    try:
        masked = base64.urlsafe_b64decode(sent + "=" * (-len(sent) % 4))
    except ValueError:
        return ""
    half = len(masked) // 2
    if not masked or len(masked) % 2:
        return ""
    pad, body = masked[:half], masked[half:]
    return bytes(a ^ b for a, b in zip(pad, body, strict=True)).decode(errors="replace")


def own_origin(request: web.Request) -> str:
    scheme = "https" if request.app[PORTS].over_tls(request) else "http"
    return f"{scheme}://{request.host}"


async def start(
    request: web.Request, person_id: str | None, id_token: str | None = None
) -> tuple[str, WebSession]:
    """A new session for ``person_id`` (None: a visitor), ending the one it replaces (and
    any that can no longer be used); its id, for ``set_cookie``. ``id_token``: the
    identity provider's that signed the person in (for signing out there)."""
    ports, settings = request.app[PORTS], request.app[SETTINGS]
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now, lasts = ports.now(), timedelta(seconds=settings.session_max_s)
    async with ports.pool().acquire() as conn, conn.transaction():
        if SESSION_ID in request:
            await web_sessions.end(conn, request[SESSION_ID])
        await web_sessions.purge(conn, now, timedelta(seconds=settings.session_idle_s))
        await web_sessions.create(
            conn, session_id, csrf, person_id, now=now, lasts=lasts, id_token=id_token
        )
        person = await get_person(conn, person_id) if person_id is not None else None
    return session_id, WebSession(csrf, now + lasts, person)


def set_cookie(request: web.Request, response: web.StreamResponse, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=request.app[SETTINGS].session_max_s,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.app[PORTS].over_tls(request),
    )


async def end(request: web.Request, response: web.StreamResponse) -> str | None:
    """Signs out: the session ends here and its cookie in the browser; the identity
    provider's ID token it was opened with, if any."""
    id_token = None
    if SESSION_ID in request:
        async with request.app[PORTS].pool().acquire() as conn:
            id_token = await web_sessions.end(conn, request[SESSION_ID])
    response.del_cookie(COOKIE, path="/")
    return id_token
