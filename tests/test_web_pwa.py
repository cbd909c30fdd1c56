"""The pages as an installable app (issue 18) over HTTP with a real PostgreSQL: the
manifest, the service worker at /sw.js and the offline page with their types and
caching; gzip of the pages and their files (with sane ETags); a check-in queued offline
(``client_time``) stored at the phone's time with the server's receipt, refused in
Indonesian and English when that time is in the future or too old, and named in the
day's explanation; then in a real browser: offline, the check-in waits on the phone;
back online it is sent and shown.

The no-show release job runs on the real clock, the pages on ``NOW``: it is stopped."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, BrowserContext, Page

from ikn_core.attendance import PlaceType
from ikn_core.attendance.sent import (
    SKEW,
    SentInFuture,
    SentTimeUnreadable,
    SentTooLongAgo,
    event_time,
    offline_note,
    parse_sent,
)
from ikn_service import attendance
from ikn_store.attendance.days import recompute_dirty
from tests import test_web_browser as browsing
from tests.helpers import eventually
from tests.test_web import Site
from tests.test_web_bookings import hours, insert_booking, post, text_of
from tests.web_site import (
    DEV_LOGIN,
    NOW,
    WITA,
    Clock,
    seed_people,
    serving_site,
    site_app,
)
from web import sessions, static
from web.ports import PORTS

# bookings on NOW's day must not be released by the job on the real clock
pytestmark = pytest.mark.usefixtures("no_release")

GZIP = {"Accept-Encoding": "gzip, deflate, br"}


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    await seed_people(database_url)
    clock = Clock()
    async with TestClient(TestServer(site_app(database_url, clock, DEV_LOGIN))) as client:
        yield Site(client, clock, database_url)


async def test_the_manifest_names_the_app_and_its_icons(site: Site) -> None:
    response = await site.client.get("/manifest.webmanifest")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/manifest+json"
    assert response.headers["Cache-Control"] == "no-cache"
    found = json.loads(await response.text())
    assert (found["name"], found["short_name"], found["lang"]) == ("IKN Workspace", "IKN", "id")
    assert (found["start_url"], found["display"]) == ("/", "standalone")
    assert (found["theme_color"], found["background_color"]) == ("#0b4f8a", "#f2f5f8")
    sizes = {icon["sizes"]: icon for icon in found["icons"]}
    assert sizes["any"]["type"] == "image/svg+xml"
    for size in ("192x192", "512x512"):
        icon = await site.client.get(sizes[size]["src"])
        assert (icon.status, icon.content_type) == (200, "image/png")
        width = int(size.split("x")[0])
        assert (await icon.read())[16:24] == width.to_bytes(4, "big") * 2  # IHDR's size


async def test_every_page_links_the_manifest_and_registers_the_worker(site: Site) -> None:
    await site.sign_in("ani")
    response = await site.client.get("/")
    page = await response.text()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert '<meta name="theme-color" content="#0b4f8a">' in page
    assert '<link rel="apple-touch-icon" href="/static/icons/icon-192.png?v=' in page
    assert f'<script type="module" src="{static.asset_url("app.js")}"></script>' in page
    csp = response.headers["Content-Security-Policy"]
    assert "manifest-src 'self'" in csp and "worker-src 'self'" in csp
    api = await site.client.get("/api/v1/health")
    assert "manifest-src" not in api.headers["Content-Security-Policy"]  # the API's own


async def test_the_service_worker_is_at_the_root_never_kept_without_asking(site: Site) -> None:
    response = await site.client.get("/sw.js")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    worker = await response.text()
    shell = ("site.css", "app.js", "queue.js", "icons/icon.svg", "icons/icon-512.png")
    for name in (*shell, static.vendored("htmx.org")):
        assert static.asset_url(name) in worker  # the shell it keeps, this version's
    assert '"/offline"' in worker
    again = await site.client.get("/sw.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    missing = await site.client.get("/static/sw.js")
    assert missing.status == 404  # only at the root


async def test_the_offline_page_is_in_the_persons_language(site: Site) -> None:
    indonesian = await site.client.get("/offline")
    assert indonesian.status == 200
    assert "<h1>Anda sedang luring</h1>" in await indonesian.text()
    english = await site.client.get("/offline", headers={"Accept-Language": "en"})
    assert "<h1>You are offline</h1>" in await english.text()


async def test_the_session_token_for_the_queue_or_401(site: Site) -> None:
    visitor = await site.client.get("/offline/token")
    assert visitor.status == 401
    await site.sign_in("ani")
    token = await site.client.get("/offline/token")
    assert token.status == 200 and token.headers["Cache-Control"] == "no-store"
    found = await token.json()
    assert found["person"] == "ani"
    # masked anew in every answer (BREACH), the same token inside
    page_token = await site.csrf("/")
    assert found["csrf"] != page_token
    assert sessions.unmask(found["csrf"]) == sessions.unmask(page_token) != ""


async def _size(site: Site, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """The bytes sent for ``path`` (compressed, as they came) and their coding."""
    response = await site.client.get(path, headers=headers, auto_decompress=False)
    assert response.status == 200, path
    return len(await response.read()), response.headers.get("Content-Encoding", "")


async def test_today_and_its_files_are_gzipped_under_the_targets(site: Site) -> None:
    await site.sign_in("ani")
    page = await site.client.get("/", headers=GZIP, auto_decompress=False)
    assert page.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in page.headers["Vary"]
    html = await page.read()
    assert b"<h1>Hari ini</h1>" in gzip.decompress(html)
    names = ("site.css", static.vendored("htmx.org"), "app.js", "queue.js", "icons/icon.svg")
    first, plain = len(html), 0
    for name in names:
        sent, coding = await _size(site, static.asset_url(name), GZIP)
        assert coding == "gzip", name
        first += sent
        plain += (await _size(site, static.asset_url(name), {"Accept-Encoding": "identity"}))[0]
    plain += len(gzip.decompress(html))
    print(f"Today, first load: {plain} bytes, {first} gzipped; again: {len(html)}")
    assert first < 100_000 and first < plain / 2  # the first load, compressed
    assert len(html) < 10_000  # a repeat load: the page alone, its files kept a year


async def test_a_files_etag_names_its_coding(site: Site) -> None:
    url = static.asset_url("site.css")
    zipped = await site.client.get(url, headers=GZIP)
    plain = await site.client.get(url, headers={"Accept-Encoding": "identity"})
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert zipped.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    again = await site.client.get(url, headers={**GZIP, "If-None-Match": zipped.headers["ETag"]})
    assert again.status == 304
    stale = await site.client.get("/static/site.css?v=000000000000")
    assert stale.headers["Cache-Control"] == "no-cache"  # not this version's address


async def _checked_in(url: str, booking_id: uuid.UUID) -> asyncpg.Record:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """SELECT k.status, k.checked_in_at, k.check_in_received_at, s.id AS signal,
                      s.at, s.received_at
               FROM bookings k
               LEFT JOIN attendance_signals s ON s.source = 'booking:' || k.id::text
               WHERE k.id = $1""",
            booking_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return row


async def _queued(site: Site, path: str, sent: str, lang: str = "id") -> tuple[int, str]:
    response = await post(site, path, lang=lang, client_time=sent)
    return response.status, text_of(await response.text())


async def test_a_check_in_queued_offline_is_stored_at_the_phones_time(site: Site) -> None:
    booking = await insert_booking(site.url, "budi", "d2", hours(NOW, 9, 12))
    await site.sign_in("budi")
    tapped = NOW - timedelta(minutes=14)  # 08:46 WITA, in the check-in window
    status, _ = await _queued(site, f"/bookings/{booking}/check-in", tapped.isoformat())
    assert status == 303
    found = await _checked_in(site.url, booking)
    assert found["status"] == "checked_in"
    assert (found["checked_in_at"], found["check_in_received_at"]) == (tapped, NOW)
    assert (found["at"], found["received_at"]) == (tapped, NOW)  # the attendance signal


async def test_a_check_in_sent_at_once_has_no_receipt_of_its_own(site: Site) -> None:
    booking = await insert_booking(site.url, "budi", "d2", hours(NOW, 9, 12))
    await site.sign_in("budi")
    response = await post(site, f"/bookings/{booking}/check-in")
    assert response.status == 303
    found = await _checked_in(site.url, booking)
    assert (found["checked_in_at"], found["check_in_received_at"]) == (NOW, None)


@pytest.mark.parametrize(
    ("sent", "indonesian", "english"),
    [
        (
            NOW + SKEW + timedelta(seconds=30),
            "jam ponsel lebih cepat",
            "the phone's clock is ahead of the right time",
        ),
        (
            NOW - timedelta(hours=24, minutes=1),
            "terlalu lama menunggu di ponsel",
            "it waited on the phone too long to count",
        ),
        ("08:46", "waktu ponsel tidak dapat dibaca", "the phone's time could not be read"),
    ],
)
async def test_a_queued_check_in_out_of_bounds_is_refused(
    site: Site, sent: datetime | str, indonesian: str, english: str
) -> None:
    booking = await insert_booking(site.url, "budi", "d2", hours(NOW, 9, 12))
    await site.sign_in("budi")
    text = sent if isinstance(sent, str) else sent.isoformat()
    path = f"/bookings/{booking}/check-in"
    status, page = await _queued(site, path, text)
    assert status == 422 and indonesian in page
    status, page = await _queued(site, path, text, lang="en")
    assert status == 422 and english in page
    assert (await _checked_in(site.url, booking))["status"] == "booked"


async def test_within_the_skew_a_phone_a_little_ahead_is_believed(site: Site) -> None:
    booking = await insert_booking(site.url, "budi", "d2", hours(NOW, 9, 12))
    await site.sign_in("budi")
    ahead = NOW + SKEW - timedelta(seconds=5)
    status, _ = await _queued(site, f"/bookings/{booking}/check-in", ahead.isoformat())
    assert status == 303
    assert (await _checked_in(site.url, booking))["checked_in_at"] == ahead


async def test_at_the_desk_a_queued_check_in_keeps_the_phones_time(site: Site) -> None:
    booking = await insert_booking(site.url, "budi", "d2", hours(NOW, 9, 12))
    await site.sign_in("budi")
    tapped = NOW - timedelta(minutes=10)
    response = await post(site, "/checkin/d2", offer="check-in", client_time=tapped.isoformat())
    assert response.status == 303
    assert (await _checked_in(site.url, booking))["checked_in_at"] == tapped
    later = await post(site, "/checkin/d2", lang="en", offer="check-in", client_time="soon")
    assert later.status == 422
    assert "the phone's time could not be read" in await later.text()


async def test_the_days_explanation_names_a_signal_sent_offline(site: Site) -> None:
    booking = await insert_booking(site.url, "budi", "d2", hours(NOW, 9, 12))
    await site.sign_in("budi")
    tapped = NOW - timedelta(minutes=14)
    await _queued(site, f"/bookings/{booking}/check-in", tapped.isoformat())
    signal = (await _checked_in(site.url, booking))["signal"]
    ports = site.client.app[PORTS]
    async with ports.pool().acquire() as conn:  # its codecs read the record's JSON
        await recompute_dirty(conn, ports.policies())
        record = await conn.fetchval(
            "SELECT record FROM attendance_days WHERE person_id = 'budi' AND day = $1",
            NOW.date(),
        )
    reasons = record["reasons"]
    line = f"booking_check_in s{signal} at 08:46 WITA sent offline, received 09:00 WITA"
    assert line in reasons
    assert offline_note("app_check_in", "s1", tapped, NOW, WITA) == (
        "app_check_in s1 at 08:46 WITA sent offline, received 09:00 WITA"
    )


async def _screens(page: Page, name: str) -> None:
    await browsing.photograph(page, name)
    await page.set_viewport_size({"width": 360, "height": 800})


async def _offline_page(context: BrowserContext, base: str) -> tuple[str, str]:
    """Another tab, offline: a page asked for is the offline page, from the cache, with
    what waits on the phone. Its heading and its list."""
    page = await context.new_page()
    try:
        await page.goto(base + "/")
        await page.locator("#offline-queue li").first.wait_for()  # no eval: the CSP applies
        await _screens(page, "offline-queued-id")
        heading = await page.text_content("h1")
        listed = await page.text_content("#offline-queue")
    finally:
        await page.close()
    return heading or "", listed or ""


@pytest.mark.browser
async def test_offline_a_check_in_waits_on_the_phone_then_is_sent(
    database_url: str, browser: Browser
) -> None:
    await seed_people(database_url)
    booking = await insert_booking(database_url, "budi", "d2", hours(NOW, 9, 12))
    tapped = NOW - timedelta(minutes=14)  # the phone's clock: 08:46 WITA, the server's 09:00
    async with serving_site(database_url, Clock()) as server:
        base = str(server.make_url("")).rstrip("/")
        context = await browser.new_context(
            locale="id-ID", timezone_id="Asia/Makassar", viewport={"width": 360, "height": 800}
        )  # the pages' own CSP applies
        watch = browsing.Watch(base)
        context.on("weberror", lambda e: watch.errors.append(str(e.error)))
        try:
            await context.clock.set_fixed_time(tapped)
            page = await context.new_page()
            page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
            await browsing.sign_in(page, base, "id", "Budi Santoso")
            await page.goto(base + "/bookings")
            await page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # shell kept
            await context.set_offline(True)
            await page.get_by_role("button", name="Check-in", exact=True).click()
            queued = page.locator("#offline-note")
            await queued.filter(has_text="Disimpan").wait_for()
            said = await queued.text_content()
            await _screens(page, "bookings-queued-id")
            while_offline = await _checked_in(database_url, booking)
            heading, listed = await _offline_page(context, base)
            async with page.expect_navigation():  # sent, then the page again
                await context.set_offline(False)
            await page.locator("#offline-note").filter(has_text="Terkirim").wait_for()
            shown = await page.locator("main").text_content()
            await _screens(page, "bookings-sent-id")
        finally:
            await context.close()
        stored = await _checked_in(database_url, booking)
    assert said == "Disimpan di ponsel ini: akan dikirim saat Anda kembali daring."
    assert while_offline["status"] == "booked"
    assert heading == "Anda sedang luring"
    assert "Check-in: meja d2, 09.00 WITA – 12.00 WITA (dibuat pukul 08.46)" in listed
    assert shown is not None and "Meja d2 09.00 WITA – 12.00 WITA Sudah check-in" in " ".join(
        shown.split()
    )
    assert stored["status"] == "checked_in"
    assert (stored["checked_in_at"], stored["check_in_received_at"]) == (tapped, NOW)
    assert watch.errors == []


async def _end_sessions(url: str) -> None:
    """Every session ends, as an idle one does."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM web_sessions")
    finally:
        await conn.close()


