"""My attendance and Requests over HTTP with a real PostgreSQL, on the fixed clock of
tests/web_site.py (Mon 7 Dec 2026, 09:00 WITA): the month as a calendar with each
day's state in words, a day's explanation, a bad month answered 400 in the person's
language, the remote clock-in stored and shown, requests filed and refused with the
field's message in Indonesian and English; and in a real browser, Ani's flow with the
keyboard alone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page

from tests import test_web_browser as browsing
from tests.helpers import fetch
from tests.test_web import Site
from tests.web_site import (
    DEV_LOGIN,
    WITA,
    Clock,
    seed_attendance,
    seed_people,
    serving_site,
    site_app,
)


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    await seed_people(database_url)
    await seed_attendance(database_url)
    clock = Clock()  # set before signing in: sessions run on it
    async with TestClient(TestServer(site_app(database_url, clock, DEV_LOGIN))) as client:
        yield Site(client, clock, database_url)


def text_of(page: str) -> str:
    """The page's words, tags dropped, spaces folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


async def get(site: Site, path: str, lang: str = "id") -> ClientResponse:
    return await site.client.get(path, cookies={"ikn_lang": lang}, allow_redirects=False)


async def post(site: Site, path: str, lang: str = "id", **form: str) -> ClientResponse:
    token = await site.csrf("/attendance")
    return await site.client.post(
        path,
        data={"csrf_token": token, **form},
        headers=site.origin,
        cookies={"ikn_lang": lang},
        allow_redirects=False,
    )


def cell(page: str, day: str) -> str:
    """The words of the calendar's cell of ``day`` (``2026-12-02``)."""
    found = re.search(rf'<a href="/attendance/{day}">(.*?)</a>', page, re.S)
    assert found is not None, f"no link to {day}"
    return text_of(found[1])


async def test_the_month_shows_each_days_state_in_words(site: Site) -> None:
    await site.sign_in("ani")
    response = await get(site, "/attendance")
    assert response.status == 200
    page = await response.text()
    assert "Desember 2026" in page
    assert "Bekerja di kantor" in cell(page, "2026-12-01")
    assert "terlambat 22 menit" in cell(page, "2026-12-02")
    assert "Bekerja dari jarak jauh" in cell(page, "2026-12-03")
    assert "Cuti" in cell(page, "2026-12-04")
    assert "Akhir pekan atau hari libur" in cell(page, "2026-12-05")
    assert 'href="/attendance/2026-12-08"' not in page  # tomorrow: nothing to explain
    assert 'href="/attendance?month=2026-11"' in page
    november = await (await get(site, "/attendance?month=2026-11", "en")).text()
    assert "November 2026" in november
    assert "Absent without an excuse" in cell(november, "2026-11-30")  # no signal
    assert "Weekend or holiday" in cell(november, "2026-11-29")
    assert "On official travel (dinas luar)" in cell(november, "2026-11-27")


async def test_a_day_explains_its_signals_and_rules(site: Site) -> None:
    await site.sign_in("ani")
    response = await get(site, "/attendance/2026-12-02")
    assert response.status == 200
    page = text_of(await response.text())
    assert "Rabu, 02 Desember 2026" in page
    assert "Terlambat 22 menit" in page
    assert "07.52 WITA Tap kartu masuk Di kantor (gedung b1)" in page
    assert "16.10 WITA Tap kartu pulang" in page
    assert "22 min late against 07:30" in page  # the rule, as recorded
    leave = text_of(await (await get(site, "/attendance/2026-12-04", "en")).text())
    assert "On leave (cuti)" in leave and "No signal counts on this day." in leave


@pytest.mark.parametrize(
    ("path", "lang", "words"),
    [
        ("/attendance?month=2026-13", "id", "Bulan (month) harus ditulis TTTT-BB"),
        ("/attendance?month=desember", "en", "The month (month) must be written YYYY-MM"),
        ("/attendance/2026-02-30", "en", "The day must be a date YYYY-MM-DD"),
        ("/attendance/2026-12-08", "id", "Hari harus berupa tanggal"),  # tomorrow
    ],
)
async def test_a_bad_month_or_day_is_a_400_naming_it(
    site: Site, path: str, lang: str, words: str
) -> None:
    await site.sign_in("ani")
    response = await get(site, path, lang)
    assert response.status == 400
    assert words in text_of(await response.text())


