"""Signing in to the staff pages with the identity provider (OIDC authorization code with
PKCE S256) and signing out there too, against a fake Keycloak realm in process
(tests/fake_keycloak.py: what Keycloak does at each endpoint) and the whole application
on a real PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser
from yarl import URL

from ikn_core.errors import SettingsError
from ikn_core.settings import ApiSettings
from tests import test_web_browser as browsing
from tests.fake_keycloak import FakeKeycloak, rsa_key, s256
from tests.web_site import DEV_LOGIN, Clock, seed_people, serving_site, site_app
from web.oidc_client import OidcClient

Client = TestClient[web.Request, web.Application]


def oidc_env(idp: FakeKeycloak, **overrides: str) -> dict[str, str]:
    return {
        "IKN_OIDC_ISSUER": idp.issuer,
        "IKN_OIDC_AUDIENCE": "ikn-api",
        "IKN_OIDC_CLIENT_ID": idp.client_id,
        "IKN_OIDC_CLIENT_SECRET": idp.client_secret,
        "IKN_WEB_OIDC_LOGIN": "true",
        **overrides,
    }


@dataclass
class World:
    idp: FakeKeycloak
    client: Client  # the browser at our site
    browser: aiohttp.ClientSession  # the same browser at the provider
    url: str
    clock: Clock

    @property
    def origin(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    def cookie(self) -> str | None:
        found = self.client.session.cookie_jar.filter_cookies(self.client.make_url("/"))
        return found["ikn_session"].value if "ikn_session" in found else None

    async def to_provider(self, path: str = "/login/oidc") -> str:
        """Starts a sign-in; the address the browser is sent to."""
        response = await self.client.get(path, allow_redirects=False)
        assert response.status == 303, await response.text()
        return response.headers["Location"]

    async def at_provider(self, address: str) -> str:
        """The provider's answer to ``address``: the callback it redirects to (a path)."""
        response = await self.browser.get(address, allow_redirects=False)
        assert response.status == 302, await response.text()
        back = URL(response.headers["Location"])
        assert str(back.with_query(None)) == self.origin + "/login/callback"
        return back.path_qs

    async def callback(self, path_qs: str) -> ClientResponse:
        return await self.client.get(path_qs, allow_redirects=False)

    async def sign_in(self, start: str = "/login/oidc") -> ClientResponse:
        return await self.callback(await self.at_provider(await self.to_provider(start)))

    async def rows(self, sql: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql)
        finally:
            await conn.close()
        return rows


async def _world(database_url: str, idp: FakeKeycloak, **env: str) -> AsyncIterator[World]:
    await seed_people(database_url)
    async with TestServer(idp.app(), host="127.0.0.1") as idp_server:
        idp.base = str(idp_server.make_url("")).rstrip("/")
        clock = Clock()
        app = site_app(database_url, clock, oidc_env(idp, **env))
        async with TestClient(TestServer(app)) as client, aiohttp.ClientSession() as browser:
            world = World(idp, client, browser, database_url, clock)
            idp.redirect_uris.add(world.origin + "/login/callback")
            idp.post_logout_uris.add(world.origin + "/login")
            yield world


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async for opened in _world(database_url, FakeKeycloak(sso_user="ani")):
        yield opened


async def test_thesign_in_page_offers_the_provider_and_no_development_login(
    world: World,
) -> None:
    page = await (await world.client.get("/login?next=/bookings")).text()
    assert "Masuk dengan ikn" in page
    assert 'href="/login/oidc?next=%2Fbookings"' in page
    assert "Masuk sebagai" not in page and "belum tersedia" not in page


