"""The offline docs page in a real headless Chromium: every operation is listed, nothing
is fetched from outside the API (no CDN), and the page's Content-Security-Policy (api.headers)
blocks nothing it needs."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Route, async_playwright

from api.app import make_app
from api.openapi import load_document
from tests.helpers import api_settings

METHODS = {"get", "put", "post", "delete", "patch"}


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Chromium is needed: apt-get install chromium (scripts/setup dev does it)")


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[TestServer]:
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv
    finally:
        await srv.close()


async def test_docs_page_lists_every_operation_offline(server: TestServer) -> None:
    base = str(server.make_url("/"))
    outside: list[str] = []

    async def only_the_api(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == urlsplit(base).netloc:
            await route.continue_()
        else:
            outside.append(url)
            await route.abort()

    document = load_document()
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    ]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=_chromium(), headless=True)
        try:
            page = await browser.new_page()
            await page.route("**/*", only_the_api)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            answer = await page.goto(base + "api/v1/docs")
            assert answer is not None
            policy = await answer.header_value("content-security-policy")
            assert policy is not None and "script-src 'self'" in policy
            await page.wait_for_selector(".opblock-summary", timeout=30_000)
            shown = await page.eval_on_selector_all(
                ".opblock-summary",
                """els => els.map(e => [
                    e.querySelector('.opblock-summary-method').textContent.trim(),
                    e.querySelector('.opblock-summary-path').getAttribute('data-path')])""",
            )
            title = await page.text_content(".info .title")
        finally:
            await browser.close()
    assert outside == []
    assert errors == []
    assert console == []  # a CSP violation is a console error: "Refused to ..."
    assert sorted(tuple(s) for s in shown) == sorted(operations)
    assert title is not None and "IKN Workspace API" in title
