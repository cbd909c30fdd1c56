"""My bookings and the check-in at the desk over HTTP with a real PostgreSQL: the list
(by day, times in WITA, series), cancel, check in and out (refusals with their reason
in Indonesian and English, never a 500), the iCalendar file, the desks' QR codes
(facility managers only) and ``/checkin/{desk}``: one tap to check in, or a walk-up
booking of a free desk; sign-in and CSRF as on every page.

The no-show release job runs on the real clock, the pages on ``NOW``: it is stopped
here, so that bookings of ``NOW``'s day stay booked."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import ClientResponse, ClientSession, web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser

from api.server import serving
from ikn_core.booking import BookingRules, walk_up_end
from ikn_store.booking.places import set_rules
from tests import test_web_browser as browsing
from tests.test_web import Site
from tests.web_site import (
    DEV_LOGIN,
    NOW,
    Clock,
    seed_people,
    serving_site,
    site_app,
)
from web import feeds
from web.checkin import qr_svg

# bookings on NOW's day must not be released by the job on the real clock
pytestmark = pytest.mark.usefixtures("no_release")

TOMORROW = NOW + timedelta(days=1)


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    await seed_people(database_url)
    clock = Clock()
    async with TestClient(TestServer(site_app(database_url, clock, DEV_LOGIN))) as client:
        yield Site(client, clock, database_url)


def hours(day: datetime, start: int, end: int) -> tuple[datetime, datetime]:
    """From ``start`` o'clock to ``end`` o'clock WITA on ``day``."""
    return day.replace(hour=start), day.replace(hour=end)


async def insert_booking(
    url: str,
    person: str,
    desk: str,
    period: tuple[datetime, datetime],
    series: uuid.UUID | None = None,
) -> uuid.UUID:
    """A booked booking, inserted as tests/web_site.py seeds."""
    start, end = period
    conn = await asyncpg.connect(url)
    try:
        booking_id: uuid.UUID = await conn.fetchval(
            """INSERT INTO bookings (desk_id, person_id, period, created_by, series_id)
               VALUES ($1, $2, tstzrange($3, $4), $2, $5) RETURNING id""",
            desk,
            person,
            start,
            end,
            series,
        )
    finally:
        await conn.close()
    return booking_id


async def status_of(url: str, booking_id: uuid.UUID) -> str:
    conn = await asyncpg.connect(url)
    try:
        found: str = await conn.fetchval("SELECT status FROM bookings WHERE id = $1", booking_id)
    finally:
        await conn.close()
    return found


async def post(site: Site, path: str, lang: str = "id", **form: str) -> ClientResponse:
    """A form POST from the signed-in page, in ``lang``."""
    token = await site.csrf("/bookings")
    return await site.client.post(
        path,
        data={"csrf_token": token, **form},
        headers={**site.origin, "Accept-Language": lang},
        allow_redirects=False,
    )


def text_of(page: str) -> str:
    """The page's words, without tags and runs of white space."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


async def test_the_list_shows_upcoming_bookings_by_day_in_wita(site: Site) -> None:
    await insert_booking(site.url, "ani", "d2", hours(TOMORROW, 10, 12))
    series = uuid.uuid4()
    for days in (2, 3):
        day = NOW + timedelta(days=days)
        await insert_booking(site.url, "ani", "d3", hours(day, 13, 15), series)
    await site.sign_in("ani")
    page = text_of(await (await site.client.get("/bookings")).text())
    today = page.index("Senin, 07 Desember 2026")
    tomorrow = page.index("Selasa, 08 Desember 2026")
    assert today < page.index("Meja d1 08.00 WITA – 12.00 WITA Sudah check-in") < tomorrow
    assert tomorrow < page.index("Meja d2 10.00 WITA – 12.00 WITA Dipesan")
    assert page.count("Bagian dari pemesanan berulang") == 2
    assert "Check-in dibuka pukul 09.45 WITA." in page
    assert "Batalkan yang ini dan berikutnya" in page
    english = await site.client.get("/bookings", headers={"Accept-Language": "en"})
    assert "Desk d2 10:00 AM WITA – 12:00 PM WITA Booked" in text_of(await english.text())


