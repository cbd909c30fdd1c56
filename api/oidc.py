"""OIDC bearer tokens: JWT access tokens from an identity provider (Keycloak).

When ``IKN_OIDC_ISSUER`` is set, a bearer token that looks like a JWT is checked
here instead of against ``api_tokens``: its signature with the provider's keys
(JWKS, fetched from ``IKN_OIDC_JWKS_URL`` or found by discovery, cached, fetched
again when a token names an unknown ``kid``), and ``exp``, ``nbf``, ``iss``,
``aud`` with a clock-skew leeway. The person is the claim ``IKN_OIDC_PERSON_CLAIM``
and must exist in ``people`` (``ikn import people``); the role is the highest of
ours that the token's roles map to (``IKN_OIDC_ROLE_MAP``), else the person's own.

Exceptions::

    OidcError                 base of this module
     ├── TokenRejectedError   the token is not acceptable: 401
     └── KeysUnavailableError the provider's keys cannot be fetched: 503
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import jwt
import orjson
from aiohttp import web

from api.problems import Problem
from api.state import POOL
from ikn_core.contract.identifiers import PERSON_ID
from ikn_core.domain import Role
from ikn_core.settings import OidcSettings
from ikn_store.people import Person, get_person

log = logging.getLogger(__name__)

_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
RANK = (Role.EMPLOYEE, Role.DELEGATE, Role.SUPERVISOR, Role.FACILITY_MANAGER, Role.ADMIN)
MAX_JWKS_BYTES = 1 << 20
RETRY_FAILED_FETCH_S = 5.0  # after a failed fetch, the next one waits this long
# The JWK key type each accepted algorithm verifies with.
_KTY = {
    **{
        f"{family}{bits}": kty
        for family, kty in (("RS", "RSA"), ("PS", "RSA"), ("ES", "EC"))
        for bits in (256, 384, 512)
    },
    "EdDSA": "OKP",
}
# What an access token may say it is: a JWT header ``typ`` (RFC 9068 names at+jwt), and
# Keycloak's ``typ`` claim; an ID token (``ID``) or refresh token carrying our audience
# is not an access token.
_ACCESS_HEADER_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
_ACCESS_CLAIM_TYPES = frozenset({"bearer"})


class OidcError(Exception):
    """Base of this module's errors; ``reason`` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenRejectedError(OidcError):
    pass


class KeysUnavailableError(OidcError):
    pass


@dataclass(frozen=True, slots=True)
class Identity:
    person: Person
    role: Role


def looks_like_jwt(token: str) -> bool:
    return _JWT.fullmatch(token) is not None


def claim(claims: dict[str, Any], dotted: str) -> Any:
    """``realm_access.roles`` → ``claims["realm_access"]["roles"]``; None when absent."""
    value: Any = claims
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def mapped_role(settings: OidcSettings, claims: dict[str, Any]) -> Role | None:
    """The highest of our roles that the token's roles grant; None when none does."""
    theirs = claim(claims, settings.roles_claim)
    if not isinstance(theirs, list):
        return None
    granted = {Role(ours) for name, ours in settings.role_map if name in theirs}
    return max(granted, key=RANK.index, default=None)


