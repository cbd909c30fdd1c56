"""The displays in a real headless Chromium through the whole running application
(issue 19): a lobby kiosk signed in with its display token shows its building's free
desks live and the door's rotating code; a person who opens that code's address
signed in is checked in for the building (their day shows the door's signal, in the
office), and a code older than its window is refused. The kiosk, a desk's and a zone's
display, the display's sign-in and the door's pages have no serious or critical axe
violation in either language, and are photographed (test-artifacts/screens/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from tests.test_web_browser import LOCALES, WIDTHS, Watch, _violations, photograph, sign_in
from tests.test_web_console import sense
from tests.test_web_displays import KEY, count_people, prepare
from tests.web_site import DEV_LOGIN, NOW, Clock, seed_people, serving_site

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_release")]
SIGN_IN_DISPLAY = {"id": "Hubungkan layar ini", "en": "Sign in this display"}
CHECK_IN = {"id": "Saya di sini: check-in", "en": "I am here: check in"}
DONE = {
    "id": "Anda check-in di Gedung Uji pukul 09.00 WITA hari ini.",
    "en": "You checked in at Gedung Uji at 9:00\u202fAM WITA today.",
}
TOO_OLD = {"id": "Kode ini sudah kedaluwarsa", "en": "This code is too old"}
BOOKING_IN = {
    "id": "Pemesanan Anda untuk meja Meja 2 sudah check-in.",
    "en": "Your booking of desk Meja 2 is checked in.",
}
MAKE = {"id": "Buat token", "en": "Make the token"}
REVOKE = {"id": "Cabut lobby-b2", "en": "Revoke lobby-b2"}
MY_DAY = {"id": "Kehadiran saya hari ini", "en": "My attendance today"}
DOOR_SIGNAL = {"id": "Kode pintu dipindai", "en": "Door code scanned"}


@dataclass
class Running:
    server: TestServer
    clock: Clock
    tokens: dict[str, str]
    url: str  # the database's

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def running(database_url: str) -> AsyncIterator[Running]:
    await seed_people(database_url)
    tokens = await prepare(database_url)
    clock = Clock()
    async with serving_site(database_url, clock, {**DEV_LOGIN, "IKN_DISPLAY_KEY": KEY}) as srv:
        yield Running(srv, clock, tokens, database_url)


async def book(url: str, person: str, desk: str, start: datetime) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by)
               VALUES ($1, $2, tstzrange($3, $4), $2)""",
            desk,
            person,
            start,
            start + timedelta(hours=2),
        )
    finally:
        await conn.close()


async def sign_in_display(page: Page, run: Running, lang: str) -> None:
    await page.goto(run.base + "/display")
    await page.locator("#display-token").fill(run.tokens["b1"])
    await page.get_by_role("button", name=SIGN_IN_DISPLAY[lang]).click()
    await page.wait_for_url(run.base + "/display/kiosk/b1")


async def live(page: Page) -> None:
    """The display's stream has sent its first frame (a locator: no eval under the CSP)."""
    await page.locator("main[data-frames]").wait_for(state="attached")


async def photograph_and_check(page: Page, name: str, widths: tuple[int, ...] = WIDTHS) -> None:
    await photograph(page, name, widths)
    assert await _violations(page) == []


