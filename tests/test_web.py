"""The staff pages over HTTP with a real PostgreSQL: sign-in by the development login,
sessions (hashed ids, rotation, idle and absolute ends, sign-out), CSRF and Origin
checks, languages, the pages' Content-Security-Policy, and the Today page."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from ikn_core import domain
from ikn_core.errors import SettingsError
from ikn_core.settings import ApiSettings
from tests.helpers import seed
from tests.web_site import DEV_LOGIN, NOW, Clock, seed_people, site_app

# bookings on NOW's day must not be released by the job on the real clock
pytestmark = pytest.mark.usefixtures("no_release")

Client = TestClient[web.Request, web.Application]
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass
class Site:
    client: Client
    clock: Clock
    url: str

    @property
    def origin(self) -> dict[str, str]:
        return {"Origin": str(self.client.make_url("")).rstrip("/")}

    def session_cookie(self) -> str:
        return self.client.session.cookie_jar.filter_cookies(self.client.make_url("/"))[
            "ikn_session"
        ].value

    def use_cookie(self, session_id: str) -> None:
        jar = self.client.session.cookie_jar
        jar.clear()
        jar.update_cookies({"ikn_session": session_id}, self.client.make_url("/"))

    async def csrf(self, path: str = "/login") -> str:
        response = await self.client.get(path)
        found = CSRF.search(await response.text())
        assert found is not None
        return found[1]

    async def sign_in(self, person: str = "ani") -> ClientResponse:
        token = await self.csrf()
        return await self.client.post(
            "/login/dev",
            data={"csrf_token": token, "person": person},
            headers=self.origin,
            allow_redirects=False,
        )


async def _open(url: str, env: dict[str, str]) -> AsyncIterator[Site]:
    await seed_people(url)
    clock = Clock()
    async with TestClient(TestServer(site_app(url, clock, env))) as client:
        yield Site(client, clock, url)


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    async for opened in _open(database_url, {**DEV_LOGIN, "IKN_WEB_SESSION_IDLE_S": "600"}):
        yield opened


async def test_the_front_page_sends_a_visitor_to_sign_in(site: Site) -> None:
    response = await site.client.get("/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login"
    page = await (await site.client.get("/")).text()
    assert '<html lang="id">' in page
    for person in ("Ani Lestari", "Budi Santoso", "Sari Wulandari", "Fajar Nugroho"):
        assert f"Masuk sebagai {person}" in page
    assert page.index("Pegawai") < page.index("Atasan") < page.index("Pengelola gedung")


async def test_signing_in_starts_a_new_session_stored_hashed(site: Site) -> None:
    await site.csrf()
    visitor = site.session_cookie()
    response = await site.sign_in()
    assert (response.status, response.headers["Location"]) == (303, "/")
    cookie = response.cookies["ikn_session"]
    assert cookie.value != visitor  # rotated at sign-in
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # plain HTTP here
    assert len(cookie.value) >= 43  # 256 bits, base64
    conn = await asyncpg.connect(site.url)
    try:
        rows = await conn.fetch("SELECT id_hash, person_id FROM web_sessions")
    finally:
        await conn.close()
    assert [(bytes(r["id_hash"]), r["person_id"]) for r in rows] == [
        (hashlib.sha256(cookie.value.encode()).digest(), "ani")
    ]  # the visitor's session ended; no id stored as it is
    page = await (await site.client.get("/")).text()
    assert "Ani Lestari" in page
    assert "Pegawai" in page


async def test_an_old_session_id_signs_no_one_in(site: Site) -> None:
    await site.csrf()
    visitor = site.session_cookie()
    await site.sign_in()
    site.use_cookie(visitor)
    response = await site.client.get("/", allow_redirects=False)
    assert response.status == 303


def _tampered(token: str) -> str:
    """``token`` with its first character changed: that one carries six whole bits (the
    last carries padding bits too, so swapping it for another may decode to the same
    bytes: the test failed that way about one run in four)."""
    return ("B" if token[0] == "A" else "A") + token[1:]


async def test_writes_need_our_origin_and_the_session_token(site: Site) -> None:
    token = await site.csrf()
    form = {"person": "ani"}
    cases = [
        ({**form, "csrf_token": token}, {}),  # no Origin
        ({**form, "csrf_token": token}, {"Origin": "https://evil.example"}),
        (form, site.origin),  # no token
        ({**form, "csrf_token": _tampered(token)}, site.origin),
    ]
    for data, headers in cases:
        response = await site.client.post(
            "/login/dev", data=data, headers=headers, allow_redirects=False
        )
        assert response.status == 403, (data, headers)
    header = {**site.origin, "X-CSRF-Token": token}  # as htmx sends it
    unknown = await site.client.post(
        "/login/dev", data={"person": "nobody"}, headers=header, allow_redirects=False
    )
    assert unknown.status == 400  # named: it said "Unknown person"
    assert "person: no such person" in await unknown.text()
    response = await site.client.post(
        "/login/dev", data=form, headers=header, allow_redirects=False
    )
    assert response.status == 303


async def test_signing_out_ends_the_session(site: Site) -> None:
    await site.sign_in()
    signed_in = site.session_cookie()
    token = await site.csrf("/")
    response = await site.client.post(
        "/logout", data={"csrf_token": token}, headers=site.origin, allow_redirects=False
    )
    assert (response.status, response.headers["Location"]) == (303, "/login")
    site.use_cookie(signed_in)
    assert (await site.client.get("/", allow_redirects=False)).status == 303


async def test_a_session_ends_when_idle(site: Site) -> None:
    await site.sign_in()
    site.clock.advance(599)
    assert (await site.client.get("/", allow_redirects=False)).status == 200
    site.clock.advance(599)  # within the idle limit of the last request
    assert (await site.client.get("/", allow_redirects=False)).status == 200
    site.clock.advance(601)
    assert (await site.client.get("/", allow_redirects=False)).status == 303


async def test_a_session_ends_at_its_absolute_limit(database_url: str) -> None:
    env = {**DEV_LOGIN, "IKN_WEB_SESSION_IDLE_S": "600", "IKN_WEB_SESSION_MAX_S": "1800"}
    async for site in _open(database_url, env):
        await site.sign_in()
        for _ in range(3):
            site.clock.advance(590)
            assert (await site.client.get("/", allow_redirects=False)).status == 200
        site.clock.advance(31)  # 1801 s after signing in, however active
        assert (await site.client.get("/", allow_redirects=False)).status == 303


async def test_the_cookie_is_secure_over_tls(database_url: str) -> None:
    async for site in _open(database_url, {**DEV_LOGIN, "IKN_API_TRUSTED_PROXY": "true"}):
        response = await site.client.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert response.cookies["ikn_session"]["secure"] is True


async def test_the_development_login_is_off_unless_set(database_url: str) -> None:
    async for site in _open(database_url, {}):
        page = await (await site.client.get("/login")).text()
        assert "Masuk sebagai" not in page
        assert "belum tersedia" in page
        response = await site.sign_in()
        assert response.status == 404


def test_the_development_login_is_refused_beside_oidc() -> None:
    env = {
        "IKN_DATABASE_URL": "postgresql://ikn@localhost/ikn",
        "IKN_WEB_DEV_LOGIN": "true",
        "IKN_OIDC_ISSUER": "https://sso.example.go.id/realms/ikn",
        "IKN_OIDC_AUDIENCE": "ikn-api",
    }
    with pytest.raises(SettingsError, match="IKN_WEB_DEV_LOGIN"):
        ApiSettings.from_env(env)


async def test_the_language_is_chosen_then_asked_then_indonesian(site: Site) -> None:
    english = {"Accept-Language": "en-GB,en;q=0.9"}
    page = await (await site.client.get("/login", headers=english)).text()
    assert '<html lang="en">' in page
    assert "Sign in as Ani Lestari" in page
    token = await site.csrf()
    response = await site.client.post(
        "/language",
        data={"csrf_token": token, "lang": "id", "next": "/login"},
        headers=site.origin,
        allow_redirects=False,
    )
    assert (response.status, response.headers["Location"]) == (303, "/login")
    page = await (await site.client.get("/login", headers=english)).text()
    assert '<html lang="id">' in page  # the switch wins over the browser
    response = await site.client.post(
        "/language",
        data={"csrf_token": token, "lang": "fr", "next": "//evil.example"},
        headers=site.origin,
        allow_redirects=False,
    )
    assert response.status == 400


async def test_pages_may_post_forms_and_the_api_still_may_not(site: Site) -> None:
    page = await site.client.get("/login")
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "same-origin"  # else a form sends Origin: null
    api = await site.client.get("/api/v1/bookings")
    assert "form-action 'none'" in api.headers["Content-Security-Policy"]
    assert api.headers["Referrer-Policy"] == "no-referrer"


async def test_the_api_still_wants_a_bearer_token_from_a_signed_in_browser(site: Site) -> None:
    await site.sign_in()
    response = await site.client.get("/api/v1/bookings")
    assert response.status == 401


async def test_today_shows_the_booking_and_the_attendance_in_the_building_zone(
    site: Site,
) -> None:
    await site.sign_in()
    page = await (await site.client.get("/")).text()
    assert "Senin, 07 Desember 2026, 09.00 WITA" in page
    assert "Meja d1" in page
    assert "08.00 WITA \N{EN DASH} 12.00 WITA" in page
    assert "Sudah check-in" in page
    assert "Belum absen masuk" in page
    english = {"Accept-Language": "en"}
    page = await (await site.client.get("/", headers=english)).text()
    assert "Monday, December 7, 2026, 9:00\u202fAM WITA" in page  # CLDR: a narrow space
    assert "Desk d1" in page
    assert "Not clocked in yet" in page


JAKARTA = domain.Site(
    buildings=(domain.Building("jkt", "Gedung Jakarta", "Asia/Jakarta"),),
    floors=(domain.Floor("jkt-f1", "jkt", "Lantai 1", 1),),
    zones=(domain.Zone("jkt-f1-a", "jkt-f1", "Zona A"),),
    desks=(domain.Desk("j1", "jkt-f1-a", "Meja J1", 5.0, 2.0),),
)


async def test_a_booking_elsewhere_shows_in_its_building_zone(site: Site) -> None:
    await seed(site.url, JAKARTA)
    conn = await asyncpg.connect(site.url)
    try:  # 14:00-16:00 WIB is 15:00-17:00 WITA, Budi's day (his building is in WITA)
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by, status,
                                     checked_in_at, check_in_signal)
               VALUES ('j1', 'budi', tstzrange($1, $2), 'budi', 'checked_in', $1, 'app')""",
            NOW.replace(hour=15),
            NOW.replace(hour=17),
        )
    finally:
        await conn.close()
    await site.sign_in("budi")
    page = await (await site.client.get("/")).text()
    assert "14.00 WIB \N{EN DASH} 16.00 WIB" in page
    assert "Senin, 07 Desember 2026, 09.00 WITA" in page


