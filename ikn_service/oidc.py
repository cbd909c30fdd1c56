"""OpenID Connect against the identity provider (Keycloak): what the API's bearer tokens
and the pages' sign-in share, so that both map a person the same way.

- ``JwksCache``: the provider's discovery document (``endpoint(name)``: its
  authorization, token and end-session endpoints) and signing keys by ``kid``.
- ``header_of``, ``signing_key``, ``decode``: a JWT's signature, ``exp``, ``nbf``,
  ``iss`` and ``aud`` checked with a clock-skew leeway.
- ``claim``, ``mapped_role``, ``person_id_of``: the person is the claim
  ``IKN_OIDC_PERSON_CLAIM``; the role the highest of ours that the token's roles map to
  (``IKN_OIDC_ROLE_MAP``).

Exceptions::

    OidcError                 base of this module
     ├── TokenRejectedError   the token is not acceptable
     └── KeysUnavailableError the provider's keys (or its discovery) cannot be fetched
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import orjson

from ikn_core.contract.identifiers import PERSON_ID
from ikn_core.domain import Role
from ikn_core.settings import OidcSettings

log = logging.getLogger(__name__)

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


class OidcError(Exception):
    """Base of this module's errors; ``reason`` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenRejectedError(OidcError):
    pass


class KeysUnavailableError(OidcError):
    pass


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


def person_id_of(settings: OidcSettings, claims: dict[str, Any]) -> str:
    """The person id verified ``claims`` name (``IKN_OIDC_PERSON_CLAIM``), not yet looked up."""
    person_id = claim(claims, settings.person_claim)
    if not isinstance(person_id, str) or not PERSON_ID.fullmatch(person_id):
        raise TokenRejectedError(f"claim {settings.person_claim} is not a person id")
    return person_id


class JwksCache:
    """The provider's signing keys by ``kid``, fetched again (at most every
    ``jwks_min_refresh_s``) when a token names a key it does not hold; and its discovery
    document, fetched once.

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
        self._discovery: dict[str, Any] | None = None
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

    async def endpoint(self, name: str) -> str:
        """The discovery document's ``name`` (``authorization_endpoint``,
        ``token_endpoint``, ``end_session_endpoint``)."""
        uri = (await self.discovery()).get(name)
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise KeysUnavailableError(f"discovery gives no {name}")
        return uri

    async def discovery(self) -> dict[str, Any]:
        """``<issuer>/.well-known/openid-configuration``, fetched once (again after a
        failure), for our issuer only."""
        if self._discovery is None:
            base = self.settings.issuer.rstrip("/")
            config = await self._get_json(base + "/.well-known/openid-configuration")
            if config.get("issuer") != self.settings.issuer:
                raise KeysUnavailableError("discovery names another issuer")
            self._discovery = config
        return self._discovery

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
            uri = (await self.discovery()).get("jwks_uri")
            if not isinstance(uri, str):
                raise KeysUnavailableError("discovery gives no jwks_uri")
            self._jwks_url = uri
        return self._jwks_url

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self.session.get(url) as response:
                response.raise_for_status()
                body = await read_whole(response, MAX_JWKS_BYTES)
            document = orjson.loads(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("OIDC: cannot fetch %s: %r", url, exc)
            raise KeysUnavailableError("the identity provider's keys cannot be fetched") from exc
        if not isinstance(document, dict):
            raise KeysUnavailableError(f"{url} did not answer a JSON object")
        return document


async def read_whole(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, however the server chunks it; more than ``limit`` bytes: an error
    (``StreamReader.read(n)`` returns what has arrived so far, which may be a part)."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise ValueError(f"the document is larger than {limit} bytes")
    return bytes(body)


def header_of(token: str) -> dict[str, Any]:
    """The JWT's header, unverified."""
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenRejectedError("not a well-formed JWT") from exc


async def signing_key(
    settings: OidcSettings, keys: JwksCache, header: dict[str, Any]
) -> tuple[jwt.PyJWK, str]:
    """The key (and algorithm) ``header`` names, if the algorithm is one we accept."""
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in settings.algorithms:
        raise TokenRejectedError(f"algorithm {alg!r} is not accepted")
    if not isinstance(kid, str):
        raise TokenRejectedError("the token names no signing key (kid)")
    return await keys.key(kid), alg


def decode(
    settings: OidcSettings, token: str, key: jwt.PyJWK, alg: str, audience: str
) -> dict[str, Any]:
    """The claims of ``token``, signed by ``key``, from our issuer, for ``audience``, not
    expired (nor not yet valid), with the leeway ``IKN_OIDC_LEEWAY_S``."""
    try:
        return jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=audience,
            issuer=settings.issuer,
            leeway=settings.leeway_s,
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