@pytest.mark.parametrize("lang", LOCALES)
async def test_the_kiosk_and_desk_display_are_live_and_accessible(
    running: Running, browser: Browser, lang: str
) -> None:
    context = await browser.new_context(locale=LOCALES[lang], bypass_csp=True)
    watch = Watch(running.base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        await page.goto(running.base + "/display")
        await photograph_and_check(page, f"display-signin-{lang}")
        await sign_in_display(page, running, lang)
        await live(page)
        assert await page.get_attribute("html", "lang") == lang
        floor = page.locator('[data-floor="b1-f1"] .kiosk-count')
        assert await floor.text_content() == "1"
        await sense(running.url, "d2", True, NOW)
        await page.wait_for_function(
            "document.querySelector('[data-floor=\"b1-f1\"]').dataset.free === '0'"
        )
        assert await floor.text_content() == "0"  # live, without a reload
        await photograph_and_check(page, f"kiosk-{lang}", (1920, *WIDTHS))
        for desk, sign in (("d1", "booked"), ("d2", "occupied"), ("d3", "free")):
            await page.goto(running.base + f"/display/desk/{desk}")
            await live(page)
            assert await page.get_attribute(".desk-sign", "data-sign") == sign  # d1: Ani's
            await photograph_and_check(page, f"desk-display-{sign}-{lang}", (800, 360))
        await count_people(running.url, "b1-f1-a", 3)
        await page.goto(running.base + "/display/zone/b1-f1-a")
        await live(page)
        occupied = page.locator('[data-sign="occupied"] .zone-sign-count')
        assert await occupied.text_content() == "1"  # d2, sensed above
        await sense(running.url, "d2", False, NOW)
        await page.wait_for_function(
            "document.querySelector('[data-sign=\"occupied\"]').dataset.count === '0'"
        )
        await photograph_and_check(page, f"zone-display-{lang}", (1920, *WIDTHS))
    finally:
        await context.close()
    assert watch.outside == []
    assert watch.errors == []


@pytest.mark.parametrize("lang", LOCALES)
async def test_scanning_the_kiosks_code_checks_a_person_in_and_an_old_code_is_refused(
    running: Running, browser: Browser, lang: str
) -> None:
    kiosk = await browser.new_context(locale=LOCALES[lang])  # the pages' own CSP
    phone = await browser.new_context(locale=LOCALES[lang], bypass_csp=True)  # for axe
    watch = Watch(running.base)
    await watch.attach(kiosk)
    await watch.attach(phone)
    try:
        screen = await kiosk.new_page()
        await sign_in_display(screen, running, lang)
        await live(screen)
        url = await screen.get_attribute(".door-qr", "data-door-url")
        assert url is not None and url.startswith(running.base + "/door?b=b1&w=")
        await book(running.url, "budi", "d2", NOW.replace(hour=10))
        me = await phone.new_page()
        await sign_in(me, running.base, lang, "Budi Santoso")
        await me.goto(url)
        await photograph_and_check(me, f"door-{lang}")
        await me.get_by_role("button", name=CHECK_IN[lang]).click()
        await me.wait_for_url(running.base + "/door/done?b=b1")
        assert await me.get_by_role("status").text_content() == DONE[lang]
        await me.get_by_text(BOOKING_IN[lang]).wait_for()  # his booking of d2, later today
        await photograph_and_check(me, f"door-done-{lang}")
        await me.get_by_role("link", name=MY_DAY[lang]).click()
        await me.get_by_text(DOOR_SIGNAL[lang]).wait_for()
        assert await me.locator(".badge.state-wfo").count() == 1  # the day: in the office
        running.clock.advance(60)  # the code's window and the next are over
        answer = await me.goto(url)
        assert answer is not None and answer.status == 410
        assert TOO_OLD[lang] in (await me.get_by_role("alert").text_content() or "")
        await photograph_and_check(me, f"door-refused-{lang}")
    finally:
        await kiosk.close()
        await phone.close()
    assert watch.outside == []
    # Chromium logs the refused code's status: the one error, and meant
    assert watch.errors == [
        "Failed to load resource: the server responded with a status of 410 (Gone)"
    ]


@pytest.mark.parametrize("lang", LOCALES)
async def test_a_manager_makes_and_revokes_display_tokens_in_the_console(
    running: Running, browser: Browser, lang: str
) -> None:
    context = await browser.new_context(locale=LOCALES[lang], bypass_csp=True)
    watch = Watch(running.base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        await sign_in(page, running.base, lang, "Fajar Nugroho")
        await page.goto(running.base + "/console/displays")
        await photograph_and_check(page, f"console-displays-listed-{lang}")
        await page.locator("#display-name").fill("hall-north")
        await page.get_by_role("button", name=MAKE[lang]).click()
        token = await page.locator("#display-token").text_content()
        assert token is not None and token.startswith("iknd_")
        await photograph_and_check(page, f"console-display-made-{lang}")
        await page.goto(running.base + "/console/displays")
        assert await page.locator("[data-display]").count() == 3
        await page.get_by_role("button", name=REVOKE[lang]).click()
        await page.wait_for_url(running.base + "/console/displays?revoked=lobby-b2")
        assert await page.locator("[data-display]").count() == 2
        await page.get_by_role("status").wait_for()
    finally:
        await context.close()
    assert watch.outside == []
    assert watch.errors == []
