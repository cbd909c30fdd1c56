"""A command's answer shows on its device's page open in a real Chromium without a
reload: while a command waits, the page's commands section asks for itself again
(htmx, every ``web.fleet.POLL_S``) and stops asking once none waits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from playwright.async_api import Browser, async_playwright

from tests.test_docs_page import _chromium
from tests.test_web_browser import photograph, sign_in
from tests.web_site import Clock, seed_people, serving_site

pytestmark = pytest.mark.browser
DEVICE = "desk-d1"


async def test_a_commands_answer_shows_on_the_open_page(database_url: str) -> None:
    await seed_people(database_url)
    now = datetime.now(UTC)
    command = str(uuid.uuid4())
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO device_commands
               (id, device_id, cmd, payload, issued_by, issued_at, expires_at)
               VALUES ($1, $2, 'identify', '{"seconds": 7}'::jsonb, 'fajar', $3, $4)""",
            command,
            DEVICE,
            now,
            now + timedelta(minutes=5),
        )
        async with serving_site(database_url, Clock(now)) as server, async_playwright() as pw:
            base = str(server.make_url("")).rstrip("/")
            browser: Browser = await pw.chromium.launch(executable_path=_chromium())
            try:
                page = await (await browser.new_context(locale="en-GB")).new_page()
                await sign_in(page, base, "en", "Fajar Nugroho")
                await page.goto(f"{base}/console/fleet/{DEVICE}")
                section = page.locator("#commands")
                await section.locator(".command-pending").wait_for()
                assert await section.get_attribute("data-waiting") is not None
                await conn.execute(
                    """UPDATE device_commands SET ok = true, detail = 'blinked',
                              answered_at = now() WHERE id = $1""",
                    command,
                )
                await section.locator(".command-succeeded").wait_for(timeout=10_000)
                assert "blinked" in (await section.text_content() or "")
                assert await section.get_attribute("data-waiting") is None  # no more asking
                await photograph(page, "console-device-answered-en")
            finally:
                await browser.close()
    finally:
        await conn.close()
