"""A badge tap at the door, published through a real Mosquitto and stored by a real
ingest, shows on the person's Today page in a real Chromium: the whole platform, from
the reader's MQTT message to the page.

The page's clock is the last working day before today (09:00 WITA), so that the tap is
received a few days after its time, as in no other test; the replay policy counts it
as if on time (a tap received late otherwise counts only through a correction)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser

from edge_agent.badge import badge_token
from ikn.benchmarks.attendance import write_replay_policy
from ikn.brokers import BrokerProcess
from ikn_core.attendance import Policies
from ikn_core.contract import BadgeTap, Batch, encode_batch
from ikn_core.domain import Device, DeviceKind
from ikn_store.attendance.badges import enrol
from ikn_store.attendance.signals import set_building_site
from ikn_store.spaces import load_site
from tests.helpers import SMALL_SITE, eventually, fetch, publish
from tests.test_web_browser import SCREENS, sign_in, snap
from tests.web_site import DEV_LOGIN, WITA, Clock, running_ingest, seed_people, serving_site

pytestmark = pytest.mark.browser

KEY = b"site-key-for-tests-only"
CARD = "0004829001"
DOOR = Device("door-b1", DeviceKind.BADGE_READER, "b1", "b1-f1-a")


def last_working_day(today: date) -> date:
    policies, day = Policies.default(), today - timedelta(days=1)
    while not policies.in_force(day).is_working_day(day):
        day -= timedelta(days=1)
    return day


async def _prepare(url: str) -> None:
    await seed_people(url)
    conn = await asyncpg.connect(url)
    try:
        await load_site(conn, dataclasses.replace(SMALL_SITE, devices=(*SMALL_SITE.devices, DOOR)))
        await set_building_site(conn, "b1", -0.9745, 116.7085, "kemenpan")
        await conn.execute("UPDATE buildings SET live_from = '2026-09-01'")
        await conn.execute("UPDATE people SET known_since = '2026-09-01T00:00+08:00'")
        await enrol(conn, badge_token(KEY, CARD), "ani")
    finally:
        await conn.close()


@pytest.fixture
async def ingest(database_url: str, mosquitto: BrokerProcess) -> AsyncIterator[None]:
    async with running_ingest(database_url, mosquitto.url):
        yield


async def test_a_badge_tap_through_mqtt_shows_on_today(
    database_url: str, mosquitto: BrokerProcess, ingest: None, browser: Browser, tmp_path: Path
) -> None:
    await _prepare(database_url)
    day = last_working_day(datetime.now(WITA).date())
    clock = Clock(datetime.combine(day, time(9), WITA))
    env = {
        **DEV_LOGIN,
        "IKN_ATTENDANCE_POLICY": str(write_replay_policy(tmp_path / "replay.toml")),
    }
    async with serving_site(database_url, clock, env) as server:
        base = str(server.make_url("")).rstrip("/")
        context = await browser.new_context(locale="id-ID")
        try:
            page = await context.new_page()
            await sign_in(page, base, "id", "Ani Lestari")
            clock_in = page.locator("dt", has_text="Absen masuk").locator(
                "xpath=following-sibling::dd[1]"
            )
            assert (await clock_in.text_content() or "").strip() == "Belum ada"
            tapped = datetime.combine(day, time(7, 50), WITA)
            reading = BadgeTap(0, int(tapped.timestamp() * 1000), badge_token(KEY, CARD), "in")
            publish(
                mosquitto.port,
                f"ikn/v1/dev/{DOOR.id}/up",
                encode_batch(Batch(Batch.new_stream(), (reading,))),
            )
            await eventually(
                lambda: fetch(
                    database_url, "SELECT 1 FROM attendance_signals WHERE kind = 'badge_in'"
                ),
                bool,
            )
            await page.reload()
            assert (await clock_in.text_content() or "").strip() == "07.50 WITA"
            await snap(page, SCREENS / "today-after-tap-id-1280.png")
        finally:
            await context.close()
