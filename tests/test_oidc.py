"""OIDC bearer tokens against a real local identity provider's HTTP endpoints (discovery and
JWKS served by aiohttp, keys generated here) and the real API on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import jwt
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from api.app import make_app
from ikn_core.domain import Role
from ikn_core.errors import SettingsError
from ikn_core.settings import ApiSettings
from ikn_store.people import Person, upsert_people
from ikn_store.tokens import create_token
from tests.fake_keycloak import rsa_key
from tests.helpers import api_settings, seed

AUDIENCE = "ikn-api"
PROBLEM = "application/problem+json"


def _jwk(key: PrivateKeyTypes, kid: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        alg = "RS256"
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        alg = "ES256"
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


@dataclass
class Provider:
    """A local identity provider: discovery + JWKS over HTTP, counting JWKS fetches."""

    keys: dict[str, PrivateKeyTypes] = field(default_factory=dict)
    issuer: str = ""
    jwks_fetches: int = 0
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)  # listed after ours
    chunk_delay_s: float = 0.0  # > 0: the JWKS is sent in 100-byte chunks this far apart
    hang_s: float = 0.0  # > 0: the JWKS answer waits this long first

    def app(self) -> web.Application:
        async def discovery(request: web.Request) -> web.Response:
            return web.json_response({"issuer": self.issuer, "jwks_uri": self.issuer + "/certs"})

        async def certs(request: web.Request) -> web.StreamResponse:
            self.jwks_fetches += 1
            await asyncio.sleep(self.hang_s)
            keys = [_jwk(k, kid) for kid, k in self.keys.items()] + self.extra_jwks
            if not self.chunk_delay_s:
                return web.json_response({"keys": keys})
            body = orjson.dumps({"keys": keys})
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(body), 100):
                await response.write(body[start : start + 100])
                await asyncio.sleep(self.chunk_delay_s)
            await response.write_eof()
            return response

        app = web.Application()
        app.router.add_get("/realms/ikn/.well-known/openid-configuration", discovery)
        app.router.add_get("/realms/ikn/certs", certs)
        return app

    def token(
        self,
        sub: str = "ani",
        *,
        kid: str = "rsa-1",
        key: PrivateKeyTypes | None = None,
        roles: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "exp": now + 300,
            "iat": now,
            "nbf": now,
            "sub": sub,
            "typ": "Bearer",
            "resource_access": {AUDIENCE: {"roles": list(roles)}},
            **claims,
        }
        signer = key if key is not None else self.keys[kid]
        alg = "RS256" if isinstance(signer, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(body, signer, algorithm=alg, headers={"kid": kid})  # type: ignore[arg-type]


@dataclass
class World:
    provider: Provider
    client: TestClient[web.Request, web.Application]
    database_url: str

    async def get(self, path: str, token: str) -> Any:
        return await self.client.get(path, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def provider() -> Provider:
    return Provider(keys={"rsa-1": rsa_key(), "ec-1": ec.generate_private_key(ec.SECP256R1())})


@pytest.fixture
def oidc_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The world's OIDC settings beyond issuer, audience and database; a test gives its
    own through indirect parametrisation."""
    given: dict[str, str] | None = getattr(request, "param", None)
    if given is not None:
        return given
    return {
        "IKN_OIDC_ROLE_MAP": "ikn-fm=facility_manager,ikn-admin=admin",
        "IKN_OIDC_LEEWAY_S": "30",
        "IKN_OIDC_JWKS_MIN_REFRESH_S": "0",
    }


