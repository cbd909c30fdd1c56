"""The fake Keycloak realm's contract (tests/fake_keycloak.py's docstring), checked over
HTTP: what tests/test_web_oidc.py relies on it refusing, it refuses as Keycloak does.
The checks use only the endpoints and the client's credentials, as they would against a
real realm, but for the SSO session that stands in for typing a password."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from tests.fake_keycloak import FakeKeycloak, s256

CALLBACK = "https://pages.example.go.id/login/callback"
SIGNED_OUT = "https://pages.example.go.id/login"
VERIFIER = "a-verifier-of-at-least-43-characters-0123456789"


@dataclass
class Realm:
    idp: FakeKeycloak
    http: aiohttp.ClientSession
    config: dict[str, str]

    def authorize(self, **overrides: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.idp.client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid profile",
            "state": "the-state",
            "nonce": "the-nonce",
            "code_challenge": s256(VERIFIER),
            "code_challenge_method": "S256",
            **overrides,
        }
        return str(URL(self.config["authorization_endpoint"]).with_query(query))

    async def code(self) -> str:
        response = await self.http.get(self.authorize(), allow_redirects=False)
        assert response.status == 302
        back = URL(response.headers["Location"])
        assert back.query["state"] == "the-state" and back.query["iss"] == self.idp.issuer
        return back.query["code"]

    async def token(self, code: str, **overrides: str) -> aiohttp.ClientResponse:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": self.idp.client_id,
            "client_secret": self.idp.client_secret,
            "code_verifier": VERIFIER,
            **overrides,
        }
        return await self.http.post(self.config["token_endpoint"], data=form)


@pytest.fixture
async def realm() -> AsyncIterator[Realm]:
    idp = FakeKeycloak(sso_user="ani", redirect_uris={CALLBACK}, post_logout_uris={SIGNED_OUT})
    async with TestServer(idp.app(), host="127.0.0.1") as server:
        idp.base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as http:
            discovery = idp.issuer + "/.well-known/openid-configuration"
            config = await (await http.get(discovery)).json()
            yield Realm(idp, http, config)


async def test_discovery_names_the_realm_and_its_endpoints(realm: Realm) -> None:
    assert realm.config["issuer"] == realm.idp.issuer
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint"):
        assert realm.config[name].startswith(realm.idp.issuer + "/protocol/openid-connect/")
    assert "S256" in realm.config["code_challenge_methods_supported"]


async def test_an_unregistered_redirect_uri_is_an_error_page_never_a_redirect(
    realm: Realm,
) -> None:
    for wrong in ({"redirect_uri": CALLBACK + "x"}, {"client_id": "someone-else"}):
        response = await realm.http.get(realm.authorize(**wrong), allow_redirects=False)
        assert response.status == 400 and "Location" not in response.headers


async def test_a_request_without_the_s256_challenge_goes_back_with_an_error(
    realm: Realm,
) -> None:
    for wrong in ({"code_challenge": ""}, {"code_challenge_method": "plain"}):
        response = await realm.http.get(realm.authorize(**wrong), allow_redirects=False)
        back = URL(response.headers["Location"])
        assert (response.status, back.query["error"]) == (302, "invalid_request")
        assert back.query["state"] == "the-state" and "code" not in back.query


async def test_the_token_endpoint_gives_an_id_token_once_per_code(realm: Realm) -> None:
    code = await realm.code()
    response = await realm.token(code)
    assert response.status == 200
    body = await response.json()
    assert body["token_type"] == "Bearer"
    keys = jwt.PyJWKSet.from_dict(await (await realm.http.get(realm.config["jwks_uri"])).json())
    claims = jwt.decode(
        body["id_token"], keys.keys[0], algorithms=["RS256"], audience=realm.idp.client_id
    )
    assert claims["iss"] == realm.idp.issuer and claims["azp"] == realm.idp.client_id
    assert (claims["sub"], claims["nonce"], claims["typ"]) == ("ani", "the-nonce", "ID")
    again = await realm.token(code)
    assert (again.status, (await again.json())["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"code_verifier": VERIFIER + "x"}, 400, "invalid_grant"),
        ({"code_verifier": ""}, 400, "invalid_grant"),
        ({"redirect_uri": CALLBACK + "x"}, 400, "invalid_grant"),
        ({"client_secret": "wrong"}, 401, "unauthorized_client"),
        ({"client_secret": ""}, 401, "unauthorized_client"),
    ],
    ids=["wrong-verifier", "no-verifier", "other-redirect-uri", "wrong-secret", "no-secret"],
)
async def test_the_token_endpoint_refuses(
    realm: Realm, overrides: dict[str, str], status: int, error: str
) -> None:
    response = await realm.token(await realm.code(), **overrides)
    assert (response.status, (await response.json())["error"]) == (status, error)


async def test_logout_needs_a_hint_and_a_registered_address(realm: Realm) -> None:
    endpoint = URL(realm.config["end_session_endpoint"])
    bare = await realm.http.get(endpoint.with_query(post_logout_redirect_uri=SIGNED_OUT))
    assert bare.status == 400
    id_token = (await (await realm.token(await realm.code())).json())["id_token"]
    elsewhere = endpoint.with_query(id_token_hint=id_token, post_logout_redirect_uri="https://x/")
    assert (await realm.http.get(elsewhere, allow_redirects=False)).status == 400
    good = endpoint.with_query(id_token_hint=id_token, post_logout_redirect_uri=SIGNED_OUT)
    response = await realm.http.get(good, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, SIGNED_OUT)
    assert realm.idp.sso_user is None  # the SSO session ended
