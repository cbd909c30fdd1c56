"""The pages' client of the identity provider (OIDC authorization code with PKCE, RFC
7636 S256): the address to send a browser to, the code exchanged for tokens, the ID
token checked, and the address that signs out there too.

The provider's discovery document, keys and the checks of a token's signature, ``iss``,
``aud`` and ``exp`` are the API's (``ikn_service.oidc``); the ID token's ``aud`` is our
client (``IKN_OIDC_CLIENT_ID``) and its ``nonce`` the one this sign-in sent. Codes,
tokens and the client secret are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from aiohttp import web

from ikn_core.settings import OidcSettings
from ikn_service.oidc import (
    JwksCache,
    KeysUnavailableError,
    OidcError,
    TokenRejectedError,
    decode,
    header_of,
    read_whole,
    signing_key,
)
from ikn_store.web_sessions import PendingSignIn

log = logging.getLogger(__name__)

SCOPE = "openid profile"
MAX_TOKEN_RESPONSE_BYTES = 1 << 20


class CodeRefusedError(OidcError):
    """The token endpoint refused the code (400 ``invalid_grant``: used already, expired,
    the PKCE verifier wrong)."""


@dataclass(frozen=True, slots=True)
class OidcClient:
    settings: OidcSettings
    keys: JwksCache  # discovery and signing keys
    http: aiohttp.ClientSession  # with IKN_OIDC_HTTP_TIMEOUT_S

    @property
    def provider_name(self) -> str:
        """The realm's name (Keycloak's ``.../realms/<name>``), else the issuer's host."""
        issuer = self.settings.issuer.rstrip("/")
        head, _, last = issuer.rpartition("/")
        return last if head.endswith("/realms") else issuer.split("/")[2]

    async def authorization_url(self, pending: PendingSignIn, redirect_uri: str) -> str:
        """Where the browser goes to sign in (``KeysUnavailableError``: no discovery)."""
        endpoint = await self.keys.endpoint("authorization_endpoint")
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": challenge(pending.verifier),
            "code_challenge_method": "S256",
        }
        return _with_query(endpoint, query)

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> str:
        """The ID token the token endpoint gives for ``code``: ``CodeRefusedError`` when
        it refuses (4xx), ``KeysUnavailableError`` when it cannot be reached or answers
        nonsense."""
        endpoint = await self.keys.endpoint("token_endpoint")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.settings.client_id,
            "code_verifier": verifier,
        }
        if self.settings.client_secret:
            form["client_secret"] = self.settings.client_secret  # client_secret_post
        answer = await self._post(endpoint, form)
        token = answer.get("id_token")
        if not isinstance(token, str):
            raise KeysUnavailableError("the token endpoint gave no id_token")
        return token

    async def _post(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        try:
            async with self.http.post(url, data=form) as response:
                body = await read_whole(response, MAX_TOKEN_RESPONSE_BYTES)
                status = response.status
            answer = orjson.loads(body) if body else {}
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("OIDC sign-in: the token endpoint cannot be used: %s", type(exc).__name__)
            raise KeysUnavailableError("the token endpoint cannot be reached") from exc
        error = answer.get("error") if isinstance(answer, dict) else None
        if status == 400 and error == "invalid_grant":  # the code, not our client
            raise CodeRefusedError(str(error))
        if status != 200 or not isinstance(answer, dict):
            # a wrong client secret (401 unauthorized_client), the provider away (5xx)
            raise KeysUnavailableError(f"the token endpoint answered {status} {error!r}")
        return answer

    async def id_claims(self, token: str, nonce: str) -> dict[str, Any]:
        """The claims of the ID token, checked: signature, ``iss``, ``aud`` (our client),
        ``azp`` when present (our client too), ``exp`` and ``nonce``
        (``TokenRejectedError``)."""
        key, alg = await signing_key(self.settings, self.keys, header_of(token))
        claims = decode(self.settings, token, key, alg, self.settings.client_id)
        if claims.get("azp", self.settings.client_id) != self.settings.client_id:
            raise TokenRejectedError("the ID token was issued to another client (azp)")
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, nonce):
            raise TokenRejectedError("the ID token's nonce is not this sign-in's")
        return claims

    async def end_session_url(self, id_token: str, post_logout_redirect_uri: str) -> str:
        """Where the browser signs out at the provider (``KeysUnavailableError``: none)."""
        endpoint = await self.keys.endpoint("end_session_endpoint")
        query = {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "client_id": self.settings.client_id,
        }
        return _with_query(endpoint, query)


def new_sign_in(next_page: str, now: datetime) -> PendingSignIn:
    """A sign-in's fresh ``state``, ``nonce`` and PKCE verifier (256 random bits each)."""
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    return PendingSignIn(state, nonce, verifier, next_page, now)


def challenge(verifier: str) -> str:
    """PKCE S256: BASE64URL(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_query(endpoint: str, query: dict[str, str]) -> str:
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query)


CLIENT = web.AppKey("web_oidc_client", OidcClient)


def setup(
    app: web.Application, settings: OidcSettings | None, keys: Callable[[], JwksCache]
) -> None:
    """The pages sign in with the provider of ``settings`` (None: they do not), through
    the signing keys and HTTP session that ``keys`` gives once the API has started."""
    if settings is None:
        return

    async def client(app: web.Application) -> AsyncIterator[None]:
        jwks = keys()
        app[CLIENT] = OidcClient(settings, jwks, jwks.session)
        yield

    app.cleanup_ctx.append(client)