@pytest.fixture
async def world(
    database_url: str, provider: Provider, oidc_env: dict[str, str]
) -> AsyncIterator[World]:
    idp = TestServer(provider.app(), host="127.0.0.1")
    await idp.start_server()
    provider.issuer = str(idp.make_url("/realms/ikn"))
    await seed(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await upsert_people(
            conn,
            [
                Person("ani", "Ani", "Kemenkeu", "Anggaran", Role.EMPLOYEE),
                Person("budi", "Budi", "Kemenkeu", "Anggaran", Role.FACILITY_MANAGER),
            ],
        )
    finally:
        await conn.close()
    env = {
        "IKN_DATABASE_URL": database_url,
        "IKN_OIDC_ISSUER": provider.issuer,
        "IKN_OIDC_AUDIENCE": AUDIENCE,
        **oidc_env,
    }
    try:
        async with TestClient(TestServer(make_app(api_settings(env)))) as client:
            yield World(provider, client, database_url)
    finally:
        await idp.close()


async def _refused(response: Any, status: int, kind: str, detail: str = "") -> None:
    assert response.status == status
    assert response.content_type == PROBLEM
    body = await response.json()
    assert body["type"].endswith("/" + kind)
    assert detail in body.get("detail", "")


async def test_a_valid_token_acts_for_its_person(world: World) -> None:
    for kid in ("rsa-1", "ec-1"):  # RS256 and ES256
        response = await world.get("/api/v1/bookings", world.provider.token("ani", kid=kid))
        assert response.status == 200
        assert (await response.json())["person"] == "ani"
    assert world.provider.jwks_fetches == 1  # cached after discovery and one fetch


async def test_roles_come_from_the_mapped_claim_else_from_the_person(world: World) -> None:
    devices = "/api/v1/devices"
    plain = world.provider.token("ani")
    await _refused(await world.get(devices, plain), 403, "forbidden")
    granted = world.provider.token("ani", roles=("offline_access", "ikn-fm"))
    assert (await world.get(devices, granted)).status == 200
    # budi holds no IdP role, but is a facility manager in people
    assert (await world.get(devices, world.provider.token("budi"))).status == 200
    admin_only = "/api/v1/devices/desk-d1"
    response = await world.client.patch(
        admin_only,
        json={"enabled": False},
        headers={"Authorization": f"Bearer {world.provider.token('ani', roles=('ikn-admin',))}"},
    )
    assert response.status == 200


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        # times are seconds from when the test runs, not from collection (minutes earlier)
        ({"exp": -120}, "expired"),
        ({"nbf": +120}, "not valid yet"),
        ({"aud": "another-app"}, "another audience"),
        ({"iss": "https://keycloak.example/realms/other"}, "another issuer"),
    ],
)
async def test_bad_claims_are_refused(world: World, claims: dict[str, Any], detail: str) -> None:
    now = int(time.time())
    claims = {k: now + v if k in ("exp", "nbf") else v for k, v in claims.items()}
    response = await world.get("/api/v1/bookings", world.provider.token("ani", **claims))
    await _refused(response, 401, "unauthenticated", detail)
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_clock_skew_within_the_leeway_is_accepted(world: World) -> None:
    now = int(time.time())
    token = world.provider.token("ani", exp=now - 10, nbf=now + 10)  # leeway 30 s
    assert (await world.get("/api/v1/bookings", token)).status == 200


async def test_a_forged_signature_is_refused(world: World) -> None:
    forged = world.provider.token("ani", kid="rsa-1", key=rsa_key())  # right kid, wrong key
    await _refused(await world.get("/api/v1/bookings", forged), 401, "unauthenticated", "signature")
    parts = world.provider.token("ani").split(".")
    tampered = ".".join([parts[0], world.provider.token("budi").split(".")[1], parts[2]])
    await _refused(await world.get("/api/v1/bookings", tampered), 401, "unauthenticated")


async def test_unknown_kid_refetches_the_keys_once_then_refuses(world: World) -> None:
    assert (await world.get("/api/v1/bookings", world.provider.token("ani"))).status == 200
    stranger = world.provider.token("ani", kid="nobody", key=rsa_key())
    response = await world.get("/api/v1/bookings", stranger)
    await _refused(response, 401, "unauthenticated", "unknown signing key")
    assert world.provider.jwks_fetches == 2  # looked again before refusing


async def test_a_rotated_key_is_picked_up(world: World) -> None:
    assert (await world.get("/api/v1/bookings", world.provider.token("ani"))).status == 200
    world.provider.keys["rsa-2"] = rsa_key()
    response = await world.get("/api/v1/bookings", world.provider.token("ani", kid="rsa-2"))
    assert response.status == 200


@pytest.mark.parametrize("alg", ["HS256", "none"])
async def test_symmetric_and_unsigned_tokens_are_refused(world: World, alg: str) -> None:
    body = {"iss": world.provider.issuer, "aud": AUDIENCE, "exp": int(time.time()) + 60}
    body["sub"] = "ani"
    key = "a-guessable-shared-secret-of-32-bytes!" if alg == "HS256" else None
    token = jwt.encode(body, key, algorithm=alg, headers={"kid": "rsa-1"})  # type: ignore[arg-type]
    await _refused(await world.get("/api/v1/bookings", token), 401, "unauthenticated", "algorithm")


async def test_a_person_not_in_people_is_not_provisioned(world: World) -> None:
    response = await world.get("/api/v1/bookings", world.provider.token("citra"))
    await _refused(response, 403, "not-provisioned", "citra")


async def test_api_tokens_still_work_with_oidc_on(world: World) -> None:
    conn = await asyncpg.connect(world.database_url)
    try:
        token = await create_token(conn, "ops", "facility_manager")
    finally:
        await conn.close()
    assert (await world.get("/api/v1/devices", token)).status == 200


