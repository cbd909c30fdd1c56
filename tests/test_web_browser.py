"""The staff pages in a real headless Chromium (Debian's, never a downloaded one) against
the whole application and a real PostgreSQL: every page in both languages has no
serious or critical axe-core violation and is photographed at 1280 and 360 px
(test-artifacts/screens/, not committed); sign-in to Today works with the keyboard
alone, under the pages' Content-Security-Policy, fetching nothing from elsewhere."""

from __future__ import annotations

import asyncio
import base64
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, CDPSession, Page, Route

from tests.helpers import fetch
from tests.test_web_utilisation import more_bookers, seed_november
from tests.web_site import Clock, add_admin, seed_people, seed_views, serving_site

# One worker takes the module: one site, and each person signed in once per language.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("pages")]

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "tests" / "vendor" / "axe-core-4.14.1.min.js"
SCREENS = ROOT / "test-artifacts" / "screens"
LOCALES = {"id": "id-ID", "en": "en-US"}  # the browser's language: Accept-Language
WIDTHS = (1280, 360)
# Every page, and who is signed in to see it (None: nobody).
PAGES = {
    "login": ("/login", None),
    "display-signin": ("/display", None),  # the displays: tests/test_web_displays_browser.py
    "today": ("/", "Ani Lestari"),
    "desks": ("/desks", "Ani Lestari"),
    "bookings": ("/bookings", "Ani Lestari"),
    "qr": ("/desks/d1/qr", "Fajar Nugroho"),
    "checkin": ("/checkin/d2", "Budi Santoso"),
    "attendance": ("/attendance", "Ani Lestari"),
    "requests": ("/requests", "Ani Lestari"),
    "unit": ("/unit", "Sari Wulandari"),
    "offline": ("/offline", "Ani Lestari"),
    "console-floor": ("/console/floor", "Fajar Nugroho"),
    "fleet": ("/console/fleet", "Fajar Nugroho"),
    "fleet-device": ("/console/fleet/desk-d1", "Fajar Nugroho"),
    "dead-letters": ("/console/dead-letters", "Fajar Nugroho"),
    # the last four weeks of b1: one person (Ani), so figures of people are withheld
    "utilisation": ("/console/utilisation", "Fajar Nugroho"),
    # November's, by seven people: every chart drawn
    "utilisation-shown": (
        "/console/utilisation?level=zone&place=b1-f1-a&from=2026-11-01&to=2026-11-30",
        "Fajar Nugroho",
    ),
    "plan-editor": ("/console/plan", "Fajar Nugroho"),
    "import": ("/console/import", "Rina Admin"),
    "zones": ("/console/zones", "Rina Admin"),
    "console-displays": ("/console/displays", "Fajar Nugroho"),
    "device-new": ("/console/devices/new", "Rina Admin"),
}
SIGN_IN_AS = {"id": "Masuk sebagai {}", "en": "Sign in as {}"}
RUN_AXE = """async () => {
    const result = await axe.run(document, {resultTypes: ['violations']});
    return result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => n.target.join(' '))
    }));
}"""


@dataclass
class Watch:
    """What a page did that it should not: fetch from elsewhere, fail, log errors (a CSP
    violation is a console error, "Refused to ...")."""

    base: str
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def route(self, route: Route) -> None:
        if urlsplit(route.request.url).netloc == urlsplit(self.base).netloc:
            await route.continue_()
        else:
            self.outside.append(route.request.url)
            await route.abort()

    async def attach(self, context: BrowserContext) -> None:
        await context.route("**/*", self.route)
        context.on("weberror", lambda e: self.errors.append(str(e.error)))
        context.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)


@pytest.fixture(scope="module")
async def server(module_database_url: str) -> AsyncIterator[TestServer]:
    """One site for the module: its tests look at pages and sign in, nothing more.
    November's bookings lie outside the last four weeks that ``utilisation`` shows."""
    url = module_database_url
    await seed_people(url)
    await seed_views(url)
    await seed_november(url)
    await more_bookers(url, 4)
    await add_admin(url, plan=True)
    await fetch(  # a platform disruption, for My unit's section of them
        url,
        """INSERT INTO platform_disruptions (building_id, during, cause, detail, recorded_by)
           VALUES (NULL, '[2026-12-01 07:30+08, 2026-12-01 08:05+08)', 'api_errors', '', 'api')""",
    )
    async with serving_site(url, Clock()) as srv:
        yield srv


async def sign_in(page: Page, base: str, lang: str, name: str) -> None:
    """The development login's button of ``name``, in ``lang``, back on Today."""
    await page.goto(base + "/login")
    await page.get_by_role("button", name=SIGN_IN_AS[lang].format(name)).click()
    await page.wait_for_url(base + "/")


async def _violations(page: Page) -> list[dict[str, Any]]:
    await page.add_script_tag(path=str(AXE))  # inline: this context bypasses the CSP
    found: list[dict[str, Any]] = await page.evaluate(RUN_AXE)
    return [v for v in found if v["impact"] in ("serious", "critical")]


@dataclass
class Tab:
    """A browser tab of one person (or nobody) in one language, signed in once."""

    context: BrowserContext
    page: Page
    watch: Watch


