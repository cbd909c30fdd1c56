"""The console's fleet pages over HTTP: facility managers and admins only (403 pages
for the others, sign-in for a visitor), the devices with their health, alerts and
filters, a command sent from the page reaching a real edge agent through a real
Mosquitto and its answer (stored by the real ingest) shown, and the dead letters by
reason with their payloads as text and hex."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from edge_agent import EdgeAgent
from ikn.brokers import BrokerProcess
from ikn_core.contract import IdentifyCommand
from ikn_core.domain import Role
from ikn_store.fleet.dead_letters import DeadLetter, store
from ikn_store.people import Person, upsert_people
from tests.test_downlink_edge import CONFIG, QueueDriver
from tests.test_edge_agent import DEADLINE_S, mqtt_settings
from tests.test_ingest import Running
from tests.test_web import Site
from tests.web_site import DEV_LOGIN, WITA, Clock, seed_people, site_app

PAGES = (
    "/console/fleet",
    "/console/fleet/desk-d1",
    "/console/fleet/desk-d1/commands",  # the device page's commands section alone
    "/console/dead-letters",
)
DEVICE = "desk-d1"


async def _site(url: str, env: dict[str, str]) -> AsyncIterator[Site]:
    await seed_people(url)
    clock = Clock(datetime.now(WITA))  # commands carry it: an edge agent refuses stale ones
    async with TestClient(TestServer(site_app(url, clock, {**DEV_LOGIN, **env}))) as client:
        client.session.cookie_jar.update_cookies({"ikn_lang": "en"}, client.make_url("/"))
        yield Site(client, clock, url)


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    async for opened in _site(database_url, {}):
        yield opened


async def _status(conn_url: str, device: str, **status: object) -> None:
    conn = await asyncpg.connect(conn_url)
    try:
        await conn.execute(
            """INSERT INTO device_status (device_id, online, status, status_at, last_seen)
               VALUES ($1, true, $2::jsonb, now(), now())
               ON CONFLICT (device_id) DO UPDATE SET status = EXCLUDED.status""",
            device,
            json.dumps(status),
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("person", ["ani", "sari"])
async def test_only_facility_managers_and_admins_see_the_fleet(site: Site, person: str) -> None:
    for path in PAGES:
        response = await site.client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/login?next=")
    # htmx asking for a part: the whole page goes to sign in, and comes back after
    part = await site.client.get(
        f"/console/fleet/{DEVICE}/commands",
        headers={"HX-Request": "true", "HX-Current-URL": f"http://x/console/fleet/{DEVICE}?a=1"},
        allow_redirects=False,
    )
    assert part.status == 401
    assert part.headers["HX-Redirect"] == "/login?next=%2Fconsole%2Ffleet%2Fdesk-d1"
    await site.sign_in(person)
    for path in PAGES:
        response = await site.client.get(path)
        assert response.status == 403, path
        assert "Fleet" not in await response.text()  # nor in the menu
    token = await site.csrf("/")
    response = await site.client.post(
        f"/console/fleet/{DEVICE}/commands",
        data={"csrf_token": token, "cmd": "reboot"},
        headers=site.origin,
    )
    assert response.status == 403
    conn = await asyncpg.connect(site.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM device_commands") == 0
    finally:
        await conn.close()


async def test_an_admin_sees_the_fleet_too(site: Site) -> None:
    conn = await asyncpg.connect(site.url)
    try:
        await upsert_people(conn, [Person("rina", "Rina Admin", "otorita", "ti", Role.ADMIN, "b1")])
    finally:
        await conn.close()
    await site.sign_in("rina")
    for path in PAGES:
        response = await site.client.get(path)
        assert response.status == 200, path


async def test_the_fleet_lists_health_and_alerts_and_filters(site: Site) -> None:
    await _status(site.url, DEVICE, fw="1.4.2", battery_pct=12, outbox=37, dropped=3)
    await site.sign_in("fajar")
    page = await (await site.client.get("/console/fleet")).text()
    assert '<a href="/console/fleet" aria-current="page">Fleet</a>' in page  # the menu
    row = _row(page, DEVICE)
    for shown in ("online", "1.4.2", "12 %", "37 · 3", "battery low"):
        assert shown in row, shown
    assert "never seen" in _row(page, "desk-d2")  # no status: never seen
    assert "battery low</a>: 1 device" in page
    only = await (await site.client.get("/console/fleet?alert=battery-low")).text()
    assert "1 of 3 devices" in only and _row(only, DEVICE) and "desk-d2" not in only
    state = await (await site.client.get("/console/fleet?state=unknown")).text()
    assert "2 of 3 devices" in state and DEVICE + "<" not in state
    assert (await site.client.get("/console/fleet?state=sleeping")).status == 400


def _row(page: str, device: str) -> str:
    found = re.search(
        rf'<tr>\s*<th scope="row"><a href="/console/fleet/{device}">.*?</tr>', page, re.S
    )
    assert found is not None, device
    return found[0]


async def _send(site: Site, **form: str) -> tuple[int, str]:
    token = await site.csrf(f"/console/fleet/{DEVICE}")
    response = await site.client.post(
        f"/console/fleet/{DEVICE}/commands",
        data={"csrf_token": token, **form},
        headers=site.origin,
    )
    return response.status, await response.text()


async def test_without_a_broker_a_command_is_refused_with_the_reason(site: Site) -> None:
    await site.sign_in("fajar")
    status, page = await _send(site, cmd="identify", seconds="5")
    assert status == 503
    assert "the server has no MQTT broker" in page
    status, page = await _send(site, cmd="identify", seconds="9999")
    assert status == 422 and "Blink or beep for (seconds): a whole number" in page
    assert 'name="seconds" type="number" min="1" max="600" value="10" required aria-invalid' in page
    # each refusal names its own field (it was one message for both forms)
    status, page = await _send(site, cmd="config", sample_interval_s="0")
    assert status == 422 and "Sample interval (seconds): a whole number" in page
    assert 'value="60" required aria-invalid="true"' in page
    status, page = await _send(site, cmd="shutdown")  # no form of ours sends it
    assert status == 400 and "cmd: identify, config or reboot" in page


@pytest.fixture
async def commanding(
    database_url: str, mosquitto: BrokerProcess, ingest: Running
) -> AsyncIterator[Site]:
    async for opened in _site(database_url, {"IKN_MQTT_URL": mosquitto.url}):
        yield opened


async def test_an_identify_sent_from_the_page_reaches_the_device_and_shows_done(
    commanding: Site, mosquitto: BrokerProcess
) -> None:
    site = commanding
    await site.sign_in("fajar")
    driver = QueueDriver(device_id=DEVICE)
    async with EdgeAgent(DEVICE, mqtt_settings(mosquitto), config=CONFIG) as edge:
        pump = asyncio.create_task(edge.pump(driver))
        try:
            async with asyncio.timeout(DEADLINE_S):
                await edge.wait_listening()
            status, page = await _send(site, cmd="identify", seconds="7")
            assert status == 200  # followed the 303 back to the device
            assert "Sent. The device" in page and "seconds=7" in page
            # the commands' section asks for itself while the command waits (unless
            # the answer came before the page was read)
            part = f"/console/fleet/{DEVICE}/commands"
            assert "command-succeeded" in page or f'hx-get="{part}"' in page
            async with asyncio.timeout(DEADLINE_S):
                while "command-succeeded" not in page:
                    await asyncio.sleep(0.2)
                    page = await (await site.client.get(part)).text()
            answered = (await (await site.client.get(part)).text()).strip()
            assert answered.startswith("<section") and "command-succeeded" in answered
            assert "hx-get" not in answered  # none waits: the asking stops
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
    assert [type(c) for c in driver.commands] == [IdentifyCommand]
    assert "fajar" in page  # who sent it


async def test_dead_letters_by_reason_with_the_payload_as_text_and_hex(site: Site) -> None:
    conn = await asyncpg.connect(site.url)
    now = datetime.now(UTC)
    try:
        async with conn.transaction():
            await store(
                conn,
                [
                    DeadLetter(now, "ikn/v1/dev/desk-d1/up", DEVICE, "bad_json", "", b"{oops\xff"),
                    DeadLetter(now, "ikn/v1/dev/desk-d2/up", "desk-d2", "too_large", "", b"x"),
                ],
                keep_per_hour=10,
            )
    finally:
        await conn.close()
    await site.sign_in("fajar")
    page = await (await site.client.get("/console/dead-letters")).text()
    assert "<code>bad_json</code></a>: 1" in page and "<code>too_large</code></a>: 1" in page
    assert "{oops\ufffd" in page  # the text, the undecodable byte replaced
    assert "0000  7b 6f 6f 70 73 ff" in page  # the same bytes in hex
    only = await (await site.client.get("/console/dead-letters?reason=too_large")).text()
    assert "desk-d2" in only and "7b 6f 6f 70" not in only