async def test_the_whole_flow_signs_ani_in_with_a_new_session(world: World) -> None:
    await world.client.get("/login")
    visitor = world.cookie()
    assert visitor is not None
    address = URL(await world.to_provider())
    assert str(address.with_query(None)) == world.idp.endpoints + "/auth"
    sent = address.query
    assert sent["response_type"] == "code"
    assert sent["client_id"] == "ikn-web"
    assert sent["redirect_uri"] == world.origin + "/login/callback"
    assert sent["scope"] == "openid profile"
    assert sent["code_challenge_method"] == "S256"
    assert len(sent["state"]) >= 43 and len(sent["nonce"]) >= 43
    assert world.cookie() == visitor  # the sign-in is kept in the visitor's session
    stored = await world.rows("SELECT oidc_state, oidc_verifier FROM web_sessions")
    assert stored[0]["oidc_state"] == sent["state"]
    assert s256(stored[0]["oidc_verifier"]) == sent["code_challenge"]

    response = await world.callback(await world.at_provider(str(address)))
    assert (response.status, response.headers["Location"]) == (303, "/")
    cookie = response.cookies["ikn_session"]
    assert cookie.value != visitor  # rotated at sign-in
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # plain HTTP here
    rows = await world.rows("SELECT id_hash, person_id, id_token, oidc_state FROM web_sessions")
    assert [(bytes(r["id_hash"]), r["person_id"]) for r in rows] == [
        (hashlib.sha256(cookie.value.encode()).digest(), "ani")
    ]  # the visitor's session (and its pending sign-in) ended
    assert rows[0]["id_token"] and rows[0]["oidc_state"] is None
    (exchange,) = world.idp.token_requests
    assert exchange["client_secret"] == world.idp.client_secret
    assert exchange["code_verifier"] == stored[0]["oidc_verifier"]
    page = await (await world.client.get("/")).text()
    assert "Ani Lestari" in page and "<h1>Hari ini</h1>" in page


async def test_a_wrong_state_is_refused_and_spends_thesign_in(world: World) -> None:
    back = await world.at_provider(await world.to_provider())
    state = parse_qs(urlsplit(back).query)["state"][0]
    wrong = ("y" if state[0] == "x" else "x") + state[1:]  # never the same (1 in 64 was)
    response = await world.callback(back.replace(state, wrong))
    assert response.status == 400
    assert "Proses masuk ini bukan milik peramban ini" in await response.text()
    assert world.idp.token_requests == []  # refused before the code was spent
    assert (await world.callback(back)).status == 400  # taken: the right one no longer works
    assert (await world.client.get("/", allow_redirects=False)).status == 303


async def test_asign_in_left_too_long_is_refused(world: World) -> None:
    back = await world.at_provider(await world.to_provider())
    world.clock.advance(11 * 60)  # the session lives on (30 min idle), the sign-in not
    assert (await world.callback(back)).status == 400
    assert world.idp.token_requests == []


async def test_a_callback_without_asign_in_is_refused(world: World) -> None:
    response = await world.callback("/login/callback?code=abc&state=def")
    assert response.status == 400