@pytest.mark.browser
async def test_a_queue_whose_session_ended_waits_for_its_person_to_sign_in(
    database_url: str, browser: Browser
) -> None:
    await seed_people(database_url)
    booking = await insert_booking(database_url, "budi", "d2", hours(NOW, 9, 12))
    tapped = NOW - timedelta(minutes=5)
    async with serving_site(database_url, Clock()) as server:
        base = str(server.make_url("")).rstrip("/")
        context = await browser.new_context(locale="en-US", timezone_id="Asia/Makassar")
        try:
            await context.clock.set_fixed_time(tapped)
            page = await context.new_page()
            await browsing.sign_in(page, base, "en", "Budi Santoso")
            await page.goto(base + "/bookings")
            await context.set_offline(True)
            await page.get_by_role("button", name="Check in", exact=True).click()
            note = page.locator("#offline-note")
            await note.filter(has_text="Saved on this phone").wait_for()
            await _end_sessions(database_url)
            await context.set_offline(False)
            await note.filter(has_text="sign in again").wait_for()
            said = await note.text_content()
            kept = await _checked_in(database_url, booking)
            await browsing.sign_in(page, base, "en", "Ani Lestari")  # a shared phone
            await page.locator("#offline-note").filter(has_text="sign in again").wait_for()
            not_hers = await _checked_in(database_url, booking)
            await page.get_by_role("button", name="Sign out").click()
            await browsing.sign_in(page, base, "en", "Budi Santoso")  # Today sends it
            await page.locator("#offline-note").filter(has_text="Sent:").wait_for()
        finally:
            await context.close()
        stored = await _checked_in(database_url, booking)
    assert said == "Waiting on this phone: sign in again to send it."
    assert kept["status"] == not_hers["status"] == "booked"  # never in Ani's session
    assert (stored["checked_in_at"], stored["check_in_received_at"]) == (tapped, NOW)