async def test_cancel_my_booking_but_not_another_persons(site: Site) -> None:
    mine = await insert_booking(site.url, "ani", "d2", hours(TOMORROW, 10, 12))
    theirs = await insert_booking(site.url, "budi", "d3", hours(TOMORROW, 10, 12))
    await site.sign_in("ani")
    response = await post(site, f"/bookings/{mine}/cancel")
    assert (response.status, response.headers["Location"]) == (303, "/bookings?done=cancelled")
    assert await status_of(site.url, mine) == "cancelled"
    page = await (await site.client.get("/bookings?done=cancelled")).text()
    assert '<p class="notice notice-done" role="status">Pemesanan dibatalkan.</p>' in page
    assert "Meja d2" not in page
    refused = await post(site, f"/bookings/{theirs}/cancel", lang="en")
    assert refused.status == 404
    assert "There is no such booking among yours." in await refused.text()
    assert await status_of(site.url, theirs) == "booked"
    bad = await post(site, "/bookings/not-a-uuid/cancel")
    assert bad.status == 404


async def test_cancel_this_and_the_following_of_a_series(site: Site) -> None:
    series = uuid.uuid4()
    ids = [
        await insert_booking(site.url, "ani", "d3", hours(day, 13, 15), series)
        for day in (TOMORROW, TOMORROW + timedelta(days=1), TOMORROW + timedelta(days=2))
    ]
    await site.sign_in("ani")
    response = await post(site, f"/bookings/{ids[1]}/cancel", following="true")
    assert response.headers["Location"] == "/bookings?done=cancelled-following"
    assert [await status_of(site.url, i) for i in ids] == ["booked", "cancelled", "cancelled"]


async def test_check_in_inside_the_window_and_not_outside(site: Site) -> None:
    now = await insert_booking(
        site.url, "budi", "d2", (NOW.replace(minute=10), NOW.replace(hour=11))
    )
    later = await insert_booking(site.url, "budi", "d2", hours(TOMORROW, 10, 12))
    await site.sign_in("budi")
    response = await post(site, f"/bookings/{now}/check-in")
    assert (response.status, response.headers["Location"]) == (303, "/bookings?done=checked-in")
    assert await status_of(site.url, now) == "checked_in"
    for lang, reason in (
        ("id", "Check-in dibuka mulai 15 menit sebelum waktu mulai hingga pemesanan berakhir."),
        ("en", "Check-in is open from 15 minutes before the start until the end of the booking."),
    ):
        refused = await post(site, f"/bookings/{later}/check-in", lang=lang)
        assert refused.status == 409
        page = await refused.text()
        assert f'<html lang="{lang}">' in page
        assert reason in text_of(page)
    assert await status_of(site.url, later) == "booked"


async def test_check_out(site: Site) -> None:
    await site.sign_in("ani")
    page = await (await site.client.get("/bookings")).text()
    found = re.search(r'action="/bookings/([0-9a-f-]+)/check-out"', page)
    assert found is not None  # Ani's booking of d1 today, checked in
    response = await post(site, f"/bookings/{found[1]}/check-out")
    assert response.headers["Location"] == "/bookings?done=checked-out"
    assert await status_of(site.url, uuid.UUID(found[1])) == "checked_out"
    again = await post(site, f"/bookings/{found[1]}/check-out", lang="en")
    assert again.status == 409
    assert "The booking was cancelled or released." in await again.text()


