"""The console's administration in a real headless Chromium through the whole running
platform: a desk dragged on the floor-plan editor (``page.mouse``) is where Find a
desk then shows it; moved with the arrow keys and Enter alone too; an import with one
bad line shows that line's error and changes nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, BrowserContext, Page

from tests import test_web_browser as browsing
from tests.web_site import PLAN_SVG, Clock, add_admin, seed_people, serving_site

pytestmark = pytest.mark.browser

CELL, PAD, HALF = 80, 8, 34  # web.desks: a grid step, the margin, half a desk's box


@pytest.fixture
async def base(database_url: str) -> AsyncIterator[str]:
    await seed_people(database_url)
    await add_admin(database_url)
    async with serving_site(database_url, Clock()) as server:
        yield str(server.make_url("")).rstrip("/")


async def _signed_in(browser: Browser, base: str, name: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await browsing.sign_in(page, base, "en", name)
    return context, page


async def _desk_place(url: str, desk: str) -> tuple[float, float]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT x, y FROM desks WHERE id = $1", desk)
    finally:
        await conn.close()
    assert row is not None
    return row["x"], row["y"]


async def _staff_translate(browser: Browser, base: str, desk: str) -> str:
    """Where Ani's Find a desk draws ``desk`` (its ``translate``)."""
    context, page = await _signed_in(browser, base, "Ani Lestari")
    try:
        await page.goto(base + "/desks?building=b1&floor=b1-f1")
        found = await page.get_attribute(f'svg.floorplan [data-desk="{desk}"]', "transform")
    finally:
        await context.close()
    assert found is not None
    return found


async def test_a_desk_dragged_in_the_editor_moves_on_find_a_desk(
    base: str, browser: Browser, database_url: str, tmp_path: Path
) -> None:
    context, page = await _signed_in(browser, base, "Fajar Nugroho")
    watch = browsing.Watch(base)
    await watch.attach(context)
    try:
        await page.goto(base + "/console/plan?floor=b1-f1")
        plan = tmp_path / "plan.svg"
        plan.write_bytes(PLAN_SVG)
        await page.set_input_files("#p-file", str(plan))
        async with page.expect_navigation():
            await page.get_by_role("button", name="Upload the drawing").click()
        assert "done=plan" in page.url
        await page.wait_for_selector("svg.plan-editor[data-ready]", state="attached")
        before = await _staff_translate(browser, base, "d1")
        box = await page.locator('svg.plan-editor [data-desk="d1"]').bounding_box()
        assert box is not None
        scale = await page.evaluate(
            "(() => { const s = document.querySelector('svg.plan-editor');"
            " return s.getBoundingClientRect().width / s.viewBox.baseVal.width; })()"
        )
        start_x, start_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await page.mouse.move(start_x, start_y)
        await page.mouse.down()
        for step in range(1, 11):  # two grid steps right, one down, in ten moves
            await page.mouse.move(
                start_x + 2 * CELL * scale * step / 10, start_y + CELL * scale * step / 10
            )
        async with page.expect_navigation():
            await page.mouse.up()
        assert "done=desk" in page.url and "desk=d1" in page.url
    finally:
        await context.close()
    x, y = await _desk_place(database_url, "d1")
    assert abs(x - 3.0) < 0.1 and abs(y - 2.0) < 0.1  # from (1, 1)
    after = await _staff_translate(browser, base, "d1")
    assert after != before
    assert after == f"translate({PAD + x * CELL + HALF:g} {PAD + y * CELL:g})"
    assert watch.outside == [] and watch.errors == []


async def test_a_desk_moved_with_the_keyboard_alone(
    base: str, browser: Browser, database_url: str
) -> None:
    context, page = await _signed_in(browser, base, "Fajar Nugroho")
    try:
        await page.goto(base + "/console/plan?floor=b1-f1")
        await page.wait_for_selector("svg.plan-editor[data-ready]", state="attached")
        await browsing._tab_to(page, "d2")
        for key in ("ArrowRight", "ArrowRight", "ArrowDown", "Shift+ArrowRight"):
            await page.keyboard.press(key)
        assert await page.text_content("#editor-status") == "Moved: press Enter to save."
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        assert "desk=d2" in page.url
    finally:
        await context.close()
    assert await _desk_place(database_url, "d2") == (3.5, 1.25)  # from (2, 1)


async def test_an_import_with_one_bad_line_shows_it_and_changes_nothing(
    base: str, browser: Browser, database_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "people.csv"
    bad.write_text(
        "id,name,agency,unit,role,home_building\n"
        "dewi,Dewi Kartika,otorita,ti,employee,b1\n"
        "eka,Eka Putra,otorita,ti,chief,b1\n"  # line 3: no such role
    )
    conn = await asyncpg.connect(database_url)
    try:
        before = await conn.fetchval("SELECT count(*) FROM people")
    finally:
        await conn.close()
    context, page = await _signed_in(browser, base, "Rina Admin")
    watch = browsing.Watch(base)
    await watch.attach(context)
    try:
        await page.goto(base + "/console/import")
        await page.get_by_label("People: staff with agency, unit, role and home building").check()
        await page.set_input_files("#i-file", str(bad))
        async with page.expect_navigation():
            await page.get_by_role("button", name="Import", exact=True).click()
        alert = await page.get_by_role("alert").text_content()
        row = await page.locator("table.import-problems tbody tr").all_text_contents()
    finally:
        await context.close()
    assert alert is not None and "The file has 1 problem." in alert
    assert len(row) == 1 and re.fullmatch(r"line 3\s*role\s*must be one of .*", row[0].strip())
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM people") == before
        assert await conn.fetchval("SELECT count(*) FROM people WHERE id = 'dewi'") == 0
    finally:
        await conn.close()
    refused = "Failed to load resource: the server responded with a status of 422"
    assert watch.outside == [] and [e for e in watch.errors if refused not in e] == []


@pytest.mark.parametrize("lang", browsing.LOCALES)
async def test_a_device_registered_in_the_browser_shows_its_password_once(
    base: str, browser: Browser, lang: str
) -> None:
    context = await browser.new_context(locale=browsing.LOCALES[lang], bypass_csp=True)
    page = await context.new_page()
    try:
        await browsing.sign_in(page, base, lang, "Rina Admin")
        await page.goto(base + "/console/devices/new")
        await page.fill("#d-id", f"counter-{lang}")
        await page.select_option("#d-kind", "people_counter")
        await page.select_option("#d-zone", "b1-f1-a")
        async with page.expect_navigation():
            await page.locator("form.device-form button").click()
        password = await page.text_content("#mqtt-password")
        assert await page.text_content("#mqtt-username") == f"counter-{lang}"
        await browsing.photograph(page, f"device-registered-{lang}")
        await page.set_viewport_size({"width": 360, "height": 800})
        wide = await page.evaluate("document.documentElement.scrollWidth")
        violations = await browsing._violations(page)
        await page.reload()  # the POST again: the id is taken now, no password
        again = await page.content()
        await page.goto(base + f"/console/fleet/counter-{lang}")
        later = await page.content()
    finally:
        await context.close()
    assert password and len(password) >= 20
    assert wide <= 360  # the password wraps
    assert password not in again and "mqtt-password" not in again
    assert password not in later
    assert violations == []
