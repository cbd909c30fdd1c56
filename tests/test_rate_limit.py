"""Per-token rate limits on writes (api.rate_limit): past the burst a write is 429
``rate-limited`` problem+json with ``Retry-After``; reads, and other tokens, go on
(issue 16: 100 of 100 check-ins were accepted)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from api.openapi import load_document
from api.rate_limit import Buckets
from ikn_core.settings import ApiSettings
from tests.helpers import api_settings, seed
from tests.test_booking_api import PEOPLE, SITE, Client, World, _tokens

CHECK_IN = "/api/v1/attendance/check-in"
HOME = {"place_type": "home"}


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    await seed(database_url, SITE)
    headers = await _tokens(database_url, PEOPLE)
    env = {
        "IKN_DATABASE_URL": database_url,
        "IKN_API_WRITE_BURST": "3",
        "IKN_API_WRITE_RATE": "0.01",  # one write back every 100 s
    }
    async with TestClient(TestServer(make_app(api_settings(env)))) as client:
        yield World(database_url, client, headers)


async def _status(client: Client, method: str, path: str, headers: dict[str, str]) -> int:
    body = HOME if method == "POST" else None
    async with client.request(method, path, json=body, headers=headers) as response:
        return response.status


async def test_writes_past_the_burst_are_429_with_retry_after(world: World) -> None:
    ani = world.headers["ani"]
    assert [await _status(world.client, "POST", CHECK_IN, ani) for _ in range(3)] == [
        201,
        200,  # the same check-in (idempotent), still a write
        200,
    ]
    refused = await world.client.post(CHECK_IN, json=HOME, headers=ani)
    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    body = await refused.json()
    assert body["type"].endswith("/rate-limited")
    assert body["status"] == 429
    assert int(refused.headers["Retry-After"]) == 100
    assert refused.headers["X-Content-Type-Options"] == "nosniff"
    # reads go on; another token has its own bucket
    assert await _status(world.client, "GET", "/api/v1/bookings", ani) == 200
    assert await _status(world.client, "POST", CHECK_IN, world.headers["budi"]) == 201
    # an unauthenticated write is 401, and takes nothing from anyone's bucket
    assert await _status(world.client, "POST", CHECK_IN, {}) == 401


def test_a_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    now = [0.0]
    buckets = Buckets(rate=2.0, burst=4, clock=lambda: now[0])
    assert [buckets.take("t") for _ in range(4)] == [0.0] * 4
    assert buckets.take("t") == pytest.approx(0.5)
    now[0] = 0.5
    assert buckets.take("t") == 0.0
    assert buckets.take("t") == pytest.approx(0.5)
    now[0] = 100.0  # idle: full again, never more than the burst
    assert [buckets.take("t") for _ in range(5)][-1] == pytest.approx(0.5)
    assert buckets.take("other") == 0.0


def test_every_write_documents_its_429() -> None:
    for path, item in load_document()["paths"].items():
        for method, operation in item.items():
            if method in ("post", "put", "patch", "delete"):
                assert "429" in operation["responses"], (method, path)


def test_the_defaults_leave_room_for_the_booking_benchmark_and_the_suite() -> None:
    guard = ApiSettings.from_env({"IKN_DATABASE_URL": "postgresql://x/y"}).guard
    assert (guard.write_rate, guard.write_burst, guard.trusted_proxy) == (50.0, 600, False)