async def test_the_icalendar_file_of_my_bookings(site: Site) -> None:
    mine = await insert_booking(site.url, "ani", "d2", hours(TOMORROW, 10, 12))
    await site.sign_in("ani")
    response = await site.client.get("/bookings.ics")
    assert response.status == 200
    assert response.content_type == "text/calendar"
    assert response.headers["Content-Disposition"] == 'attachment; filename="bookings.ics"'
    text = await response.text()
    assert f"UID:{mine}@ikn-workspace" in text
    assert "DTSTART:20261208T020000Z" in text  # 10:00 WITA


FEED_URL = re.compile(r'<input id="feed-url" type="text" readonly value="([^"]+)"')


async def make_feed(site: Site, lang: str = "id") -> str:
    """A new calendar address from My bookings, as the page shows it."""
    response = await post(site, "/bookings/feed", lang=lang)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    found = FEED_URL.search(await response.text())
    assert found is not None
    return found[1]


async def subscribe(address: str) -> ClientResponse:
    """What a calendar app gets from ``address``: no cookie, no token."""
    async with ClientSession() as app:
        response = await app.get(address)
        await response.read()
        return response


async def test_a_calendar_app_subscribes_to_my_secret_address(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mine = await insert_booking(site.url, "ani", "d2", hours(TOMORROW, 10, 12))
    await site.sign_in("ani")
    page = await (await site.client.get("/bookings")).text()
    assert 'action="/bookings/feed"' in page and "Buat alamat kalender" in page
    address = await make_feed(site)
    origin = site.origin["Origin"]
    secret = address.removeprefix(f"{origin}/feeds/bookings/").removesuffix(".ics")
    assert len(secret) >= 43 and "/" not in secret  # token_urlsafe(32)
    shown = await (await post(site, "/bookings/feed", lang="en")).text()
    assert 'href="webcal://' in shown and "shown only this once" in shown
    found = FEED_URL.search(shown)
    assert found is not None
    address = found[1]
    response = await subscribe(address)
    assert response.status == 200
    assert response.content_type == "text/calendar"
    assert response.headers["Cache-Control"].startswith("private")
    assert "Set-Cookie" not in response.headers
    text = await response.text()
    assert f"UID:{mine}@ikn-workspace" in text and "DTSTART:20261208T020000Z" in text
    # the same as the file of My bookings, apart from nothing
    download = await (await site.client.get("/bookings.ics")).text()
    assert text == download
    # the page later says an address exists, and shows no secret
    later = await (await site.client.get("/bookings")).text()
    assert 'id="feed-url"' not in later and "Buat alamat kalender baru" in later
    assert "Anda membuat alamat kalender pada" in text_of(later)
    # the secret is stored as its hash only, and logged nowhere
    conn = await asyncpg.connect(site.url)
    try:
        stored = await conn.fetchval(
            "SELECT secret_hash FROM booking_feeds WHERE person_id = 'ani'"
        )
    finally:
        await conn.close()
    assert bytes(stored) == hashlib.sha256(secret_of(address).encode()).digest()
    # (the test server's access log aside: api.server runs with access_log=None, since a
    # request line may carry a secret; test_the_platform_keeps_no_access_log)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert secret_of(address) not in logged


def secret_of(address: str) -> str:
    return address.rsplit("/", 1)[1].removesuffix(".ics")


async def test_a_new_address_revokes_the_old_one(site: Site) -> None:
    await site.sign_in("ani")
    old = await make_feed(site)
    assert (await subscribe(old)).status == 200
    new = await make_feed(site)
    assert new != old
    assert (await subscribe(old)).status == 404
    assert (await subscribe(new)).status == 200


async def test_an_address_shows_only_its_persons_bookings(site: Site) -> None:
    ani = await insert_booking(site.url, "ani", "d2", hours(TOMORROW, 10, 12))
    sari = await insert_booking(site.url, "sari", "d3", hours(TOMORROW, 10, 12))
    await site.sign_in("ani")
    ani_feed = await (await subscribe(await make_feed(site))).text()
    await site.sign_in("sari")
    sari_feed = await (await subscribe(await make_feed(site))).text()
    assert f"UID:{ani}@" in ani_feed and f"UID:{sari}@" not in ani_feed
    assert f"UID:{sari}@" in sari_feed and f"UID:{ani}@" not in sari_feed
    assert "Desk bookings of ani" in ani_feed and "sari" not in ani_feed


async def test_only_a_signed_in_form_makes_an_address(site: Site) -> None:
    origin = site.origin["Origin"]
    for unknown in ("x" * 43, "", "..%2F..%2Fbookings"):
        assert (await subscribe(f"{origin}/feeds/bookings/{unknown}.ics")).status == 404
    # a visitor, then a signed-in person without the token or from another origin
    visitor = await site.client.post("/bookings/feed", headers=site.origin, allow_redirects=False)
    assert visitor.status == 403
    await site.sign_in("ani")
    no_token = await site.client.post("/bookings/feed", headers=site.origin)
    assert no_token.status == 403
    token = await site.csrf("/bookings")
    elsewhere = await site.client.post(
        "/bookings/feed", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status == 403
    conn = await asyncpg.connect(site.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM booking_feeds") == 0
    finally:
        await conn.close()


async def test_the_qr_code_is_for_facility_managers(site: Site) -> None:
    await site.sign_in("fajar")
    response = await site.client.get("/desks/d1/qr")
    assert response.status == 200
    page = await response.text()
    assert re.search(r'<svg aria-hidden="true" focusable="false" [^>]*viewBox=', page)
    origin = site.origin["Origin"]
    assert f'<span class="qr-url">{origin}/checkin/d1</span>' in page
    assert qr_svg(f"{origin}/checkin/d1") in page  # the code of that address
    assert qr_svg(f"{origin}/checkin/d2") not in page
    assert (await site.client.get("/desks/nope/qr")).status == 404
    await site.sign_in("ani")
    refused = await site.client.get("/desks/d1/qr")
    assert refused.status == 403
    assert "<svg" not in await refused.text()


async def test_checkin_at_the_desk_with_my_booking_after_the_post(site: Site) -> None:
    mine = await insert_booking(
        site.url, "budi", "d2", (NOW.replace(minute=10), NOW.replace(hour=11))
    )
    await site.sign_in("budi")
    page = await (await site.client.get("/checkin/d2")).text()
    assert 'name="offer" value="check-in"' in page
    assert await status_of(site.url, mine) == "booked"  # a GET changes nothing
    response = await post(site, "/checkin/d2", offer="check-in")
    assert (response.status, response.headers["Location"]) == (303, "/checkin/d2?done=checked-in")
    assert await status_of(site.url, mine) == "checked_in"
    done = text_of(await (await site.client.get("/checkin/d2?done=checked-in")).text())
    assert "Anda sudah check-in di meja d2 sampai pukul 11.00 WITA." in done
    twice = await post(site, "/checkin/d2", offer="check-in")  # a second tap
    assert twice.status == 303


async def test_a_walk_up_books_the_free_desk_and_checks_in(site: Site) -> None:
    await site.sign_in("budi")
    page = text_of(await (await site.client.get("/checkin/d3")).text())
    assert "Pesan dari sekarang sampai pukul 17.00 WITA lalu langsung check-in." in page
    response = await post(site, "/checkin/d3", offer="walk-up")
    assert response.headers["Location"] == "/checkin/d3?done=checked-in"
    conn = await asyncpg.connect(site.url)
    try:
        row = await conn.fetchrow(
            """SELECT lower(period) AS start, upper(period) AS "end", status
                 FROM bookings WHERE person_id = 'budi' AND desk_id = 'd3'"""
        )
    finally:
        await conn.close()
    assert row is not None
    assert (row["start"], row["end"], row["status"]) == (NOW, NOW.replace(hour=17), "checked_in")


async def test_checkin_explains_why_not(site: Site) -> None:
    await insert_booking(site.url, "budi", "d2", hours(NOW, 13, 15))
    await site.sign_in("budi")
    taken = await site.client.get("/checkin/d1", headers={"Accept-Language": "en"})
    page = text_of(await taken.text())
    assert "The desk is already booked for this time." in page
    assert "Ani" not in page  # whose booking it is stays unsaid
    refused = await post(site, "/checkin/d1", lang="en", offer="walk-up")
    assert refused.status == 409
    assert "Nothing was done" in await refused.text()
    early = await (await site.client.get("/checkin/d2")).text()
    assert "Check-in dibuka pukul 12.45 WITA." in text_of(early)
    assert 'name="offer"' not in early
    conn = await asyncpg.connect(site.url)
    try:
        await conn.execute("UPDATE desks SET disabled = true WHERE id = 'd3'")
    finally:
        await conn.close()
    disabled = await site.client.get("/checkin/d3", headers={"Accept-Language": "en"})
    assert "This desk is out of use." in await disabled.text()
    assert (await site.client.get("/checkin/nope")).status == 404
    await site.sign_in("ani")  # her booking of d1 is under way
    busy = text_of(await (await site.client.get("/checkin/d2")).text())
    assert "Anda sudah memiliki pemesanan pada waktu ini." in busy


async def test_a_walk_up_ends_at_the_desks_next_booking(site: Site) -> None:
    await insert_booking(site.url, "sari", "d3", hours(NOW, 14, 16))
    await site.sign_in("budi")
    page = text_of(await (await site.client.get("/checkin/d3")).text())
    assert "Pesan dari sekarang sampai pukul 14.00 WITA lalu langsung check-in." in page


async def test_a_visitor_signs_in_first_and_writes_need_the_token(site: Site) -> None:
    for path in ("/bookings", "/checkin/d1", "/desks/d1/qr", "/bookings.ics?x=1"):
        response = await site.client.get(path, allow_redirects=False)
        assert response.status == 303
        where = urlsplit(response.headers["Location"])
        assert (where.path, parse_qs(where.query)) == ("/login", {"next": [path]})
    assert (await site.client.get("/", allow_redirects=False)).headers["Location"] == "/login"
    login = await site.client.get("/login?next=/checkin/d1")
    assert '<input type="hidden" name="next" value="/checkin/d1">' in await login.text()
    token = await site.csrf("/login?next=/checkin/d1")
    form = {"csrf_token": token, "person": "ani", "next": "/checkin/d1"}
    back = await site.client.post(
        "/login/dev", data=form, headers=site.origin, allow_redirects=False
    )
    assert back.headers["Location"] == "/checkin/d1"  # back where the QR code pointed
    page = await (await site.client.get("/bookings")).text()
    found = re.search(r'action="(/bookings/[0-9a-f-]+/check-out)"', page)
    assert found is not None
    forged = await site.client.post(
        found[1], headers=site.origin, allow_redirects=False
    )  # no token
    assert forged.status == 403
    walk_up = await site.client.post(
        "/checkin/d3", data={"offer": "walk-up"}, headers=site.origin, allow_redirects=False
    )
    assert walk_up.status == 403


async def test_signing_in_goes_back_only_to_a_page_of_ours(site: Site) -> None:
    token = await site.csrf()
    for asked in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        form = {"csrf_token": token, "person": "ani", "next": asked}
        response = await site.client.post(
            "/login/dev", data=form, headers=site.origin, allow_redirects=False
        )
        assert response.headers["Location"] == "/", asked
        token = await site.csrf("/")  # signed in: the next form's token


@pytest.fixture
async def late_morning(database_url: str) -> AsyncIterator[str]:
    """The whole site at 11:50 WITA, when Ani's booking of d2 from 12:00 opens for
    check-in; she has d3 tomorrow too. Its address."""
    await seed_people(database_url)
    await insert_booking(database_url, "ani", "d2", hours(NOW, 12, 14))
    await insert_booking(database_url, "ani", "d3", hours(TOMORROW, 10, 12))
    async with serving_site(database_url, Clock(NOW.replace(hour=11, minute=50))) as server:
        yield str(server.make_url("")).rstrip("/")


@pytest.mark.browser
async def test_ani_scans_the_desk_checks_in_and_cancels_with_the_keyboard(
    late_morning: str, browser: Browser
) -> None:
    base = late_morning
    context = await browser.new_context(locale="id-ID")  # the pages' own CSP applies
    watch = browsing.Watch(base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        await page.goto(base + "/checkin/d2")  # the QR code's address, signed out
        await page.get_by_role("button", name="Masuk sebagai Ani Lestari").click()
        await page.wait_for_url(base + "/checkin/d2")  # back after signing in
        await page.get_by_role("button", name="Check-in", exact=True).click()
        await page.wait_for_url(base + "/checkin/d2?done=checked-in")
        done = await page.get_by_role("status").text_content()
        await browsing.photograph(page, "checkin-done-id")
        await page.goto(base + "/bookings")
        await browsing.photograph(page, "bookings-flow-id")
        await browsing._tab_to(page, "Batalkan…")  # d3's: d2 is checked in now
        await page.keyboard.press("Enter")  # opens the confirmation
        await browsing._tab_to(page, "Ya, batalkan")
        await browsing.photograph(page, "bookings-confirm-id")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        cancelled = await page.get_by_role("status").text_content()
        listed = await page.locator("main").text_content()
    finally:
        await context.close()
    assert done == "Anda sudah check-in di meja d2 sampai pukul 14.00 WITA."
    assert cancelled == "Pemesanan dibatalkan."
    assert listed is not None and "Meja d3" not in listed and "Meja d2" in listed
    assert watch.outside == []
    assert watch.errors == []


@pytest.mark.browser
@pytest.mark.parametrize("lang", browsing.LOCALES)
async def test_the_calendar_address_is_shown_once_with_a_copy_button(
    late_morning: str, browser: Browser, lang: str
) -> None:
    base = late_morning
    context = await browser.new_context(locale=browsing.LOCALES[lang], bypass_csp=True)
    words = {
        "id": ("Buat alamat kalender", "Salin", "Tersalin"),
        "en": ("Make a calendar address", "Copy", "Copied"),
    }[lang]
    try:
        page = await context.new_page()
        await browsing.sign_in(page, base, lang, "Ani Lestari")
        await page.goto(base + "/bookings")
        await page.get_by_role("button", name=words[0], exact=True).click()
        await page.wait_for_load_state()
        address = await page.input_value("#feed-url")
        assert address.startswith(base + "/feeds/bookings/")
        href = await page.locator('a[href^="webcal://"]').get_attribute("href")
        assert href == "webcal://" + address.split("://", 1)[1]
        await page.get_by_role("button", name=words[1], exact=True).click()
        await page.get_by_role("button", name=words[2], exact=True).wait_for()
        selected = await page.evaluate(
            "document.getSelection().toString() || document.activeElement.id"
        )
        violations = await browsing._violations(page)
        await browsing.photograph(page, f"bookings-feed-{lang}")
    finally:
        await context.close()
    assert selected in (address, "feed-url")
    assert violations == []


@pytest.mark.browser
@pytest.mark.parametrize("lang", browsing.LOCALES)
async def test_the_pages_states_are_accessible(
    late_morning: str, browser: Browser, lang: str
) -> None:
    base = late_morning
    context = await browser.new_context(locale=browsing.LOCALES[lang], bypass_csp=True)
    found: dict[str, list[dict[str, object]]] = {}
    try:
        page = await context.new_page()
        await browsing.sign_in(page, base, lang, "Ani Lestari")
        for path in ("/bookings?done=cancelled", "/checkin/d1", "/checkin/d3", "/desks/d1/qr"):
            await page.goto(base + path)
            if path.startswith("/bookings"):  # with a confirmation open
                await page.locator("details.confirm summary").first.click()
            found[path] = await browsing._violations(page)
        await browsing.photograph(page, f"qr-refused-{lang}")
    finally:
        await context.close()
    assert {path: v for path, v in found.items() if v} == {}


@pytest.mark.browser
async def test_the_qr_code_prints_on_one_a6_page(late_morning: str, browser: Browser) -> None:
    base = late_morning
    context = await browser.new_context(locale="id-ID")
    try:
        page = await context.new_page()
        await browsing.sign_in(page, base, "id", "Fajar Nugroho")
        await page.goto(base + "/desks/d1/qr")
        await page.emulate_media(media="print")
        header = await page.locator("header.top").is_visible()
        sheet = await page.locator(".qr-sheet").bounding_box()
        pdfs = [await page.pdf(format=paper) for paper in ("A6", "A4")]
        await page.set_viewport_size({"width": 397, "height": 559})  # A6 at 96 dpi
        browsing.SCREENS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=browsing.SCREENS / "qr-print-a6.png")
    finally:
        await context.close()
    assert not header  # printed: the code and its caption alone
    assert sheet is not None and sheet["width"] <= 85 / 25.4 * 96 + 1  # 85 mm at 96 dpi
    assert [len(re.findall(rb"/Type\s*/Page\b", pdf)) for pdf in pdfs] == [1, 1]


def test_a_walk_up_lasts_until_five_or_the_next_booking() -> None:
    zone = NOW.tzinfo
    assert isinstance(zone, ZoneInfo)
    assert walk_up_end(NOW, zone, None) == NOW.replace(hour=17)
    assert walk_up_end(NOW, zone, NOW.replace(hour=14)) == NOW.replace(hour=14)
    assert walk_up_end(NOW, zone, NOW.replace(hour=8)) is None  # under way
    assert walk_up_end(NOW.replace(hour=17), zone, None) is None


async def test_after_the_working_day_no_walk_up(site: Site) -> None:
    site.clock.now = NOW.replace(hour=17, minute=30)
    await site.sign_in("budi")
    response = await site.client.get("/checkin/d3")
    page = await response.text()
    assert "Jam kerja sudah berakhir: meja tidak dapat dipesan dari sini sekarang." in page
    assert 'name="offer"' not in page


async def test_cancel_after_the_cut_off_is_refused_with_the_reason(site: Site) -> None:
    conn = await asyncpg.connect(site.url)
    try:
        await set_rules(conn, "b1", BookingRules(cancel_cutoff_minutes=60))
    finally:
        await conn.close()
    period = (NOW.replace(minute=30), NOW.replace(hour=11))  # within the hour
    soon = await insert_booking(site.url, "budi", "d2", period)
    await site.sign_in("budi")
    for lang, reason in (
        ("id", "Sudah terlambat untuk membatalkan pemesanan ini; hubungi pengelola gedung."),
        ("en", "Too late to cancel this booking; ask a facility manager."),
    ):
        refused = await post(site, f"/bookings/{soon}/cancel", lang=lang)
        assert refused.status == 409
        assert reason in await refused.text()
    assert await status_of(site.url, soon) == "booked"


async def test_the_platform_keeps_no_access_log(caplog: pytest.LogCaptureFixture) -> None:
    """``api.server.serving`` (what ``ikn serve`` runs) logs no request line, so a feed's
    secret in its path is written nowhere."""
    caplog.set_level(logging.DEBUG)
    app = web.Application()

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get(feeds.PATH, answer)
    async with serving(app, "127.0.0.1", 0) as runner:
        port = runner.addresses[0][1]
        async with ClientSession() as client:
            response = await client.get(f"http://127.0.0.1:{port}/feeds/bookings/s3cret.ics")
            assert await response.text() == "ok"
    assert not [r for r in caplog.records if "s3cret" in r.getMessage()]
