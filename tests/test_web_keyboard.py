"""The staff flows in a real browser, end to end on one running platform: a delegate
books a desk for a colleague on the Find-a-desk page; a booking refused by a rule says
why in Indonesian and, switched to English, in English; and the whole day keyboard-only
(``keyboard.press`` and typing, never a click): sign in, find and book a desk on the
floor plan, see it in My bookings, check in through the desk's QR address, cancel
another booking, clock in, ask for a correction, the supervisor approves it, and the
person's day changes.

The no-show release job runs on the real clock, the pages on a test clock: it is
stopped here, so that bookings of the clock's day stay booked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import pytest
from playwright.async_api import Browser, Page

from ikn_core.booking import BookingRules
from ikn_store.booking.places import set_rules
from tests import test_web_browser as browsing
from tests.test_web_attendance import _tab_to_field, _tab_to_link
from tests.test_web_desks import DEWI, seed_desks
from tests.web_site import NOW, Clock, seed_attendance, serving_site

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_release")]

MIDDAY = NOW.replace(hour=12, minute=30)  # Find a desk's window: 13:00-17:00 WITA
TOMORROW_10 = NOW.replace(hour=10) + timedelta(days=1)


@dataclass
class World:
    base: str
    url: str  # the database's
    clock: Clock


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    """The platform at 12:30 WITA: Ani's d1 booking of the morning (checked in), her
    booking of d3 tomorrow 10:00-12:00, her attendance history, Dewi the delegate."""
    await seed_desks(database_url)
    await seed_attendance(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by)
               VALUES ('d3', 'ani', tstzrange($1, $2), 'ani')""",
            TOMORROW_10,
            TOMORROW_10 + timedelta(hours=2),
        )
    finally:
        await conn.close()
    clock = Clock(MIDDAY)
    async with serving_site(database_url, clock) as server:
        yield World(str(server.make_url("")).rstrip("/"), database_url, clock)


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def _focused(page: Page, script: str = "document.activeElement.textContent.trim()") -> str:
    found: str = await page.evaluate(script)
    return found


FOCUS_SHOWN = """() => {
    const el = document.activeElement, box = el.querySelector('.plan-box');
    if (box) return getComputedStyle(box).stroke === 'rgb(179, 71, 0)';  // --focus
    return getComputedStyle(el).outlineStyle === 'solid';
}"""


async def _focus_is_visible(page: Page) -> bool:
    """The focused element draws the focus colour: an outline, or on the floor plan
    the desk's box (the pages' :focus-visible style, site.css)."""
    shown: bool = await page.evaluate(FOCUS_SHOWN)
    return shown


async def _enter(page: Page) -> None:
    async with page.expect_navigation():
        await page.keyboard.press("Enter")


async def _status(page: Page) -> str:
    return " ".join((await page.get_by_role("status").first.text_content() or "").split())