async def test_an_app_clock_in_sent_offline_keeps_both_times(site: Site) -> None:
    """The clock-in form's service (``ikn_service.attendance.clock``) with ``sent``."""
    ports = site.client.app[PORTS]
    policy = ports.policies().in_force(NOW.date())
    tapped = NOW - timedelta(minutes=30)

    def clocking(sent: datetime) -> attendance.Clock:
        source = f"web:{uuid.uuid4()}"
        return attendance.Clock("budi", "app_check_in", NOW, PlaceType.HOME, None, source, sent)

    async with ports.pool().acquire() as conn:
        stored = await attendance.clock(conn, clocking(tapped), policy)
        with pytest.raises(SentTooLongAgo):
            await attendance.clock(conn, clocking(NOW - timedelta(hours=25)), policy)
        received = await conn.fetchval(
            "SELECT received_at FROM attendance_signals WHERE id = $1", stored.id
        )
        await recompute_dirty(conn, ports.policies())

        async def day_record() -> Any:
            # the API's own attendance job may hold the dirty day (SKIP LOCKED) a moment
            return await conn.fetchval(
                "SELECT record FROM attendance_days WHERE person_id = 'budi' AND day = $1",
                NOW.date(),
            )

        record = await eventually(day_record, lambda r: r is not None)
    assert (stored.at, received) == (tapped, NOW)
    line = f"app_check_in s{stored.id} at 08:30 WITA sent offline, received 09:00 WITA"
    assert record["reasons"][0] == line