async def signals_of(site: Site, person: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(site.url)
    try:
        found: list[asyncpg.Record] = await conn.fetch(
            """SELECT kind, place_type, building_id, lat, source FROM attendance_signals
               WHERE person_id = $1 AND source NOT LIKE 'seed:%' ORDER BY id""",
            person,
        )
    finally:
        await conn.close()
    return found


async def test_a_remote_clock_in_is_stored_and_shown(site: Site) -> None:
    await site.sign_in("budi")
    response = await post(site, "/attendance/clock", action="in", place_type="home")
    assert response.status == 303
    assert response.headers["Location"] == "/attendance?done=clocked-in"
    stored = await signals_of(site, "budi")
    assert [(r["kind"], r["place_type"], r["lat"]) for r in stored] == [
        ("app_check_in", "home", None)
    ]
    assert stored[0]["source"].startswith("web:")
    page = await (await get(site, "/attendance?done=clocked-in")).text()
    assert "Absen masuk Anda tercatat." in page
    assert "Bekerja dari jarak jauh" in cell(page, "2026-12-07")
    today = text_of(await (await get(site, "/attendance/2026-12-07", "en")).text())
    assert "9:00 AM WITA Clock-in from the app At home" in today


async def test_today_clocks_in_too_and_comes_back(site: Site) -> None:
    await site.sign_in("budi")
    today = await (await get(site, "/")).text()
    assert 'action="/attendance/clock"' in today and 'data-offline="queue"' in today
    response = await post(site, "/attendance/clock", action="in", place_type="field", next="/")
    assert response.headers["Location"] == "/?done=clocked-in"
    page = text_of(await (await get(site, "/?done=clocked-in")).text())
    assert "Absen masuk Anda tercatat." in page
    assert "Bekerja dari jarak jauh" in page  # Today's attendance card


async def test_an_office_clock_in_needs_a_location_inside_the_geofence(site: Site) -> None:
    await site.sign_in("budi")
    away = await post(site, "/attendance/clock", "en", action="in", place_type="office")
    assert away.status == 422
    assert "needs your location" in text_of(await away.text())
    far = {"share_location": "yes", "lat": "-1.2", "lon": "116.9", "accuracy_m": "10"}
    outside = await post(site, "/attendance/clock", action="in", place_type="office", **far)
    assert outside.status == 422
    assert "tidak berada di area gedung kantor" in text_of(await outside.text())
    near = {"share_location": "yes", "lat": "-0.9745", "lon": "116.7085", "accuracy_m": "8"}
    inside = await post(site, "/attendance/clock", action="in", place_type="office", **near)
    assert inside.status == 303
    unshared = {**near, "share_location": ""}  # no consent: the location is not sent on
    assert (
        await post(site, "/attendance/clock", action="out", place_type="home", **unshared)
    ).status == 303
    stored = await signals_of(site, "budi")
    assert [(r["place_type"], r["building_id"]) for r in stored] == [
        ("office", "b1"),  # inside b1's geofence
        ("home", None),
    ]


async def test_a_request_filed_appears_pending(site: Site) -> None:
    await site.sign_in("ani")
    response = await post(
        site,
        "/requests",
        kind="correction",
        **{"from": "2026-12-02"},
        clock_in="07:28",
        clock_out="",
        reason="Kartu tidak terbaca di pintu",
    )
    assert response.status == 303
    assert response.headers["Location"] == "/requests?done=filed"
    page = text_of(await (await get(site, "/requests?done=filed")).text())
    assert "Koreksi kehadiran" in page and "Menunggu keputusan atasan Anda" in page
    assert "Absen masuk: 07.28 WITA" in page
    assert "Disetujui" in page and "Diputuskan oleh Sari Wulandari" in page  # the leave
    conn = await asyncpg.connect(site.url)
    try:
        row = await conn.fetchrow(
            "SELECT status, clock_in FROM attendance_requests WHERE kind = 'correction'"
        )
    finally:
        await conn.close()
    assert row is not None and row["status"] == "pending"
    assert row["clock_in"] == datetime(2026, 12, 2, 7, 28, tzinfo=WITA)


@pytest.mark.parametrize(
    ("lang", "form", "words"),
    [
        ("id", {"kind": "cuti", "from": "2026-12-10", "reason": ""}, "Berikan alasan"),
        ("en", {"kind": "cuti", "from": "2026-12-10", "reason": ""}, "Give a reason"),
        (
            "id",
            {"kind": "correction", "from": "2026-12-09", "clock_in": "07:30", "reason": "x"},
            "Koreksi hanya untuk hari yang sudah dimulai",
        ),
        (
            "en",
            {
                "kind": "correction",
                "from": "2026-12-02",
                "clock_in": "17:00",
                "clock_out": "08:00",
                "reason": "x",
            },
            "The clock-out must be after the clock-in.",
        ),
        (
            "en",
            {"kind": "dinas_luar", "from": "2026-12-10", "to": "2026-12-09", "reason": "x"},
            "The last day must be on or after the first",
        ),
    ],
)
async def test_an_invalid_request_shows_the_fields_message(
    site: Site, lang: str, form: dict[str, str], words: str
) -> None:
    await site.sign_in("ani")
    response = await post(site, "/requests", lang, **form)
    assert response.status == 422
    page = await response.text()
    assert words in text_of(page)
    assert 'aria-invalid="true"' in page
    assert 'role="alert"' in page and ('href="#field-' in page)  # the summary names it
    assert form.get("reason", "") in page  # what was entered is kept


async def test_a_nul_in_a_form_is_a_400_naming_the_field(site: Site) -> None:
    """PostgreSQL's text cannot hold a NUL: refused before any page writes it (it was
    a 500 from the database), in the error page, naming the field."""
    await site.sign_in("ani")
    count = "SELECT count(*) FROM attendance_requests"
    before = await fetch(site.url, count)
    form = {"kind": "cuti", "from": "2026-12-10", "reason": "a\x00b"}
    response = await post(site, "/requests", "en", **form)
    assert response.status == 400
    assert "reason: must not contain a NUL character" in text_of(await response.text())
    assert await fetch(site.url, count) == before


async def test_a_visitor_signs_in_first_and_writes_need_the_token(site: Site) -> None:
    for path in ("/attendance", "/requests", "/attendance/2026-12-02"):
        response = await site.client.get(path, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"].startswith("/login")
    await site.sign_in("ani")
    for path in ("/attendance/clock", "/requests"):
        form = {"action": "in", "place_type": "home", "kind": "cuti"}
        refused = await site.client.post(path, data=form, headers=site.origin)
        assert refused.status == 403
    assert await signals_of(site, "ani") == []


@pytest.fixture
async def seeded_site(database_url: str) -> AsyncIterator[str]:
    """The whole site on a real port with Ani's history; its address."""
    await seed_people(database_url)
    await seed_attendance(database_url)
    async with serving_site(database_url, Clock()) as server:
        yield str(server.make_url("")).rstrip("/")


async def _screens(page: Page, name: str) -> None:
    """Photographed at every width, and no wider than each (``browsing.photograph``)."""
    await browsing.photograph(page, name)
    for width in browsing.WIDTHS:
        await page.set_viewport_size({"width": width, "height": 800})
        wide = await page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{name} scrolls sideways at {width} px"


async def _tab_to_link(page: Page, href: str, most: int = 80) -> None:
    """Press Tab until the focused element is the link to ``href``."""
    for _ in range(most):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.getAttribute('href')") == href:
            return
    pytest.fail(f"the link to {href} never got the focus")


async def _tab_to_field(page: Page, name: str, most: int = 40) -> None:
    for _ in range(most):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.name") == name:
            return
    pytest.fail(f"the field {name} never got the focus")


@pytest.mark.browser
async def test_ani_explains_a_day_and_asks_for_its_correction_by_keyboard(
    seeded_site: str, browser: Browser
) -> None:
    base = seeded_site
    context = await browser.new_context(locale="id-ID")  # the pages' own CSP applies
    watch = browsing.Watch(base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        await page.goto(base + "/attendance")
        await browsing._tab_to(page, "Masuk sebagai Ani Lestari")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        await page.wait_for_url(base + "/attendance")  # back after signing in
        await _screens(page, "attendance-month-id")
        await _tab_to_link(page, "/attendance/2026-12-02")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        await _screens(page, "attendance-day-id")
        late = await page.locator(".facts").text_content()
        await _tab_to_link(page, "/requests?kind=correction&from=2026-12-02")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        await _tab_to_field(page, "clock_in")
        await page.keyboard.type("0728A")  # a 12-hour field here: AM
        await _tab_to_field(page, "reason")
        await page.keyboard.type("Kartu tidak terbaca di pintu")
        await browsing._tab_to(page, "Kirim pengajuan")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        await _screens(page, "requests-filed-id")
        done = await page.get_by_role("status").text_content()
        listed = await page.locator(".requests li").first.text_content()
    finally:
        await context.close()
    assert late is not None and "22 menit" in late
    assert done == "Pengajuan Anda telah dikirim; atasan Anda yang memutuskannya."
    assert listed is not None
    assert "Koreksi kehadiran" in listed and "Menunggu" in listed and "07.28 WITA" in listed
    assert watch.outside == []
    assert watch.errors == []


@pytest.mark.browser
@pytest.mark.parametrize("lang", browsing.LOCALES)
async def test_the_pages_states_are_accessible(
    seeded_site: str, browser: Browser, lang: str
) -> None:
    base = seeded_site
    context = await browser.new_context(locale=browsing.LOCALES[lang], bypass_csp=True)
    found: dict[str, list[dict[str, object]]] = {}
    try:
        page = await context.new_page()
        await browsing.sign_in(page, base, lang, "Ani Lestari")
        for path in ("/attendance", "/attendance/2026-12-02", "/attendance?month=2026-11"):
            await page.goto(base + path)
            found[path] = await browsing._violations(page)
        await _screens(page, f"attendance-november-{lang}")
        await page.goto(base + "/requests")
        await page.locator("button.primary").click()  # no date, no reason: refused
        await page.wait_for_load_state()
        found["/requests (refused)"] = await browsing._violations(page)
        await _screens(page, f"requests-refused-{lang}")
    finally:
        await context.close()
    assert {path: v for path, v in found.items() if v} == {}


@pytest.mark.browser
async def test_the_browsers_location_is_sent_only_with_consent(
    seeded_site: str, browser: Browser, database_url: str
) -> None:
    base = seeded_site
    context = await browser.new_context(
        locale="id-ID",  # the pages' own CSP applies: geolocate.js is a file of ours
        geolocation={"latitude": -0.9745, "longitude": 116.7085, "accuracy": 12},
        permissions=["geolocation"],
    )
    watch = browsing.Watch(base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        await browsing.sign_in(page, base, "id", "Budi Santoso")
        await page.goto(base + "/attendance")
        await page.get_by_label("Di kantor", exact=True).check()
        unshared = await page.input_value("input[name=lat]")
        await page.get_by_label("Bagikan lokasi saya").check()
        status = page.locator(".geo-status")
        await status.filter(has_text="Lokasi ditemukan").wait_for()
        found = await status.text_content()
        async with page.expect_navigation():
            await page.get_by_role("button", name="Absen masuk").click()
        done = await page.locator(".notice-done").text_content()
    finally:
        await context.close()
    assert unshared == ""  # nothing before consent
    assert found == "Lokasi ditemukan (akurasi 12 m)."
    assert done == "Absen masuk Anda tercatat."
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT place_type, building_id FROM attendance_signals WHERE person_id = 'budi'"
        )
    finally:
        await conn.close()
    assert row is not None and (row["place_type"], row["building_id"]) == ("office", "b1")
    assert watch.outside == []
    assert watch.errors == []


async def test_a_clock_in_queued_offline_keeps_the_phones_time(site: Site) -> None:
    """A clock-in the phone sent late (``client_time``, docs/web.md) counts at the phone's
    time and stores the receipt beside it; a phone clock ahead of ours is refused."""
    await site.sign_in("budi")
    sent = "2026-12-07T08:40:00+08:00"  # 20 minutes before the page's clock, 09:00 WITA
    response = await post(
        site, "/attendance/clock", action="in", place_type="home", client_time=sent
    )
    assert response.status == 303
    conn = await asyncpg.connect(site.url)
    try:
        row = await conn.fetchrow(
            """SELECT at, received_at FROM attendance_signals
               WHERE person_id = 'budi' AND source LIKE 'web:%'"""
        )
    finally:
        await conn.close()
    assert row is not None and row["at"] == datetime.fromisoformat(sent)
    assert row["received_at"] == datetime.fromisoformat("2026-12-07T09:00:00+08:00")
    ahead = "2026-12-07T09:10:00+08:00"
    refused = await post(
        site, "/attendance/clock", "en", action="out", place_type="home", client_time=ahead
    )
    assert "the phone's clock is ahead" in text_of(await refused.text())


async def test_a_remote_clock_in_over_the_weekly_cap_says_so(site: Site) -> None:
    """Budi worked from home on Monday and Tuesday; clocking in from home on Wednesday is
    his third WFA day of the week, over the national cap of 2: stored, and he is told."""
    for day in (7, 8):
        await fetch(
            site.url,
            """INSERT INTO attendance_signals (person_id, kind, at, place_type, source)
               VALUES ('budi', 'app_check_in', $1, 'home', $2)""",
            datetime(2026, 12, day, 7, 20, tzinfo=WITA),
            f"test:{day}",
        )
    site.clock.advance(2 * 86_400)  # Wednesday 9 December, 09:00
    await site.sign_in("budi")
    response = await post(site, "/attendance/clock", action="in", place_type="home")
    assert response.headers["Location"] == "/attendance?done=clocked-in-over-cap"
    page = text_of(await (await get(site, response.headers["Location"])).text())
    assert "melebihi batas mingguan instansi Anda" in page
    assert len(await signals_of(site, "budi")) == 3  # recorded, not refused