async def test_a_delegate_books_a_desk_for_a_colleague(world: World, browser: Browser) -> None:
    context = await browser.new_context(locale="id-ID")  # the pages' own CSP applies
    watch = browsing.Watch(world.base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        await browsing.sign_in(page, world.base, "id", DEWI.name)
        await page.goto(world.base + "/desks")
        await page.wait_for_selector("svg.floorplan[data-ready]", state="attached")
        await page.locator('svg.floorplan [data-desk="d2"]').click()
        await page.wait_for_url("**/desks/d2?*")
        await page.get_by_label("Pesan untuk").select_option("budi")
        await browsing.photograph(page, "desks-delegate-id")
        await page.get_by_role("button", name="Pesan", exact=True).click()
        await page.wait_for_url("**/bookings?done=booked")
        done = await _status(page)
    finally:
        await context.close()
    assert done == "Meja sudah dipesan."
    booked = await _fetch(
        world.url, "SELECT person_id, created_by FROM bookings WHERE desk_id = 'd2'"
    )
    assert [tuple(b) for b in booked] == [("budi", "dewi")]
    assert watch.outside == [] and watch.errors == []


async def test_a_refusal_says_why_in_indonesian_then_in_english(
    world: World, browser: Browser
) -> None:
    conn = await asyncpg.connect(world.url)
    try:  # two hours at most: the window of 13:00-17:00 is too long
        await set_rules(conn, "b1", BookingRules(max_minutes=120))
    finally:
        await conn.close()
    context = await browser.new_context(locale="id-ID")
    watch = browsing.Watch(world.base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        await browsing.sign_in(page, world.base, "id", "Ani Lestari")
        await page.goto(world.base + "/desks")
        await page.wait_for_selector("svg.floorplan[data-ready]", state="attached")
        await page.locator('svg.floorplan [data-desk="d2"]').click()
        await page.wait_for_url("**/desks/d2?*")
        await page.get_by_role("button", name="Pesan", exact=True).click()
        await page.wait_for_load_state()
        indonesian = await page.get_by_role("alert").text_content()
        await browsing.photograph(page, "desks-refused-id")
        await page.get_by_role("button", name="English", exact=True).click()
        await page.wait_for_load_state()
        switched = await page.get_attribute("html", "lang")
        back = page.url  # the plan of the refused window again, now in English
        await page.locator('svg.floorplan [data-desk="d2"]').click()
        await page.wait_for_url("**/desks/d2?*")
        await page.get_by_role("button", name="Book", exact=True).click()
        await page.wait_for_load_state()
        english = await page.get_by_role("alert").text_content()
        await browsing.photograph(page, "desks-refused-en")
    finally:
        await context.close()
    assert indonesian is not None and "Durasi pemesanan terlalu lama." in indonesian
    assert switched == "en"
    assert back.startswith(world.base + "/desks?") and "start=13:00" in back
    assert english is not None and "The booking would be too long." in english
    assert await _fetch(world.url, "SELECT 1 FROM bookings WHERE desk_id = 'd2'") == []
    # Chromium logs the refusals' 422 answers, nothing else
    assert watch.outside == []
    assert all("status of 422" in e for e in watch.errors), watch.errors


async def _signs_in_and_books_on_the_plan(page: Page, base: str) -> tuple[bool, str, str]:
    """Signed out on Find a desk: the sign-in page, back on the plan, Tab onto a desk,
    the arrows along it, Enter, then Book. Whether the desk showed its focus, the
    status and My bookings' text."""
    await page.goto(base + "/desks")
    await browsing._tab_to(page, "Masuk sebagai Ani Lestari")
    assert await _focus_is_visible(page)
    await _enter(page)
    await page.wait_for_url(base + "/desks")
    await page.wait_for_selector("svg.floorplan[data-ready]", state="attached")
    await browsing._tab_to(page, "d1")
    shown = await _focus_is_visible(page)
    await page.keyboard.press("ArrowRight")
    assert await _focused(page, "document.activeElement.dataset.desk") == "d2"
    await _enter(page)
    await browsing._tab_to(page, "Pesan")
    await _enter(page)
    await page.wait_for_url("**/bookings?done=booked")
    mine = " ".join((await page.locator("main").text_content() or "").split())
    return shown, await _status(page), mine


async def _checks_in_by_qr_and_cancels(page: Page, world: World) -> tuple[str, str]:
    """20 minutes later at the desk: its QR address, Check in; then tomorrow's booking
    cancelled from My bookings. The two statuses."""
    world.clock.advance(20 * 60)
    await page.goto(world.base + "/checkin/d2")
    await browsing._tab_to(page, "Check-in")
    await _enter(page)
    checked_in = await _status(page)
    await browsing._tab_to(page, "Pemesanan saya")
    await _enter(page)
    await browsing._tab_to(page, "Batalkan…")  # d3's: d2 is checked in now
    await page.keyboard.press("Enter")  # opens the confirmation
    await browsing._tab_to(page, "Ya, batalkan")
    await _enter(page)
    return checked_in, await _status(page)


async def _clocks_in_and_asks_for_a_correction(page: Page) -> tuple[str, str, str]:
    """Clock in from Today (the first place, at home, is chosen already), then a
    correction of today's clock-in from My attendance. The two statuses, and the day's
    facts before the correction."""
    await browsing._tab_to(page, "Hari ini")
    await _enter(page)
    await browsing._tab_to(page, "Absen masuk")
    await _enter(page)
    clocked = await _status(page)
    await browsing._tab_to(page, "Kehadiran saya")
    await _enter(page)
    await _tab_to_link(page, "/attendance/2026-12-07")
    await _enter(page)
    before = " ".join((await page.locator(".facts").text_content() or "").split())
    await _tab_to_link(page, "/requests?kind=correction&from=2026-12-07")
    await _enter(page)
    await _tab_to_field(page, "clock_in")
    await page.keyboard.type("0730A")  # a 12-hour field here: AM
    await _tab_to_field(page, "reason")
    await page.keyboard.type("Kartu tertinggal di rumah")
    await browsing._tab_to(page, "Kirim pengajuan")
    await _enter(page)
    return clocked, await _status(page), before


async def _supervisor_approves(page: Page, base: str) -> str:
    """Ani signs out, Sari signs in and approves from My unit. The status."""
    await browsing._tab_to(page, "Keluar")
    await _enter(page)
    await page.goto(base + "/login")
    await browsing._tab_to(page, "Masuk sebagai Sari Wulandari")
    await _enter(page)
    await browsing._tab_to(page, "Unit saya")
    await _enter(page)
    await browsing._tab_to(page, "Setujui")
    await _enter(page)
    return await _status(page)


async def _sees_her_day(page: Page, base: str) -> str:
    """Sari signs out, Ani signs in and opens today in My attendance. The day's facts."""
    await browsing._tab_to(page, "Keluar")
    await _enter(page)
    await page.goto(base + "/attendance")
    await browsing._tab_to(page, "Masuk sebagai Ani Lestari")
    await _enter(page)
    await _tab_to_link(page, "/attendance/2026-12-07")
    await _enter(page)
    return " ".join((await page.locator(".facts").text_content() or "").split())


async def test_the_whole_day_with_the_keyboard_alone(world: World, browser: Browser) -> None:
    context = await browser.new_context(locale="id-ID")
    watch = browsing.Watch(world.base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        plan_focus, booked, mine = await _signs_in_and_books_on_the_plan(page, world.base)
        checked_in, cancelled = await _checks_in_by_qr_and_cancels(page, world)
        clocked, filed, before = await _clocks_in_and_asks_for_a_correction(page)
        approved = await _supervisor_approves(page, world.base)
        after = await _sees_her_day(page, world.base)
        await browsing.photograph(page, "keyboard-day-corrected-id")
    finally:
        await context.close()
    assert plan_focus, "a desk on the plan shows no focus"
    assert booked == "Meja sudah dipesan."
    assert "Meja d2 13.00 WITA – 17.00 WITA Dipesan" in mine
    assert checked_in == "Anda sudah check-in di meja d2 sampai pukul 17.00 WITA."
    assert cancelled == "Pemesanan dibatalkan."
    assert clocked == "Absen masuk Anda tercatat."
    assert filed == "Pengajuan Anda telah dikirim; atasan Anda yang memutuskannya."
    assert approved == "Pengajuan disetujui."
    # the day changed: clocked in at 12:50 (late 320 minutes), corrected to 07:30
    assert "Absen masuk 12.50 WITA" in before and "Terlambat 320 menit" in before
    assert "Absen masuk 07.30 WITA" in after and "Terlambat Tidak" in after
    rows = await _fetch(
        world.url, "SELECT desk_id, status FROM bookings WHERE person_id = 'ani' ORDER BY desk_id"
    )
    assert [tuple(r) for r in rows] == [
        ("d1", "checked_in"),
        ("d2", "checked_in"),
        ("d3", "cancelled"),
    ]
    decided = await _fetch(
        world.url,
        "SELECT status, decided_by FROM attendance_requests WHERE kind = 'correction'",
    )
    assert [tuple(r) for r in decided] == [("approved", "sari")]
    assert watch.outside == [] and watch.errors == []


async def _books_for_budi(page: Page, base: str) -> str:
    """Dewi signs in, Tab onto d2 on the plan (a free desk is a link), Enter, "for" Budi
    by the select's type-ahead, Book; then signs out. The status."""
    await page.goto(base + "/login")
    await browsing._tab_to(page, f"Masuk sebagai {DEWI.name}")
    await _enter(page)
    await browsing._tab_to(page, "Cari meja")
    await _enter(page)
    await page.wait_for_selector("svg.floorplan[data-ready]", state="attached")
    await browsing._tab_to(page, "d2")
    await _enter(page)
    await _tab_to_field(page, "for")
    await page.keyboard.type("Budi")
    await browsing._tab_to(page, "Pesan")
    await _enter(page)
    await page.wait_for_url("**/bookings?done=booked")
    done = await _status(page)
    await browsing._tab_to(page, "Keluar")
    await _enter(page)
    return done


async def _refused_in_both_languages(page: Page, base: str) -> tuple[str | None, str | None]:
    """Ani books d1 for the afternoon and is refused, switches to English by the
    header's button, books again: the two alerts."""
    await page.goto(base + "/login")
    await browsing._tab_to(page, "Masuk sebagai Ani Lestari")
    await _enter(page)
    alerts = []
    for find, book in (("Cari meja", "Pesan"), ("Find a desk", "Book")):
        if book == "Book":
            await browsing._tab_to(page, "English")
            await _enter(page)
        await browsing._tab_to(page, find)
        await _enter(page)
        await page.wait_for_selector("svg.floorplan[data-ready]", state="attached")
        await browsing._tab_to(page, "d1")
        await _enter(page)
        await browsing._tab_to(page, book)
        await _enter(page)
        alerts.append(await page.get_by_role("alert").text_content())
    await browsing.photograph(page, "desks-refused-keyboard-en")
    return alerts[0], alerts[1]


async def test_a_delegate_and_a_refusal_with_the_keyboard_alone(
    world: World, browser: Browser
) -> None:
    """Dewi books d2 for Budi by keyboard; then, with two hours at most, Ani's booking
    of d1 is refused, she switches to English by keyboard and is told why in English."""
    context = await browser.new_context(locale="id-ID")
    watch = browsing.Watch(world.base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        delegated = await _books_for_budi(page, world.base)
        conn = await asyncpg.connect(world.url)
        try:  # two hours at most: the window of 13:00-17:00 is too long
            await set_rules(conn, "b1", BookingRules(max_minutes=120))
        finally:
            await conn.close()
        indonesian, english = await _refused_in_both_languages(page, world.base)
    finally:
        await context.close()
    assert delegated == "Meja sudah dipesan."
    booked = await _fetch(world.url, "SELECT person_id, created_by, desk_id FROM bookings")
    assert ("budi", "dewi", "d2") in [tuple(b) for b in booked]
    # only the fixture's booking of d1 this morning: the refused one was not made
    assert [tuple(b) for b in booked].count(("ani", "ani", "d1")) == 1
    assert indonesian is not None and "Durasi pemesanan terlalu lama." in indonesian
    assert english is not None and "The booking would be too long." in english
    assert watch.outside == []
    assert all("status of 422" in e for e in watch.errors), watch.errors