async def test_the_navigation_follows_the_role(site: Site) -> None:
    await site.sign_in("ani")
    page = await (await site.client.get("/")).text()
    assert 'href="/unit"' not in page
    assert (await site.client.get("/unit")).status == 403
    assert '<a href="/" aria-current="page">Hari ini</a>' in page
    await site.sign_in("sari")
    page = await (await site.client.get("/unit")).text()
    assert '<a href="/unit" aria-current="page">Unit saya</a>' in page
    assert "belum siap" not in page
    assert "Pengajuan yang menunggu keputusan Anda" in page  # the page is built


async def test_static_files_are_ours_only_and_kept_a_year(site: Site) -> None:
    page = await (await site.client.get("/login")).text()
    found = re.search(r'<script src="(/static/vendor/htmx-2\.0\.11\.min\.js\?v=\w+)"', page)
    assert found is not None
    response = await site.client.get(found[1])
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]
    assert "ikn_session" not in response.cookies
    for other in ("vendor/VENDOR.toml", "../pages.py", "nothing.css"):
        assert (await site.client.get(f"/static/{other}")).status == 404


HTML = {"Accept": "text/html,application/xhtml+xml"}


async def test_a_page_that_fails_answers_with_a_page_in_the_person_language(site: Site) -> None:
    """403 and 404 on the pages' side are pages (Indonesian, then English); the API's
    paths keep their problem documents, and a static file its plain 404."""
    await site.sign_in("ani")
    forbidden = await site.client.get("/unit", headers=HTML)
    assert (forbidden.status, forbidden.content_type) == (403, "text/html")
    page = await forbidden.text()
    assert "<h1>Bukan untuk Anda</h1>" in page and 'href="/desks"' in page  # with the menu
    missing = await site.client.get("/no-such-page", headers=HTML)
    assert (missing.status, missing.content_type) == (404, "text/html")
    assert "<h1>Halaman tidak ditemukan</h1>" in await missing.text()
    site.client.session.cookie_jar.update_cookies({"ikn_lang": "en"})
    missing = await site.client.get("/no-such-page", headers=HTML)
    assert "<h1>Page not found</h1>" in await missing.text()
    for path, headers in (("/api/v1/no-such", HTML), ("/no-such-page", {})):
        answer = await site.client.get(path, headers=headers)
        assert (answer.status, answer.content_type) == (404, "application/problem+json")
    static = await site.client.get("/static/no-such.css", headers=HTML)
    assert (static.status, static.content_type) != (404, "text/html")