def test_the_bounds_of_the_phones_time() -> None:
    day = timedelta(hours=24)
    assert event_time(None, NOW, day) == NOW  # sent at once: the receipt
    assert event_time(NOW + SKEW, NOW, day) == NOW + SKEW
    assert event_time(NOW - day, NOW, day) == NOW - day
    with pytest.raises(SentInFuture):
        event_time(NOW + SKEW + timedelta(seconds=1), NOW, day)
    with pytest.raises(SentTooLongAgo):
        event_time(NOW - day - timedelta(seconds=1), NOW, day)
    with pytest.raises(SentTimeUnreadable):
        parse_sent("2026-12-07T08:46:00")  # no offset: no moment
    assert parse_sent("2026-12-07T08:46:00+08:00") == NOW - timedelta(minutes=14)


@pytest.mark.browser
async def test_chromium_finds_the_app_installable(database_url: str, browser: Browser) -> None:
    """Chromium's own check (DevTools: the manifest read without error, and nothing
    against installing it but the private window a test runs in)."""
    await seed_people(database_url)
    async with serving_site(database_url, Clock()) as server:
        base = str(server.make_url("")).rstrip("/")
        context = await browser.new_context(locale="id-ID")
        try:
            page = await context.new_page()
            await page.goto(base + "/login")
            await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
            cdp = await context.new_cdp_session(page)
            manifest = await cdp.send("Page.getAppManifest")
            installable = await cdp.send("Page.getInstallabilityErrors")
        finally:
            await context.close()
    assert manifest["errors"] == []
    errors = [e["errorId"] for e in installable["installabilityErrors"]]
    assert [e for e in errors if e != "in-incognito"] == []  # a test's context is one
