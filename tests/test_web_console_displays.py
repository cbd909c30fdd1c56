"""Display tokens in the console over HTTP with a real PostgreSQL (issue 19,
``/console/displays``): facility managers and administrators list them (never the
token), make one (shown once: 201, ``no-store``; it signs a display in) and revoke
one (at once); visitors, employees and supervisors may not; a bad name or an unknown
building is the page again naming the field, never a 500."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import pytest

from ikn_store.displays import create_display_token
from tests.test_web import Site, _open
from tests.web_site import DEV_LOGIN, add_admin

pytestmark = pytest.mark.usefixtures("no_release")


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    async for opened in _open(database_url, DEV_LOGIN):
        await add_admin(database_url)
        conn = await asyncpg.connect(database_url)
        try:
            await create_display_token(conn, "lobby", "b1")
        finally:
            await conn.close()
        opened.client.session.cookie_jar.update_cookies(
            {"ikn_lang": "en"}, opened.client.make_url("/")
        )
        yield opened


async def _names(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r["name"] for r in await conn.fetch("SELECT name FROM display_tokens ORDER BY 1")]
    finally:
        await conn.close()


async def _post(site: Site, path: str, **form: str) -> tuple[int, str, dict[str, str]]:
    csrf = await site.csrf("/")
    answer = await site.client.post(
        path, data={"csrf_token": csrf, **form}, headers=site.origin, allow_redirects=False
    )
    return answer.status, await answer.text(), dict(answer.headers)


async def test_a_visitor_is_sent_to_sign_in(site: Site) -> None:
    response = await site.client.get("/console/displays", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/login?next=")
    for path in ("/console/displays", "/console/displays/revoke"):
        answer = await site.client.post(path, data={"name": "x", "building": "b1"})
        assert answer.status in (303, 403), path  # no session: no CSRF token either
    assert await _names(site.url) == ["lobby"]


@pytest.mark.parametrize("person", ["ani", "sari"])
async def test_only_managers_and_admins_manage_displays(site: Site, person: str) -> None:
    await site.sign_in(person)
    page = await site.client.get("/console/displays")
    assert page.status == 403
    assert 'href="/console/displays"' not in await page.text()  # nor in the menu
    made, _, _ = await _post(site, "/console/displays", name="hall", building="b1")
    gone, _, _ = await _post(site, "/console/displays/revoke", name="lobby")
    assert (made, gone) == (403, 403)
    assert await _names(site.url) == ["lobby"]


@pytest.mark.parametrize("person", ["fajar", "rina"])
async def test_a_manager_lists_makes_and_revokes_a_display_token(site: Site, person: str) -> None:
    await site.sign_in(person)
    page = await site.client.get("/console/displays")
    text = await page.text()
    assert page.status == 200 and 'href="/console/displays"' in text  # in the menu
    assert re.search(
        r'<tr data-display="lobby">\s*<th scope="row">lobby</th>\s*<td>Gedung Uji', text
    )
    assert ">never<" in text and "iknd_" not in text  # never the token
    status, shown, headers = await _post(site, "/console/displays", name="hall", building="b1")
    assert status == 201 and headers["Cache-Control"] == "no-store"
    assert "<dd>Gedung Uji</dd>" in shown
    token = re.search(r'<code id="display-token">(iknd_[^<]+)</code>', shown)
    assert token is not None
    # the token signs a display in
    csrf = await site.csrf("/display")
    signed = await site.client.post(
        "/display",
        data={"csrf_token": csrf, "token": token[1]},
        headers=site.origin,
        allow_redirects=False,
    )
    assert (signed.status, signed.headers["Location"]) == (303, "/display/kiosk")
    listed = await (await site.client.get("/console/displays")).text()
    assert token[1] not in listed and 'data-display="hall"' in listed
    status, _, headers = await _post(site, "/console/displays/revoke", name="hall")
    assert (status, headers["Location"]) == (303, "/console/displays?revoked=hall")
    done = await (await site.client.get(headers["Location"])).text()
    assert "The display hall is revoked" in done and 'data-display="hall"' not in done
    assert await _names(site.url) == ["lobby"]
    gone = await site.client.get("/display/kiosk/b1", allow_redirects=False)
    assert gone.headers["Location"] == "/display"  # refused at once


@pytest.mark.parametrize(
    ("form", "status", "field", "words"),
    [
        ({"name": "", "building": "b1"}, 422, "name", "1 to 100 letters"),
        ({"name": "x" * 101, "building": "b1"}, 422, "name", "1 to 100 letters"),
        ({"name": "tab\there", "building": "b1"}, 422, "name", "1 to 100 letters"),
        ({"name": "lobby", "building": "b1"}, 409, "name", "A display of this name exists"),
        ({"name": "hall", "building": "nowhere"}, 422, "building", "There is no such building"),
        ({"name": "hall", "building": ""}, 422, "building", "There is no such building"),
        ({"name": "hall", "building": "<script>"}, 422, "building", "There is no such building"),
    ],
)
async def test_a_bad_display_token_form_names_the_field(
    site: Site, form: dict[str, str], status: int, field: str, words: str
) -> None:
    await site.sign_in("fajar")
    answer, shown, _ = await _post(site, "/console/displays", **form)
    assert answer == status, shown
    assert words in shown and f"({field}: " in shown
    assert "<script>" not in shown and "iknd_" not in shown
    assert await _names(site.url) == ["lobby"]


async def test_a_nul_in_a_display_name_is_refused_naming_it(site: Site) -> None:
    """A NUL in any form field is refused before the page (web.sessions), naming it."""
    await site.sign_in("fajar")
    answer, shown, _ = await _post(site, "/console/displays", name="nul\x00", building="b1")
    assert answer == 400 and "name: must not contain a NUL character" in shown, shown
    assert await _names(site.url) == ["lobby"]


async def test_revoking_an_unknown_display_names_it(site: Site) -> None:
    await site.sign_in("rina")
    status, shown, _ = await _post(site, "/console/displays/revoke", name="nowhere")
    assert status == 404 and "There is no display of this name." in shown
    assert await _names(site.url) == ["lobby"]