class JwksCache:
    """The provider's signing keys by ``kid``, fetched again (at most every
    ``jwks_min_refresh_s``) when a token names a key it does not hold.

    One fetch at a time; tokens that queued behind a fetch do not fetch again. After a
    failed fetch, tokens naming an unknown key are refused at once (503) for
    ``RETRY_FAILED_FETCH_S`` (or ``jwks_min_refresh_s`` if shorter), instead of each
    waiting for its own timeout while the provider is down; keys already held keep
    working meanwhile."""

    def __init__(
        self,
        settings: OidcSettings,
        session: aiohttp.ClientSession,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.session = session
        self.clock = clock
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched_at: float | None = None
        self.fetches = 0
        self._jwks_url = settings.jwks_url
        self._lock = asyncio.Lock()
        self._finished = 0  # fetches that have ended, well or not
        self._failed_at: float | None = None  # when the last fetch failed, if it did
        self._failure = ""

    async def key(self, kid: str) -> jwt.PyJWK:
        if kid not in self.keys:
            self._fail_fast()
            finished = self._finished  # fetches ended before this token queued
            async with self._lock:
                if kid not in self.keys and finished == self._finished:
                    if self._may_refresh():
                        await self._refresh()
                else:
                    self._fail_fast()  # the fetch this token waited for failed
        if kid not in self.keys:
            raise TokenRejectedError(f"unknown signing key {kid!r}")
        return self.keys[kid]

    def _fail_fast(self) -> None:
        failed = self._failed_at
        retry_s = min(self.settings.jwks_min_refresh_s, RETRY_FAILED_FETCH_S)
        if failed is not None and self.clock() - failed < retry_s:
            raise KeysUnavailableError(self._failure)

    def _may_refresh(self) -> bool:
        if self.fetched_at is None:
            return True
        return self.clock() - self.fetched_at >= self.settings.jwks_min_refresh_s

    async def _refresh(self) -> None:
        try:
            data = await self._get_json(await self._url())
            self.keys = self._signing_keys(data)
        except KeysUnavailableError as exc:
            self._failed_at, self._failure = self.clock(), exc.reason
            raise
        finally:
            self._finished += 1
        self._failed_at = None
        self.fetched_at = self.clock()
        self.fetches += 1
        log.info("OIDC: %d signing keys fetched", len(self.keys))

    def _signing_keys(self, data: dict[str, Any]) -> dict[str, jwt.PyJWK]:
        """The keys of ``data`` (a JWKS) that may verify our algorithms' signatures:
        ``use`` absent or ``sig`` (not ``enc``), and a ``kty`` one of them takes."""
        ktys = {_KTY[alg] for alg in self.settings.algorithms}
        listed = data.get("keys")
        usable = [
            k
            for k in (listed if isinstance(listed, list) else [])
            if isinstance(k, dict) and k.get("use", "sig") == "sig" and k.get("kty") in ktys
        ]
        try:
            keyset = jwt.PyJWKSet.from_dict({"keys": usable})
        except jwt.PyJWTError as exc:
            raise KeysUnavailableError(f"the provider's JWKS has no usable key: {exc}") from exc
        return {k.key_id: k for k in keyset.keys if k.key_id}

    async def _url(self) -> str:
        if not self._jwks_url:
            base = self.settings.issuer.rstrip("/")
            config = await self._get_json(base + "/.well-known/openid-configuration")
            if config.get("issuer") != self.settings.issuer:
                raise KeysUnavailableError("discovery names another issuer")
            uri = config.get("jwks_uri")
            if not isinstance(uri, str):
                raise KeysUnavailableError("discovery gives no jwks_uri")
            self._jwks_url = uri
        return self._jwks_url

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self.session.get(url) as response:
                response.raise_for_status()
                body = await _read_whole(response, MAX_JWKS_BYTES)
            document = orjson.loads(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("OIDC: cannot fetch %s: %r", url, exc)
            raise KeysUnavailableError("the identity provider's keys cannot be fetched") from exc
        if not isinstance(document, dict):
            raise KeysUnavailableError(f"{url} did not answer a JSON object")
        return document


async def _read_whole(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, however the server chunks it; more than ``limit`` bytes: an error
    (``StreamReader.read(n)`` returns what has arrived so far, which may be a part)."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise ValueError(f"the document is larger than {limit} bytes")
    return bytes(body)


class Verifier:
    """Checks a JWT access token and finds the person it speaks for."""

    def __init__(self, settings: OidcSettings, keys: JwksCache) -> None:
        self.settings = settings
        self.keys = keys

    async def claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejectedError("not a well-formed JWT") from exc
        alg, kid = header.get("alg"), header.get("kid")
        typ = header.get("typ")
        if typ is not None and str(typ).lower() not in _ACCESS_HEADER_TYPES:
            raise TokenRejectedError(f"a {typ!r} token is not an access token")
        if alg not in self.settings.algorithms:
            raise TokenRejectedError(f"algorithm {alg!r} is not accepted")
        if not isinstance(kid, str):
            raise TokenRejectedError("the token names no signing key (kid)")
        key = await self.keys.key(kid)
        claims = self._decode(token, key, alg)
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

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejectedError("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenRejectedError("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRejectedError("the token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenRejectedError("the token is from another issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenRejectedError("the token's signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise TokenRejectedError(f"the token is not acceptable: {exc}") from exc

    async def identify(self, conn: asyncpg.Connection, claims: dict[str, Any]) -> Identity:
        """The person (and role) that verified ``claims`` speak for."""
        person_id = claim(claims, self.settings.person_claim)
        if not isinstance(person_id, str) or not PERSON_ID.fullmatch(person_id):
            raise TokenRejectedError(f"claim {self.settings.person_claim} is not a person id")
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
