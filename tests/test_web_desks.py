"""Find a desk over HTTP with a real PostgreSQL, and in a real browser: the floor plan
and the list with each desk's state for the window (defaults: the person's building,
its first floor, the next full hour until 17:00), a desk's confirmation, booking it
(refusals with their reason in Indonesian and English, a bad field named, never a 500),
a delegate booking for a colleague and an employee who cannot; sign-in and CSRF as on
every page.

The no-show release job runs on the real clock, the pages on ``NOW``: it is stopped
here, so that bookings of ``NOW``'s day stay booked."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, datetime, time

import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page

from ikn_core.domain import Role
from ikn_store.people import Person, link_token, upsert_people
from ikn_store.tokens import create_token
from tests import test_web_browser as browsing
from tests.test_web import Site
from tests.web_site import (
    DEV_LOGIN,
    NOW,
    WITA,
    Clock,
    seed_people,
    serving_site,
    site_app,
)
from web.desk_query import default_window

# bookings on NOW's day must not be released by the job on the real clock
pytestmark = pytest.mark.usefixtures("no_release")

DEWI = Person("dewi", "Dewi Anggraini", "kemenpan", "sdm", Role.DELEGATE, "b1")
AFTERNOON = {"date": "2026-12-07", "start": "13:00", "end": "17:00"}


async def seed_desks(url: str) -> None:
    """``seed_people``, and Dewi, a delegate of Ani's unit, with a token."""
    await seed_people(url)
    conn = await asyncpg.connect(url)
    try:
        await upsert_people(conn, [DEWI])
        await link_token(conn, await create_token(conn, DEWI.id, str(DEWI.role)), DEWI.id)
    finally:
        await conn.close()


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    await seed_desks(database_url)
    clock = Clock()  # set before signing in
    async with TestClient(TestServer(site_app(database_url, clock, DEV_LOGIN))) as client:
        yield Site(client, clock, database_url)


async def bookings_of(url: str, desk: str) -> list[tuple[str, str, datetime, datetime]]:
    """The desk's active bookings: person, who made it, start, end."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT person_id, created_by, lower(period) AS start, upper(period) AS end
               FROM bookings
               WHERE desk_id = $1 AND booking_active(status) ORDER BY lower(period)""",
            desk,
        )
    finally:
        await conn.close()
    return [(r["person_id"], r["created_by"], r["start"], r["end"]) for r in rows]


async def book(
    site: Site, desk: str, form: dict[str, str], lang: str = "id", token: bool = True
) -> ClientResponse:
    """The booking form's POST from the signed-in page, in ``lang``."""
    csrf = {"csrf_token": await site.csrf("/desks")} if token else {}
    return await site.client.post(
        f"/desks/{desk}/book",
        data={**csrf, **form},
        headers={**site.origin, "Accept-Language": lang},
        allow_redirects=False,
    )


def states(page: str) -> dict[str, str]:
    """Each desk on the plan and its ``data-state``."""
    return dict(re.findall(r'data-desk="([^"]+)" data-state="([^"]+)"', page))