async def test_a_forged_form_is_refused_with_a_page(site: Site) -> None:
    await site.sign_in("ani")
    response = await site.client.post("/logout", data={}, headers={**HTML, **site.origin})
    assert (response.status, response.content_type) == (403, "text/html")
    assert "Bukan untuk Anda" in await response.text()


async def test_today_offers_the_check_in_of_a_booking_whose_window_is_open(site: Site) -> None:
    """Budi's booking of d2 from 09:10: its check-in opens at 08:55, so Today at 09:00
    has the button (to My bookings' check-in); the page's title is only its title."""
    conn = await asyncpg.connect(site.url)
    try:
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by)
               VALUES ('d2', 'budi', tstzrange($1, $2), 'budi')""",
            NOW.replace(minute=10),
            NOW.replace(hour=12),
        )
    finally:
        await conn.close()
    await site.sign_in("budi")
    page = await (await site.client.get("/")).text()
    assert re.search(r'action="/bookings/[0-9a-f-]+/check-in"', page)
    assert re.search(r"<title>[^<]*</title>", page)
    await site.sign_in("ani")  # checked in already: no button
    assert "/check-in" not in await (await site.client.get("/")).text()


async def test_the_csrf_token_is_masked_anew_in_every_page(site: Site) -> None:
    """No two pages carry the same bytes of the token (BREACH on gzipped pages); each
    masked copy, and the bare token, passes the check; a forged one does not."""
    from web.sessions import mask, unmask

    first, second = await site.csrf(), await site.csrf()
    assert first != second and unmask(first) == unmask(second) != ""
    assert unmask(mask("abc")) == "abc" and unmask("not-a-token!") == ""
    variants: dict[str, Callable[[str], str]] = {
        "masked": lambda t: t,
        "bare": unmask,
        "forged": lambda t: mask("forged" * 7),
    }
    for name, status in (("masked", 303), ("bare", 303), ("forged", 403)):
        site.client.session.cookie_jar.clear()  # a visitor again, with a new token
        token = variants[name](await site.csrf())
        response = await site.client.post(
            "/login/dev",
            data={"person": "ani", "csrf_token": token},
            headers=site.origin,
            allow_redirects=False,
        )
        assert response.status == status, name
