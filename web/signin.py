"""Signing in with the identity provider (``IKN_WEB_OIDC_LOGIN``): ``/login/oidc`` starts
an authorization-code sign-in with PKCE and sends the browser to the provider;
``/login/callback`` takes its answer, checks it and opens the person's session.

The person is found as the API finds the person of an access token
(``ikn_service.oidc``: the claim ``IKN_OIDC_PERSON_CLAIM``, roles by
``IKN_OIDC_ROLE_MAP``). A page session holds the person's role in ``people``, so a
provider whose roles grant another one is refused rather than believed halfway. Every
refusal is a page in the person's language with the reason (400, 403, 502), logged
without codes or tokens.
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta
from typing import Any

from aiohttp import web

from ikn_service.oidc import KeysUnavailableError, TokenRejectedError, mapped_role, person_id_of
from ikn_store import web_sessions
from ikn_store.people import Person, get_person
from web import i18n, sessions
from web.oidc_client import CLIENT, CodeRefusedError, OidcClient, new_sign_in
from web.pages import page_of_ours, render
from web.ports import PORTS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
CALLBACK = "/login/callback"
SIGN_IN_LASTS = timedelta(minutes=10)  # from /login/oidc to the callback, at most
# Why a sign-in was refused: (status, what the page says), by kind.
REFUSALS = {
    "state": (
        400,
        i18n.gettext_noop(
            "This sign-in does not belong to this browser: it has expired, was used "
            "already, or was started elsewhere. Start again."
        ),
    ),
    "provider": (
        400,
        i18n.gettext_noop("The sign-in was cancelled or refused at the identity provider."),
    ),
    "code": (
        400,
        i18n.gettext_noop(
            "The identity provider did not accept this sign-in (it may have been used "
            "already). Start again."
        ),
    ),
    "token": (
        403,
        i18n.gettext_noop(
            "The identity provider's answer could not be verified, so you are not signed in. "
            "If this happens again, tell your administrator."
        ),
    ),
    "unknown": (
        403,
        i18n.gettext_noop(
            "Your account is not known to IKN Workspace yet. Ask your administrator to add you."
        ),
    ),
    "role": (
        403,
        i18n.gettext_noop(
            "Your role at the identity provider is not your role here. Ask your "
            "administrator to correct one of them."
        ),
    ),
    "unavailable": (
        502,
        i18n.gettext_noop(
            "The identity provider cannot be reached at the moment. Try again in a few minutes."
        ),
    ),
}


class SignInRefusedError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind  # a key of REFUSALS
        self.detail = detail  # for the log: never a code or token


def client_of(request: web.Request) -> OidcClient:
    client = request.app.get(CLIENT)
    if client is None:
        raise web.HTTPNotFound()
    return client


def callback_uri(request: web.Request) -> str:
    return sessions.own_origin(request) + CALLBACK


@routes.get("/login/oidc")
async def begin(request: web.Request) -> web.StreamResponse:
    """Starts a sign-in in the visitor's session and sends the browser to the provider."""
    client = client_of(request)
    back = page_of_ours(request.query.get("next", "/"))
    session = request.get(sessions.SESSION)
    if session is not None and session.person is not None:
        raise web.HTTPSeeOther(back)
    new_id = None
    if session is None:
        new_id, _ = await sessions.start(request, None)
    ports = request.app[PORTS]
    pending = new_sign_in(back, ports.now())
    async with ports.pool().acquire() as conn:
        await web_sessions.begin_sign_in(conn, new_id or request[sessions.SESSION_ID], pending)
    try:
        target = await client.authorization_url(pending, callback_uri(request))
    except KeysUnavailableError as exc:
        return _refused(request, SignInRefusedError("unavailable", exc.reason))
    response = web.HTTPSeeOther("/")
    response.headers["Location"] = target
    if new_id is not None:
        sessions.set_cookie(request, response, new_id)
    raise response


@routes.get(CALLBACK)
async def callback(request: web.Request) -> web.StreamResponse:
    """The provider's answer: on success a new session for the person, and their page."""
    client = client_of(request)
    try:
        back, person, id_token = await _signed_in(request, client)
    except SignInRefusedError as exc:
        return _refused(request, exc)
    new_id, _ = await sessions.start(request, person.id, id_token)  # a new id: rotated
    log.info("signed in with the identity provider: %s", person.id)
    response = web.HTTPSeeOther(back)
    sessions.set_cookie(request, response, new_id)
    raise response


async def _signed_in(request: web.Request, client: OidcClient) -> tuple[str, Person, str]:
    """The page to return to, the person and the ID token of the provider's answer."""
    ports, query = request.app[PORTS], request.query
    pending = None
    if sessions.SESSION_ID in request:
        async with ports.pool().acquire() as conn:  # taken: each sign-in answers once
            pending = await web_sessions.take_sign_in(conn, request[sessions.SESSION_ID])
    if pending is None or not hmac.compare_digest(query.get("state", ""), pending.state):
        raise SignInRefusedError("state", "no sign-in of this session has that state")
    if ports.now() - pending.started_at > SIGN_IN_LASTS:
        raise SignInRefusedError("state", "the sign-in was started too long ago")
    if "error" in query or "code" not in query:
        raise SignInRefusedError("provider", f"the provider answered {query.get('error')!r}")
    try:
        id_token = await client.exchange(query["code"], pending.verifier, callback_uri(request))
        claims = await client.id_claims(id_token, pending.nonce)
    except CodeRefusedError as exc:
        raise SignInRefusedError("code", f"the token endpoint answered {exc}") from exc
    except TokenRejectedError as exc:
        raise SignInRefusedError("token", exc.reason) from exc
    except KeysUnavailableError as exc:
        raise SignInRefusedError("unavailable", exc.reason) from exc
    person = await _person(request, client, claims)
    role = mapped_role(client.settings, claims)
    if role is not None and role != person.role:
        raise SignInRefusedError("role", f"{person.id!r}: the provider grants {role}")
    return page_of_ours(pending.next), person, id_token


async def _person(request: web.Request, client: OidcClient, claims: dict[str, Any]) -> Person:
    """The person of verified ``claims``, as the API finds an access token's. A refusal
    names the claims the token has (names only: which one holds the NIP, when setting
    up a realm; docs/integrations.md)."""
    names = f"the ID token's claims: {', '.join(sorted(claims))}"
    try:
        person_id = person_id_of(client.settings, claims)
    except TokenRejectedError as exc:
        raise SignInRefusedError("unknown", f"{exc.reason} ({names})") from exc
    async with request.app[PORTS].pool().acquire() as conn:
        person = await get_person(conn, person_id)
    if person is None:
        raise SignInRefusedError("unknown", f"{person_id!r} is not in people ({names})")
    return person


def _refused(request: web.Request, refusal: SignInRefusedError) -> web.Response:
    status, reason = REFUSALS[refusal.kind]
    log.warning("OIDC sign-in refused (%s): %s", refusal.kind, refusal.detail)
    return render(request, "signin_refused.html", reason=reason, status=status)