def text_of(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def test_the_default_window() -> None:
    at = NOW.replace
    assert default_window(NOW, WITA) == (date(2026, 12, 7), time(9), time(17))
    assert default_window(at(minute=10), WITA) == (date(2026, 12, 7), time(10), time(17))
    assert default_window(at(hour=6), WITA) == (date(2026, 12, 7), time(8), time(17))
    assert default_window(at(hour=16), WITA) == (date(2026, 12, 7), time(16), time(17))
    assert default_window(at(hour=16, minute=1), WITA) == (date(2026, 12, 8), time(8), time(17))


async def test_the_plan_and_the_list_show_each_desks_state(site: Site) -> None:
    await site.sign_in("ani")
    response = await site.client.get("/desks")
    assert response.status == 200
    page = await response.text()
    assert states(page) == {"d1": "mine", "d2": "free"}  # floor 1 of b1; d3 is on floor 2
    assert 'aria-label="Meja d2, tersedia"' in page
    assert 'aria-label="Meja d1, pemesanan Anda"' in page
    assert '<a href="/desks/d2?date=2026-12-07&amp;start=09%3A00&amp;end=17%3A00"' in page
    words = text_of(page)
    assert "Senin, 07 Desember 2026, 09.00 WITA – 17.00 WITA" in words
    assert "Meja d2 Meja 2 · Zona A tersedia Pesan" in words
    assert 'type="module" src="/static/floorplan.js?v=' in page
    floor2 = await (await site.client.get("/desks?floor=b1-f2")).text()
    assert states(floor2) == {"d3": "free"}
    zone = await (await site.client.get("/desks?zone=b1-f2-a")).text()  # and its floor
    assert states(zone) == {"d3": "free"}
    english = await site.client.get("/desks", headers={"Cookie": "ikn_lang=en"})
    assert 'aria-label="Desk d2, free"' in await english.text()


async def test_a_desks_confirmation_then_booking_it(site: Site) -> None:
    await site.sign_in("ani")
    confirm = await site.client.get("/desks/d2", params=AFTERNOON)
    assert confirm.status == 200
    words = text_of(await confirm.text())
    assert "Pesan meja d2" in words and "13.00 WITA – 17.00 WITA" in words
    assert 'name="for"' not in await confirm.text()  # an employee books for herself
    response = await book(site, "d2", AFTERNOON)
    assert (response.status, response.headers["Location"]) == (303, "/bookings?done=booked")
    assert await bookings_of(site.url, "d2") == [
        ("ani", "ani", NOW.replace(hour=13), NOW.replace(hour=17))
    ]
    mine = await (await site.client.get("/bookings?done=booked")).text()
    assert '<p class="notice notice-done" role="status">Meja sudah dipesan.</p>' in mine
    assert "Meja d2" in mine
    taken = await (await site.client.get("/desks/d2", params=AFTERNOON)).text()
    assert "Pesan</button>" not in taken and "pemesanan Anda" in taken


async def test_a_refused_booking_says_why_in_the_persons_language(site: Site) -> None:
    await site.sign_in("ani")  # d1 until 12:00 already: not d2 from 09:00 too
    twice = await book(site, "d2", {"date": "2026-12-07", "start": "09:00", "end": "17:00"})
    assert twice.status == 409
    assert "Anda sudah memiliki pemesanan pada waktu ini." in await twice.text()
    await site.sign_in("budi")
    assert (await book(site, "d2", AFTERNOON)).status == 303
    await site.sign_in("ani")
    refused = await book(site, "d2", AFTERNOON)
    assert refused.status == 409
    page = await refused.text()
    assert "Meja sudah dipesan pada waktu ini." in page
    assert states(page) == {"d1": "free", "d2": "booked"}  # the plan of that window
    site.client.session.cookie_jar.update_cookies({"ikn_lang": "en"})
    english = await book(site, "d2", AFTERNOON)
    assert english.status == 409
    assert "The desk is already booked for this time." in await english.text()
    assert [b[0] for b in await bookings_of(site.url, "d2")] == ["budi"]


async def test_a_bad_field_is_named_never_a_500(site: Site) -> None:
    await site.sign_in("ani")
    for query, field in (
        ("date=2026-13-40", "Tanggal"),
        ("start=9am", "Dari"),
        ("start=12:00&end=10:00", "Sampai"),
        ("floor=nowhere", "Lantai"),
        ("equipment=Big+Screen", "Perlengkapan"),
        ("date=0001-01-01&start=07:00&end=08:00", "Tanggal"),  # was a 500: no timestamptz
        ("date=9999-12-31", "Tanggal"),
    ):
        response = await site.client.get(f"/desks?{query}")
        assert response.status == 400, query
        assert f"Periksa formulir: {field}:" in text_of(await response.text()), query
    english = await site.client.get("/desks?date=tomorrow", headers={"Cookie": "ikn_lang=en"})
    assert english.status == 400
    assert "Check the form: Date: not a date (YYYY-MM-DD)." in text_of(await english.text())
    posted = await book(site, "d2", {**AFTERNOON, "date": "7/12/2026"})
    assert posted.status == 400
    assert "Tanggal" in await posted.text()
    ancient = await book(site, "d2", {**AFTERNOON, "date": "0001-01-01"})
    assert ancient.status == 400
    assert "Tanggal" in await ancient.text()
    unknown = await book(site, "d9", AFTERNOON)
    assert unknown.status == 404
    assert "Meja tidak ditemukan." in await unknown.text()
    assert await bookings_of(site.url, "d2") == []


async def test_sign_in_first_and_writes_need_the_token(site: Site) -> None:
    response = await site.client.get("/desks?date=2026-12-08", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/desks?date%3D2026-12-08"
    await site.sign_in("ani")
    forged = await book(site, "d2", AFTERNOON, token=False)
    assert forged.status == 403
    assert await bookings_of(site.url, "d2") == []


async def test_a_delegate_books_for_a_colleague(site: Site) -> None:
    await site.sign_in("dewi")
    confirm = await (await site.client.get("/desks/d2", params=AFTERNOON)).text()
    assert '<label for="for">Pesan untuk</label>' in confirm
    assert '<option value="budi">Budi Santoso</option>' in confirm
    assert 'value="fajar"' not in confirm  # another agency's
    response = await book(site, "d2", {**AFTERNOON, "for": "budi"})
    assert (response.status, response.headers["Location"]) == (303, "/bookings?done=booked")
    assert [b[:2] for b in await bookings_of(site.url, "d2")] == [("budi", "dewi")]
    other = await book(site, "d3", {**AFTERNOON, "for": "fajar"})
    assert other.status == 403
    assert await bookings_of(site.url, "d3") == []


async def test_an_employee_cannot_book_for_someone_else(site: Site) -> None:
    await site.sign_in("ani")
    response = await book(site, "d2", {**AFTERNOON, "for": "budi"}, lang="en")
    assert response.status == 403
    assert "You may book only for yourself" in await response.text()
    assert await bookings_of(site.url, "d2") == []


@pytest.fixture
async def midday(database_url: str) -> AsyncIterator[str]:
    """The whole site at 12:30 WITA, after Ani's booking of d1: the page's window is
    13:00-17:00. Its address."""
    await seed_desks(database_url)
    async with serving_site(database_url, Clock(NOW.replace(hour=12, minute=30))) as server:
        yield str(server.make_url("")).rstrip("/")


async def _sign_in_to_desks(page: Page, base: str) -> None:
    await page.goto(base + "/desks")  # signed out: the sign-in page, then back
    await page.get_by_role("button", name="Masuk sebagai Ani Lestari").click()
    await page.wait_for_url(base + "/desks")
    await page.wait_for_selector("svg.floorplan[data-ready]", state="attached")


async def _listed(page: Page) -> str:
    await page.wait_for_url("**/bookings?done=booked")
    done = await page.get_by_role("status").text_content()
    listed = await page.locator("main").text_content()
    return f"{done} | {' '.join((listed or '').split())}"


@pytest.mark.browser
async def test_ani_books_the_free_desk_on_the_plan(midday: str, browser: Browser) -> None:
    base = midday
    context = await browser.new_context(locale="id-ID")  # the pages' own CSP applies
    watch = browsing.Watch(base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        await _sign_in_to_desks(page, base)
        await browsing.photograph(page, "desks-plan-id")
        await page.locator('svg.floorplan [data-desk="d2"]').click()
        await page.wait_for_url("**/desks/d2?*")
        await browsing.photograph(page, "desks-confirm-id")
        await page.get_by_role("button", name="Pesan", exact=True).click()
        listed = await _listed(page)
        await browsing.photograph(page, "desks-booked-id")
    finally:
        await context.close()
    assert listed.startswith("Meja sudah dipesan. |")
    assert "Meja d2 13.00 WITA – 17.00 WITA Dipesan" in listed
    assert watch.outside == [] and watch.errors == []


@pytest.mark.browser
async def test_ani_books_a_desk_with_the_keyboard_alone(midday: str, browser: Browser) -> None:
    base = midday
    context = await browser.new_context(locale="id-ID")
    watch = browsing.Watch(base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        await _sign_in_to_desks(page, base)
        ready = await page.evaluate("performance.getEntriesByName('floorplan-ready').length")
        await browsing._tab_to(page, "d1")  # the first desk on the plan: free now
        assert await page.evaluate("document.activeElement.dataset.desk") == "d1"
        await page.keyboard.press("ArrowRight")  # the arrow keys move along the plan
        assert await page.evaluate("document.activeElement.dataset.desk") == "d2"
        await page.keyboard.press("ArrowLeft")
        await page.keyboard.press("ArrowRight")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        await browsing._tab_to(page, "Pesan")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        listed = await _listed(page)
    finally:
        await context.close()
    assert "Meja d2 13.00 WITA – 17.00 WITA Dipesan" in listed
    assert ready == 1
    assert watch.outside == [] and watch.errors == []


@pytest.mark.browser
@pytest.mark.parametrize("lang", browsing.LOCALES)
async def test_the_pages_states_are_accessible(midday: str, browser: Browser, lang: str) -> None:
    base = midday
    context = await browser.new_context(locale=browsing.LOCALES[lang], bypass_csp=True)
    found: dict[str, list[dict[str, object]]] = {}
    try:
        page = await context.new_page()
        await browsing.sign_in(page, base, lang, DEWI.name)  # a delegate: "Book for"
        for path in ("/desks/d2", "/desks/d1?start=09:00", "/desks?date=x", "/desks?zone=z9"):
            await page.goto(base + path)
            found[path] = await browsing._violations(page)
            await browsing.photograph(page, f"desks-state{len(found)}-{lang}")
    finally:
        await context.close()
    assert {path: v for path, v in found.items() if v} == {}


async def set_desk(url: str, desk: str, disabled: bool, assigned_to: str | None) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE desks SET disabled = $2, assigned_to = $3 WHERE id = $1",
            desk,
            disabled,
            assigned_to,
        )
    finally:
        await conn.close()


async def test_out_of_use_and_assigned_desks(site: Site) -> None:
    await set_desk(site.url, "d2", True, None)
    await site.sign_in("ani")
    page = await (await site.client.get("/desks")).text()
    assert states(page) == {"d1": "mine", "d2": "disabled"}
    assert '<g role="img" class="plan-desk state-disabled" data-desk="d2"' in page
    assert "/desks/d2/book" not in page  # no Book button
    await set_desk(site.url, "d2", False, "ani")
    assert states(await (await site.client.get("/desks")).text())["d2"] == "free"  # hers
    await site.sign_in("budi")
    theirs = await (await site.client.get("/desks")).text()
    assert states(theirs) == {"d1": "booked", "d2": "assigned"}
    assert "Meja d2, ditetapkan untuk pegawai lain" in theirs
    refused = await book(site, "d2", AFTERNOON)
    assert refused.status == 403
    assert "Meja ini ditetapkan secara tetap untuk pegawai lain." in await refused.text()


async def test_a_weekly_series_from_the_desks_page(site: Site) -> None:
    """Every day four times, from the same form: a series of four, one of them refused
    where Budi holds the desk."""
    conn = await asyncpg.connect(site.url)
    try:  # Budi has d2 on Wednesday
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by)
               VALUES ('d2', 'budi', tstzrange($1, $2), 'budi')""",
            NOW.replace(day=9, hour=13),
            NOW.replace(day=9, hour=17),
        )
    finally:
        await conn.close()
    await site.sign_in("ani")
    confirm = await (await site.client.get("/desks/d2", params=AFTERNOON)).text()
    assert 'name="repeat"' in confirm and 'name="count"' in confirm
    response = await book(site, "d2", {**AFTERNOON, "repeat": "daily", "count": "4"})
    assert response.headers["Location"] == "/bookings?done=series-partly"
    booked = [(who, start.day) for who, _, start, _ in await bookings_of(site.url, "d2")]
    assert booked == [("ani", 7), ("ani", 8), ("budi", 9), ("ani", 10)]
    mine = await (await site.client.get("/bookings?done=series-partly")).text()
    assert "Sebagian rangkaian tercatat" in mine
    bad = await book(site, "d2", {**AFTERNOON, "repeat": "weekly", "count": "99"})
    assert bad.status == 400 and "count: 2 to 60" in await bad.text()