@dataclass
class Tabs:
    """The module's tabs, one per (person, language): a context of its own costs
    Chromium a renderer process (half a CPU-second, most of a page's test). Pages never
    share a tab across people or languages, and each test's ``Watch`` starts empty."""

    browser: Browser
    base: str
    opened: dict[tuple[str | None, str], Tab] = field(default_factory=dict)

    async def open(self, person: str | None, lang: str) -> Tab:
        """``person``'s tab in ``lang``, at the first width, with nothing watched yet."""
        tab = self.opened.get((person, lang))
        if tab is None:
            context = await self.browser.new_context(locale=LOCALES[lang], bypass_csp=True)
            watch = Watch(self.base)
            await watch.attach(context)
            page = await context.new_page()
            if person is not None:
                await sign_in(page, self.base, lang, person)
            tab = self.opened[person, lang] = Tab(context, page, watch)
        tab.watch.outside.clear()
        tab.watch.errors.clear()
        await tab.page.set_viewport_size({"width": WIDTHS[0], "height": 800})
        return tab


@pytest.fixture(scope="module")
async def tabs(server: TestServer, browser: Browser) -> AsyncIterator[Tabs]:
    """The module's tabs, closed at its end."""
    opened = Tabs(browser, str(server.make_url("")).rstrip("/"))
    yield opened
    for tab in opened.opened.values():
        await tab.context.close()


@pytest.mark.parametrize("lang", LOCALES)
@pytest.mark.parametrize("name", PAGES)
async def test_a_page_is_accessible_and_photographed(tabs: Tabs, name: str, lang: str) -> None:
    path, person = PAGES[name]
    tab = await tabs.open(person, lang)
    page, watch, base = tab.page, tab.watch, tabs.base
    try:
        answer = await page.goto(base + path)
        assert answer is not None and answer.status == 200
        assert person is None or urlsplit(page.url).path != "/login", "not signed in"
        assert await page.get_attribute("html", "lang") == lang
        await photograph(page, f"{name}-{lang}")
        violations = await _violations(page)
    finally:  # a live page (streams, polling) left open would go on costing CPU
        await page.goto("about:blank")
    assert violations == []
    assert watch.outside == []
    assert watch.errors == []


async def _tab_to(page: Page, text: str, most: int = 40) -> None:
    """Press Tab until the focused element's text is ``text``."""
    for _ in range(most):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent.trim()")
        if focused == text:
            return
    pytest.fail(f"{text!r} never got the focus")


async def test_signing_in_to_today_with_the_keyboard_alone(
    server: TestServer, browser: Browser
) -> None:
    base = str(server.make_url("")).rstrip("/")
    context = await browser.new_context(locale="id-ID")  # the pages' own CSP applies
    watch = Watch(base)
    await watch.attach(context)
    try:
        page = await context.new_page()
        await page.goto(base + "/")  # a visitor is sent to sign in
        assert page.url == base + "/login"
        await page.keyboard.press("Tab")
        skip = await page.evaluate("document.activeElement.textContent.trim()")
        assert skip == "Langsung ke konten utama"  # the first stop: the skip link
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"  # the focus is visible
        await _tab_to(page, "Masuk sebagai Ani Lestari")
        await page.keyboard.press("Enter")
        await page.wait_for_url(base + "/")
        assert await page.text_content("h1") == "Hari ini"
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")  # the skip link: on to the page's content
        assert await page.evaluate("document.activeElement.id") == "main"
        await _tab_to(page, "English")  # on from <main>, round to the language switch
        async with page.expect_navigation():  # the same address again, now in English
            await page.keyboard.press("Enter")
        assert await page.text_content("h1") == "Today"
        assert await page.get_attribute("html", "lang") == "en"
        # htmx is a deferred script: after the switch's redirect it may still be coming
        await page.wait_for_function("typeof htmx === 'object'", timeout=10_000)
        htmx = await page.evaluate("typeof htmx === 'object' && htmx.version")
    finally:
        await context.close()
    assert htmx == "2.0.11"  # loaded under script-src 'self'
    assert watch.outside == []
    assert watch.errors == []


# Each page's CDP session for ``snap``, kept while the page lives: detaching one made
# Chromium tell an offline page it was online again (tests/test_web_pwa.py's queue then
# tried to send, and its failed fetch was a console error).
_SESSIONS: weakref.WeakKeyDictionary[Page, CDPSession] = weakref.WeakKeyDictionary()


async def snap(page: Page, path: Path) -> None:
    """A PNG of the whole of ``page`` (beyond its viewport) at ``path``, taken through
    CDP with Chromium's fast PNG encoder (``optimizeForSpeed``): the two widths of a
    page cost Chromium 0.23 CPU-s instead of Playwright's 0.44 (its full-page
    screenshot, best compression), and the file is the same picture, only larger."""
    cdp = _SESSIONS.get(page)
    if cdp is None:
        cdp = _SESSIONS[page] = await page.context.new_cdp_session(page)
    size = (await cdp.send("Page.getLayoutMetrics"))["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    fast = {"format": "png", "optimizeForSpeed": True, "captureBeyondViewport": True}
    shot = await cdp.send("Page.captureScreenshot", {**fast, "clip": clip})
    await asyncio.to_thread(_save, path, base64.b64decode(shot["data"]))


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def photograph(page: Page, name: str, widths: tuple[int, ...] = WIDTHS) -> None:
    """Screenshots of ``page`` at each of ``widths`` (test-artifacts/screens/NAME-WIDTH.png),
    none of which may scroll sideways."""
    for width in widths:
        await page.set_viewport_size({"width": width, "height": 800})
        await snap(page, SCREENS / f"{name}-{width}.png")
        wide = await page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{name} scrolls sideways at {width} px"