async def test_a_replayed_code_is_refused(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    back = await world.at_provider(await world.to_provider())
    assert (await world.callback(back)).status == 303
    await _sign_out(world)
    assert (await world.callback(back)).status == 400  # that sign-in is spent
    # the same code under a fresh sign-in's state: the provider refuses it
    fresh = URL(await world.to_provider())
    code = parse_qs(urlsplit(back).query)["code"][0]
    replayed = await world.callback(f"/login/callback?state={fresh.query['state']}&code={code}")
    assert replayed.status == 400
    assert "mungkin sudah pernah dipakai" in await replayed.text()
    assert world.idp.token_requests[-1]["code"] == code
    # Logged, without secrets (the test servers' access log aside: api.server runs with
    # access_log=None, since a request line may carry a code).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert "OIDC sign-in refused (code)" in ours
    for secret in (code, fresh.query["state"], world.idp.client_secret):
        assert secret not in ours


async def _csrf(world: World) -> str:
    page = await (await world.client.get("/")).text()
    return page.split('name="csrf-token" content="')[1].split('"')[0]


def _origin(world: World) -> dict[str, str]:
    return {"Origin": world.origin}


async def _sign_out(world: World) -> ClientResponse:
    """Signs out here (not following the browser on to the provider)."""
    data = {"csrf_token": await _csrf(world)}
    return await world.client.post(
        "/logout", data=data, headers=_origin(world), allow_redirects=False
    )


@pytest.mark.parametrize(
    "tamper",
    [
        {"nonce": "another"},
        {"exp": int(time.time()) - 3600},
        {"aud": "ikn-other"},
        {"aud": ["ikn-web", "ikn-other"], "azp": "ikn-other"},
        {"iss": "http://127.0.0.1:9/realms/ikn"},
    ],
    ids=["wrong-nonce", "expired", "wrong-audience", "another-client", "another-issuer"],
)
async def test_an_id_token_that_does_not_verify_is_refused(
    world: World, tamper: dict[str, object]
) -> None:
    world.idp.tamper = tamper
    response = await world.sign_in()
    assert response.status == 403
    assert "tidak dapat diverifikasi" in await response.text()
    assert "ikn_session" not in response.cookies  # no one signed in
    assert await world.rows("SELECT 1 FROM web_sessions WHERE person_id IS NOT NULL") == []


async def test_an_id_token_signed_by_another_key_is_refused(world: World) -> None:
    world.idp.forger = rsa_key()
    response = await world.sign_in()
    assert response.status == 403
    assert "tidak dapat diverifikasi" in await response.text()


async def test_a_person_unknown_here_is_refused_with_the_reason(world: World) -> None:
    for unknown in ("citra", "Not An Id!"):
        world.idp.sso_user = unknown
        response = await world.sign_in()
        assert response.status == 403
        assert "Akun Anda belum dikenal" in await response.text()
    english = await world.client.get(
        await world.at_provider(await world.to_provider()),
        headers={"Accept-Language": "en"},
        allow_redirects=False,
    )
    assert english.status == 403
    assert "Your account is not known to IKN Workspace yet" in await english.text()


async def test_a_role_the_person_does_not_hold_here_is_refused(world: World) -> None:
    world.idp.roles["ani"] = ["admin"]
    response = await world.sign_in()
    assert response.status == 403
    assert "Peran Anda di penyedia identitas" in await response.text()
    world.idp.roles["ani"] = ["employee"]  # the same role: welcome
    assert (await world.sign_in()).status == 303


async def test_the_verifier_must_match_the_challenge(world: World) -> None:
    back = await world.at_provider(await world.to_provider())
    conn = await asyncpg.connect(world.url)
    try:
        await conn.execute(
            "UPDATE web_sessions SET oidc_verifier = 'not-the-verifier-' || oidc_verifier"
        )
    finally:
        await conn.close()
    response = await world.callback(back)
    assert response.status == 400  # the fake refused: PKCE verification failed
    assert world.idp.token_requests[0]["code_verifier"].startswith("not-the-verifier-")


async def test_the_provider_refusing_or_away_is_a_page_not_a_500(world: World) -> None:
    address = URL(await world.to_provider())
    cancelled = await world.callback(
        f"/login/callback?error=access_denied&state={address.query['state']}"
    )
    assert cancelled.status == 400
    assert "dibatalkan atau ditolak" in await cancelled.text()
    world.idp.token_down = True
    down = await world.sign_in()
    assert down.status == 502
    assert "tidak dapat dihubungi" in await down.text()


async def test_a_wrong_client_secret_is_a_502(database_url: str) -> None:
    idp = FakeKeycloak(sso_user="ani")
    async for world in _world(database_url, idp, IKN_OIDC_CLIENT_SECRET="not-the-secret"):
        response = await world.sign_in()
        assert response.status == 502
        assert world.idp.token_requests[0]["client_secret"] == "not-the-secret"


async def test_an_unreachable_provider_is_a_502_at_the_start(database_url: str) -> None:
    await seed_people(database_url)
    idp = FakeKeycloak(base="http://127.0.0.1:9")  # nothing listens there
    app = site_app(database_url, Clock(), oidc_env(idp))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/login/oidc", allow_redirects=False)
        assert response.status == 502
        assert "tidak dapat dihubungi" in await response.text()


async def test_next_is_kept_and_another_sites_ignored(world: World) -> None:
    response = await world.sign_in("/login/oidc?next=/bookings%3Fdone%3D1")
    assert response.headers["Location"] == "/bookings?done=1"
    await _sign_out(world)
    for outside in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = await world.sign_in(
            "/login/oidc?" + str(URL.build(query={"next": outside}).query_string)
        )
        assert response.headers["Location"] == "/"
        await _sign_out(world)


async def test_a_visitor_sent_tosign_in_comes_back(world: World) -> None:
    first = await world.client.get("/checkin/d2", allow_redirects=False)
    login = first.headers["Location"]
    assert URL(login).query["next"] == "/checkin/d2"
    page = await (await world.client.get(login)).text()
    assert 'href="/login/oidc?next=%2Fcheckin%2Fd2"' in page
    response = await world.sign_in("/login/oidc?next=%2Fcheckin%2Fd2")
    assert response.headers["Location"] == "/checkin/d2"


async def test_signing_out_ends_the_session_and_the_providers(world: World) -> None:
    assert (await world.sign_in()).status == 303
    (row,) = await world.rows("SELECT id_token FROM web_sessions")
    response = await world.client.post(
        "/logout",
        data={"csrf_token": await _csrf(world)},
        headers=_origin(world),
        allow_redirects=False,
    )
    assert response.status == 303
    address = URL(response.headers["Location"])
    assert str(address.with_query(None)) == world.idp.endpoints + "/logout"
    assert address.query["id_token_hint"] == row["id_token"]
    assert address.query["post_logout_redirect_uri"] == world.origin + "/login"
    assert await world.rows("SELECT 1 FROM web_sessions WHERE person_id IS NOT NULL") == []
    there = await world.browser.get(str(address), allow_redirects=False)
    assert (there.status, there.headers["Location"]) == (302, world.origin + "/login")
    assert world.idp.sso_user is None  # signed out there too
    assert (await world.client.get("/", allow_redirects=False)).status == 303


def test_websign_in_needs_the_client_id_and_the_issuer() -> None:
    base = {"IKN_DATABASE_URL": "postgresql://ikn@localhost/ikn", "IKN_WEB_OIDC_LOGIN": "true"}
    with pytest.raises(SettingsError) as caught:
        ApiSettings.from_env(base)
    assert "IKN_OIDC_ISSUER is required" in str(caught.value)
    assert "IKN_OIDC_CLIENT_ID is required" in str(caught.value)
    issuer = {
        "IKN_OIDC_ISSUER": "https://sso.example.go.id/realms/ikn",
        "IKN_OIDC_AUDIENCE": "ikn-api",
    }
    with pytest.raises(SettingsError, match="IKN_OIDC_CLIENT_ID is required"):
        ApiSettings.from_env({**base, **issuer})
    settings = ApiSettings.from_env(
        {
            **base,
            **issuer,
            "IKN_OIDC_CLIENT_ID": "ikn-web",
            "IKN_OIDC_CLIENT_SECRET": "s3cret-value",
        }
    )
    assert settings.web.oidc_login and settings.oidc is not None
    assert settings.oidc.client_secret == "s3cret-value"
    assert "s3cret-value" not in repr(settings)
    # API tokens only (no pages' sign-in): no client id needed, as before
    assert ApiSettings.from_env({**base, **issuer, "IKN_WEB_OIDC_LOGIN": "false"}).oidc is not None


@pytest.mark.browser
async def test_a_browser_signs_in_at_the_provider_and_out_again(
    database_url: str, browser: Browser
) -> None:
    """Chromium, under the pages' real CSP: from a page, to the provider's login form,
    back to that page; then signing out there too, back to the sign-in page."""
    await seed_people(database_url)
    idp = FakeKeycloak()  # no SSO session: its login form
    async with TestServer(idp.app(), host="127.0.0.1") as idp_server:
        idp.base = str(idp_server.make_url("")).rstrip("/")
        async with serving_site(database_url, Clock(), oidc_env(idp)) as site:
            base = str(site.make_url("")).rstrip("/")
            idp.redirect_uris.add(base + "/login/callback")
            idp.post_logout_uris.add(base + "/login")
            errors, violations = await _browse(browser, base)
    assert violations == []
    assert errors == []  # no CSP refusal (form-action lets the sign-out go on)
    assert len(idp.logouts) == 1 and "id_token_hint" in idp.logouts[0]


async def _browse(browser: Browser, base: str) -> tuple[list[str], list[Any]]:
    context = await browser.new_context(locale="id-ID")
    errors: list[str] = []
    context.on(
        "console",
        lambda m: errors.append(f"{m.location['url']}: {m.text}") if m.type == "error" else None,
    )
    try:
        page = await context.new_page()
        await page.goto(base + "/bookings")
        assert page.url == base + "/login?next=/bookings"
        await page.get_by_role("link", name="Masuk dengan ikn").click()
        await page.get_by_label("Username").fill("ani")
        await page.get_by_role("button", name="Sign In").click()
        await page.wait_for_url(base + "/bookings")
        assert await page.text_content("h1") == "Pemesanan saya"
        await page.get_by_role("button", name="Keluar").click()
        await page.wait_for_url(base + "/login")
        assert await page.text_content("h1") == "Masuk"
    finally:
        await context.close()
    # The site has no icon: Chromium asks for one where no context.route watches (as
    # test_web_browser's does), and the 404 is logged; anything else counts.
    errors = [e for e in errors if not e.startswith(base + "/favicon.ico: ")]
    return errors, await _pages_violations(browser, base)


async def _pages_violations(browser: Browser, base: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the sign-in and a refusal page (in a
    context that bypasses the CSP to inject it)."""
    context = await browser.new_context(locale="id-ID", bypass_csp=True)
    found: list[dict[str, Any]] = []
    try:
        page = await context.new_page()
        for name, path in (("login-oidc", "/login"), ("signin-refused", "/login/callback")):
            await page.goto(base + path + "?state=old&code=old")
            await browsing.photograph(page, f"{name}-id")
            found += await browsing._violations(page)
    finally:
        await context.close()
    return found


async def test_without_the_providerssign_in_its_addresses_are_not_there(
    database_url: str,
) -> None:
    await seed_people(database_url)
    async with TestClient(TestServer(site_app(database_url, Clock(), DEV_LOGIN))) as client:
        for path in ("/login/oidc", "/login/callback?code=a&state=b"):
            assert (await client.get(path, allow_redirects=False)).status == 404
        assert "/login/oidc" not in await (await client.get("/login")).text()


@pytest.mark.parametrize(
    ("issuer", "name"),
    [
        ("https://sso.example.go.id/realms/asn", "asn"),
        ("https://sso.example.go.id/realms/asn/", "asn"),
        ("https://login.example.go.id/oauth2", "login.example.go.id"),
    ],
)
def test_the_button_names_the_realm_else_the_host(issuer: str, name: str) -> None:
    settings = ApiSettings.from_env(
        {
            "IKN_DATABASE_URL": "postgresql://ikn@localhost/ikn",
            "IKN_OIDC_ISSUER": issuer,
            "IKN_OIDC_AUDIENCE": "ikn-api",
        }
    ).oidc
    assert settings is not None
    client = OidcClient(settings, cast(Any, None), cast(Any, None))
    assert client.provider_name == name


async def test_a_bkn_realm_signs_in_by_the_nip_claim(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """BKN's realm (``public-siasn``) or an agency's: the account's ``sub`` is a UUID,
    its username editable; a User Attribute mapper puts the NIP in a ``nip`` claim,
    which ``IKN_OIDC_PERSON_CLAIM=nip`` makes the person's id (as ``ikn sync siasn``
    stores people). docs/integrations.md walks through that realm's setup."""
    account = "5d0f3c9e-2b1a-4e7f-9a60-1c2d3e4f5a6b"
    nip = "198703152010012001"
    idp = FakeKeycloak(sso_user=account, attributes={account: {"nip": nip}})
    async for world in _world(database_url, idp, IKN_OIDC_PERSON_CLAIM="nip"):
        await world.rows(
            f"""INSERT INTO people (id, name, agency, unit, role)
                VALUES ('{nip}', 'Dewi Kartika', 'kemenpan', 'sdm', 'employee') RETURNING id"""
        )
        response = await world.sign_in()
        assert (response.status, response.headers["Location"]) == (303, "/")
        rows = await world.rows("SELECT person_id FROM web_sessions")
        assert [r["person_id"] for r in rows] == [nip]
        assert "Dewi Kartika" in await (await world.client.get("/")).text()
        idp.attributes[account] = {}  # an account without the NIP attribute: not known
        world.client.session.cookie_jar.clear()
        with caplog.at_level(logging.WARNING):
            response = await world.sign_in()
        assert response.status == 403
        assert "Akun Anda belum dikenal" in await response.text()
        # which claims the token has, to find the NIP's when setting a realm up; no values
        assert "claim nip is not a person id (the ID token's claims: aud, auth_time" in caplog.text
        assert account not in caplog.text