async def test_an_unreachable_provider_is_a_503_not_a_500(database_url: str) -> None:
    with socket_closed() as port:
        env = {
            "IKN_DATABASE_URL": database_url,
            "IKN_OIDC_ISSUER": f"http://127.0.0.1:{port}/realms/ikn",
            "IKN_OIDC_AUDIENCE": AUDIENCE,
            "IKN_OIDC_HTTP_TIMEOUT_S": "2",
        }
        provider = Provider(keys={"rsa-1": rsa_key()}, issuer=env["IKN_OIDC_ISSUER"])
        async with TestClient(TestServer(make_app(api_settings(env)))) as client:
            response = await client.get(
                "/api/v1/bookings", headers={"Authorization": f"Bearer {provider.token()}"}
            )
            await _refused(response, 503, "identity-provider-unavailable")


@contextlib.contextmanager
def socket_closed() -> Iterator[int]:
    """A port on which nothing listens (bound, never listening, for the test's duration)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_settings_list_every_oidc_problem() -> None:
    env = {
        "IKN_DATABASE_URL": "postgresql://x@localhost/db",
        "IKN_OIDC_ISSUER": "https://sso.ikn.go.id/realms/asn",
        "IKN_OIDC_ROLE_MAP": "ikn-fm=boss",
        "IKN_OIDC_ALGORITHMS": "HS256",
    }
    with pytest.raises(SettingsError) as caught:
        ApiSettings.from_env(env)
    text = str(caught.value)
    for name in ("IKN_OIDC_AUDIENCE", "IKN_OIDC_ROLE_MAP", "IKN_OIDC_ALGORITHMS"):
        assert name in text
    assert ApiSettings.from_env({"IKN_DATABASE_URL": env["IKN_DATABASE_URL"]}).oidc is None


# --- Hardening (issue 16, "Identity and tokens") ---


async def test_the_person_is_the_stable_sub_not_the_editable_username(world: World) -> None:
    # A realm that lets users edit their username: citra renames herself "ani".
    token = world.provider.token("citra-7f3a", preferred_username="ani")
    await _refused(await world.get("/api/v1/bookings", token), 403, "not-provisioned", "citra")


@pytest.mark.parametrize(
    "oidc_env", [{"IKN_OIDC_JWKS_MIN_REFRESH_S": "0"}], ids=["default-role-map"], indirect=True
)
async def test_a_realm_role_named_admin_grants_nothing_by_default(world: World) -> None:
    # In a shared government realm another application's "admin" is not ours.
    realm_admin = world.provider.token("ani", realm_access={"roles": ["admin"]})
    await _refused(await world.get("/api/v1/devices", realm_admin), 403, "forbidden")
    # our own client's role named admin does grant it
    client_admin = world.provider.token("ani", roles=("admin",))
    assert (await world.get("/api/v1/devices", client_admin)).status == 200


def test_realm_roles_need_an_explicit_map() -> None:
    env = {
        "IKN_DATABASE_URL": "postgresql://x@localhost/db",
        "IKN_OIDC_ISSUER": "https://sso.ikn.go.id/realms/asn",
        "IKN_OIDC_AUDIENCE": AUDIENCE,
        "IKN_OIDC_ROLES_CLAIM": "realm_access.roles",
    }
    with pytest.raises(SettingsError, match="IKN_OIDC_ROLE_MAP is required"):
        ApiSettings.from_env(env)
    mapped = ApiSettings.from_env({**env, "IKN_OIDC_ROLE_MAP": "ikn-admin=admin"}).oidc
    assert mapped is not None and mapped.roles_claim == "realm_access.roles"
    own = ApiSettings.from_env({k: v for k, v in env.items() if k != "IKN_OIDC_ROLES_CLAIM"})
    assert own.oidc is not None
    assert own.oidc.roles_claim == f"resource_access.{AUDIENCE}.roles"
    assert own.oidc.person_claim == "sub"


@pytest.mark.parametrize(
    ("claims", "headers"),
    [
        ({"typ": "ID"}, {}),  # Keycloak's ID token, which also names our client as aud
        ({"typ": "Refresh"}, {}),
        ({}, {"typ": "secevent+jwt"}),
    ],
    ids=["id-token", "refresh-token", "other-header-typ"],
)
async def test_tokens_that_are_not_access_tokens_are_refused(
    world: World, claims: dict[str, Any], headers: dict[str, str]
) -> None:
    token = world.provider.token("ani", **claims)
    if headers:
        body = jwt.decode(token, options={"verify_signature": False})
        key = world.provider.keys["rsa-1"]
        assert isinstance(key, rsa.RSAPrivateKey)
        token = jwt.encode(body, key, algorithm="RS256", headers={"kid": "rsa-1", **headers})
    response = await world.get("/api/v1/bookings", token)
    await _refused(response, 401, "unauthenticated", "not an access token")


@pytest.mark.parametrize(
    "oidc_env",
    [{"IKN_OIDC_ALLOWED_CLIENTS": "ikn-web,ikn-mobile", "IKN_OIDC_JWKS_MIN_REFRESH_S": "0"}],
    ids=["allowed-clients"],
    indirect=True,
)
async def test_only_the_allowed_clients_tokens_are_taken(world: World) -> None:
    ok = world.provider.token("ani", azp="ikn-web")
    assert (await world.get("/api/v1/bookings", ok)).status == 200
    other = world.provider.token("ani", azp="another-agency-app")
    await _refused(await world.get("/api/v1/bookings", other), 401, "unauthenticated", "client")
    await _refused(
        await world.get("/api/v1/bookings", world.provider.token("ani")), 401, "unauthenticated"
    )


async def test_encryption_keys_and_foreign_key_types_in_the_jwks_are_ignored(
    world: World,
) -> None:
    # Listed after the signing key under the same kid: an encryption key, which the cache
    # used to keep in its place, and keys of a type no accepted algorithm uses.
    world.provider.extra_jwks = [
        {**_jwk(rsa_key(), "rsa-1"), "use": "enc", "alg": "RSA-OAEP"},
        {"kty": "oct", "kid": "rsa-1", "k": "c2VjcmV0", "use": "sig"},
        {"kty": "OKP", "crv": "X25519", "kid": "x-1", "x": "AAAA", "use": "enc"},
    ]
    assert (await world.get("/api/v1/bookings", world.provider.token("ani"))).status == 200


async def test_a_jwks_sent_in_chunks_is_read_whole(world: World) -> None:
    world.provider.chunk_delay_s = 0.02  # each chunk arrives on its own
    assert (await world.get("/api/v1/bookings", world.provider.token("ani"))).status == 200


async def test_a_hanging_provider_does_not_queue_every_bearer_behind_one_fetch(
    database_url: str, provider: Provider
) -> None:
    provider.hang_s = 30  # longer than any timeout below: the provider is down
    idp = TestServer(provider.app(), host="127.0.0.1")
    await idp.start_server()
    provider.issuer = str(idp.make_url("/realms/ikn"))
    env = {
        "IKN_DATABASE_URL": database_url,
        "IKN_OIDC_ISSUER": provider.issuer,
        "IKN_OIDC_AUDIENCE": AUDIENCE,
        "IKN_OIDC_HTTP_TIMEOUT_S": "1.5",
    }
    try:
        async with TestClient(TestServer(make_app(api_settings(env)))) as client:
            headers = {"Authorization": f"Bearer {provider.token()}"}
            started = time.monotonic()
            answers = await asyncio.gather(
                *(client.get("/api/v1/bookings", headers=headers) for _ in range(6))
            )
            elapsed = time.monotonic() - started
            for response in answers:
                await _refused(response, 503, "identity-provider-unavailable")
            # one fetch timed out (1.5 s) and the others waiting for it failed with it;
            # before, each fetched in turn behind the lock: 6 x 1.5 s = 9 s
            assert elapsed < 4.5, elapsed
            assert provider.jwks_fetches == 1
            # the next bearer within the retry interval is refused at once
            started = time.monotonic()
            await _refused(
                await client.get("/api/v1/bookings", headers=headers),
                503,
                "identity-provider-unavailable",
            )
            assert time.monotonic() - started < 1.0
            assert provider.jwks_fetches == 1
    finally:
        await idp.close()


NIP = "198703152010012001"  # 18 digits, as BKN writes a civil servant's NIP


@pytest.mark.parametrize(
    "oidc_env",
    [{"IKN_OIDC_PERSON_CLAIM": "nip", "IKN_OIDC_JWKS_MIN_REFRESH_S": "0"}],
    ids=["nip-claim"],
    indirect=True,
)
async def test_a_bkn_realm_names_the_person_by_the_nip_claim(world: World) -> None:
    """As BKN's realm ``public-siasn`` (or an agency's) signs its ASN: ``sub`` is the
    account's UUID, the NIP an attribute the realm maps into a ``nip`` claim; here the
    person's id is the NIP (``ikn sync siasn`` stores it so)."""
    conn = await asyncpg.connect(world.database_url)
    try:
        await upsert_people(conn, [Person(NIP, "Dewi", "Kemenkeu", "Anggaran", Role.EMPLOYEE)])
    finally:
        await conn.close()
    sub = "5d0f3c9e-2b1a-4e7f-9a60-1c2d3e4f5a6b"
    response = await world.get("/api/v1/bookings", world.provider.token(sub, nip=NIP))
    assert response.status == 200
    assert (await response.json())["person"] == NIP
    without = world.provider.token(sub, preferred_username=NIP)  # no nip claim: not her
    await _refused(await world.get("/api/v1/bookings", without), 401, "unauthenticated", "nip")
    as_number = world.provider.token(sub, nip=int(NIP))  # a mapper of JSON type long
    await _refused(await world.get("/api/v1/bookings", as_number), 401, "unauthenticated", "nip")
