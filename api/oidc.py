"""OIDC bearer tokens: JWT access tokens from an identity provider (Keycloak).

When ``IKN_OIDC_ISSUER`` is set, a bearer token that looks like a JWT is checked
here instead of against ``api_tokens``: its signature with the provider's keys
(JWKS, fetched from ``IKN_OIDC_JWKS_URL`` or found by discovery, cached, fetched
again when a token names an unknown ``kid``), and ``exp``, ``nbf``, ``iss``,
``aud`` with a clock-skew leeway. The person is the claim ``IKN_OIDC_PERSON_CLAIM``
and must exist in ``people`` (``ikn import people``); the role is the highest of
ours that the token's roles map to (``IKN_OIDC_ROLE_MAP``), else the person's own.
The keys, discovery, checks and mapping are ``ikn_service.oidc``'s, which the staff
pages' sign-in uses too; this module adds what only access tokens need, and HTTP.

Exceptions::

    OidcError                 base of this module
     ├── TokenRejectedError   the token is not acceptable: 401
     └── KeysUnavailableError the provider's keys cannot be fetched: 503
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from api.problems import Problem
from api.state import POOL
from ikn_core.domain import Role
from ikn_core.settings import OidcSettings
from ikn_service.oidc import (
    RANK,
    JwksCache,
    KeysUnavailableError,
    OidcError,
    TokenRejectedError,
    claim,
    decode,
    header_of,
    mapped_role,
    person_id_of,
    signing_key,
)
from ikn_store.people import Person, get_person

__all__ = [
    "RANK",
    "Identity",
    "JwksCache",
    "KeysUnavailableError",
    "OidcError",
    "TokenRejectedError",
    "Verifier",
    "authenticate",
    "claim",
    "looks_like_jwt",
    "mapped_role",
    "setup",
]

_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# What an access token may say it is: a JWT header ``typ`` (RFC 9068 names at+jwt), and
# Keycloak's ``typ`` claim; an ID token (``ID``) or refresh token carrying our audience
# is not an access token.
_ACCESS_HEADER_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
_ACCESS_CLAIM_TYPES = frozenset({"bearer"})


@dataclass(frozen=True, slots=True)
class Identity:
    person: Person
    role: Role


def looks_like_jwt(token: str) -> bool:
    return _JWT.fullmatch(token) is not None


class Verifier:
    """Checks a JWT access token and finds the person it speaks for."""

    def __init__(self, settings: OidcSettings, keys: JwksCache) -> None:
        self.settings = settings
        self.keys = keys

    async def claims(self, token: str) -> dict[str, Any]:
        header = header_of(token)
        typ = header.get("typ")
        if typ is not None and str(typ).lower() not in _ACCESS_HEADER_TYPES:
            raise TokenRejectedError(f"a {typ!r} token is not an access token")
        key, alg = await signing_key(self.settings, self.keys, header)
        claims = decode(self.settings, token, key, alg, self.settings.audience)
        self._check_kind(claims)
        return claims

    def _check_kind(self, claims: dict[str, Any]) -> None:
        """An access token for one of the clients we accept, not an ID token that also
        names our audience."""
        typ = claims.get("typ")
        if typ is not None and str(typ).lower() not in _ACCESS_CLAIM_TYPES:
            raise TokenRejectedError(f"a {typ!r} token is not an access token")
        allowed = self.settings.allowed_clients
        if allowed and claims.get("azp") not in allowed:
            raise TokenRejectedError("the token was issued to a client not accepted here")

    async def identify(self, conn: asyncpg.Connection, claims: dict[str, Any]) -> Identity:
        """The person (and role) that verified ``claims`` speak for."""
        person_id = person_id_of(self.settings, claims)
        person = await get_person(conn, person_id)
        if person is None:
            raise Problem(
                403,
                "not-provisioned",
                "This person is not known here",
                f"{person_id!r} is not in people; import them with ikn import people",
            )
        return Identity(person, mapped_role(self.settings, claims) or person.role)


OIDC = web.AppKey("oidc_verifier", Verifier)


def setup(app: web.Application, settings: OidcSettings | None) -> None:
    """Accept OIDC bearer tokens in ``app`` when ``settings`` are given."""
    if settings is None:
        return

    async def verifier(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=settings.http_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            app[OIDC] = Verifier(settings, JwksCache(settings, session))
            yield

    app.cleanup_ctx.append(verifier)


async def authenticate(request: web.Request, token: str) -> Identity | None:
    """The identity of an OIDC token; None when OIDC is off or ``token`` is no JWT."""
    verifier = request.app.get(OIDC)
    if verifier is None or not looks_like_jwt(token):
        return None
    try:
        claims = await verifier.claims(token)  # no pooled connection held while fetching keys
        async with request.app[POOL].acquire() as conn:
            return await verifier.identify(conn, claims)
    except TokenRejectedError as exc:
        raise Problem(
            401, "unauthenticated", "The bearer token is not accepted", exc.reason
        ) from exc
    except KeysUnavailableError as exc:
        raise Problem(
            503, "identity-provider-unavailable", "Cannot check the token now", exc.reason
        ) from exc
