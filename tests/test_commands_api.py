"""Device commands end to end: the API stores and publishes a command through a real
Mosquitto, a real edge agent carries it out, its ``command_result`` reading goes
through the real ingest into PostgreSQL, and ``GET .../commands`` shows the result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from edge_agent import EdgeAgent
from ikn.brokers import BrokerProcess
from ikn_core.contract import IdentifyCommand
from ikn_store.fleet.commands import list_commands
from ikn_store.tokens import create_token
from tests.helpers import api_settings, eventually, seed
from tests.test_downlink_edge import CONFIG, QueueDriver, _count, _up_sizes
from tests.test_edge_agent import DEADLINE_S, mqtt_settings, subscribed
from tests.test_ingest import Running

Client = TestClient[web.Request, web.Application]
DEVICE = "desk-d1"  # a desk sensor of tests.helpers.SMALL_SITE


async def _client(env: dict[str, str]) -> Client:
    client = TestClient(TestServer(make_app(api_settings(env))))
    await client.start_server()
    return client


@pytest.fixture
async def client(
    database_url: str, mosquitto: BrokerProcess, ingest: Running
) -> AsyncIterator[Client]:
    c = await _client({"IKN_DATABASE_URL": database_url, "IKN_MQTT_URL": mosquitto.url})
    yield c
    await c.close()


@pytest.fixture
async def headers(database_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        return {"Authorization": f"Bearer {await create_token(conn, 'fm', 'facility_manager')}"}
    finally:
        await conn.close()


@pytest.fixture
async def agent(mosquitto: BrokerProcess) -> AsyncIterator[tuple[EdgeAgent, QueueDriver]]:
    driver = QueueDriver(device_id=DEVICE)
    async with EdgeAgent(DEVICE, mqtt_settings(mosquitto), config=CONFIG) as edge:
        pump = asyncio.create_task(edge.pump(driver))
        async with asyncio.timeout(DEADLINE_S):
            await edge.wait_listening()
        yield edge, driver
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


async def _send(client: Client, headers: dict[str, str], body: Any) -> Any:
    response = await client.post(f"/api/v1/devices/{DEVICE}/commands", json=body, headers=headers)
    return response.status, await response.json()


async def _status_of(client: Client, headers: dict[str, str], command_id: str) -> str:
    response = await client.get(f"/api/v1/devices/{DEVICE}/commands", headers=headers)
    assert response.status == 200
    commands = (await response.json())["commands"]
    return str(next(c["status"] for c in commands if c["id"] == command_id))


async def test_an_identify_command_reaches_the_agent_and_its_result_the_api(
    client: Client, headers: dict[str, str], agent: tuple[EdgeAgent, QueueDriver]
) -> None:
    _edge, driver = agent
    status, body = await _send(client, headers, {"cmd": "identify", "seconds": 7})
    assert status == 202, body
    assert body["status"] == "pending" and body["params"] == {"seconds": 7}
    assert body["issued_by"] == "fm"
    await eventually(
        lambda: _status_of(client, headers, body["id"]), lambda s: s == "succeeded", DEADLINE_S
    )
    assert [(type(c), c.id) for c in driver.commands] == [(IdentifyCommand, body["id"])]


async def test_a_config_push_changes_what_the_agent_publishes_next(
    client: Client,
    headers: dict[str, str],
    agent: tuple[EdgeAgent, QueueDriver],
    mosquitto: BrokerProcess,
) -> None:
    edge, driver = agent
    status, body = await _send(client, headers, {"cmd": "config", "batch_max_readings": 2})
    assert status == 202, body
    await eventually(
        lambda: _status_of(client, headers, body["id"]), lambda s: s == "succeeded", DEADLINE_S
    )
    assert edge.config.batch_max_readings == 2
    async with subscribed(mosquitto, f"ikn/v1/dev/{DEVICE}/up") as sub:
        for n in range(6):
            driver.queue.put_nowait(_count(n))
        await sub.wait_until(lambda: sum(_up_sizes(sub)) == 6, "six readings")
        assert max(_up_sizes(sub)) <= 2  # the pushed limit


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cmd": "selfdestruct"}, "cmd"),
        ({"cmd": "identify", "seconds": "ten"}, "seconds"),
        ({"cmd": "identify"}, "seconds"),
        ({"cmd": "identify", "seconds": 5, "colour": "red"}, "colour"),
        ({"cmd": "config"}, "body"),
        ({"cmd": "config", "batch_max_readings": 5000}, "batch_max_readings"),
        ({"cmd": "reboot", "id": "mine"}, "id"),
        ([1, 2], "body"),
    ],
)
async def test_bad_commands_are_refused_naming_the_field(
    client: Client, headers: dict[str, str], body: Any, field: str
) -> None:
    status, problem = await _send(client, headers, body)
    assert status == 400, problem
    assert problem["type"].endswith("/invalid-parameter")
    assert problem["invalid_params"][0]["name"] == field


async def test_without_a_broker_commands_answer_503(
    database_url: str, headers: dict[str, str]
) -> None:
    await seed(database_url)
    client = await _client({"IKN_DATABASE_URL": database_url})
    try:
        status, problem = await _send(client, headers, {"cmd": "reboot"})
    finally:
        await client.close()
    assert status == 503 and problem["status"] == 503


async def test_an_unanswered_command_expires(
    client: Client, headers: dict[str, str], database_url: str
) -> None:
    status, body = await _send(client, headers, {"cmd": "reboot"})  # no agent runs
    assert status == 202 and body["status"] == "pending"
    conn = await asyncpg.connect(database_url)
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        (view,) = await list_commands(conn, DEVICE, later)
    finally:
        await conn.close()
    assert view.status == "expired"
    response = await client.post(
        "/api/v1/devices/no-such-device/commands", json={"cmd": "reboot"}, headers=headers
    )
    assert response.status == 404
