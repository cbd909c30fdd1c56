"""Dead letters through the API: newest first, filtered, paged, with counts per reason."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn_store.fleet.dead_letters import DeadLetter
from ikn_store.readings.rows import write_dead_letters
from ikn_store.tokens import create_token
from tests.helpers import api_settings

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[tuple[Client, dict[str, str]]]:
    now = datetime.now(UTC)
    letters = [
        DeadLetter(now, "ikn/v1/dev/a/up", "a", "not_json", "not UTF-8 JSON", b"\xff{"),
        DeadLetter(now, "ikn/v1/dev/b/up", "b", "unknown_device", "not registered", b"{}"),
        DeadLetter(now, "ikn/v1/dev/a/up", "a", "too_large", "big", b"x" * 3000),
    ]
    conn = await asyncpg.connect(database_url)
    try:
        await write_dead_letters(conn, letters)
        token = await create_token(conn, "fm", "facility_manager")
    finally:
        await conn.close()
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with TestClient(TestServer(app)) as c:
        yield c, {"Authorization": f"Bearer {token}"}


async def test_newest_first_with_counts_and_raw_bytes(
    client: tuple[Client, dict[str, str]],
) -> None:
    c, auth = client
    body = await (await c.get("/api/v1/dead-letters", headers=auth)).json()
    assert body["counts"] == {"not_json": 1, "unknown_device": 1, "too_large": 1}
    assert [d["reason"] for d in body["dead_letters"]] == [
        "too_large",
        "unknown_device",
        "not_json",
    ]
    big, _, bad = body["dead_letters"]
    assert (big["size"], big["truncated"], len(base64.b64decode(big["payload_base64"]))) == (
        3000,
        True,
        1024,
    )
    assert base64.b64decode(bad["payload_base64"]) == b"\xff{"
    assert body["next_before"] is None


async def test_filters_and_paging(client: tuple[Client, dict[str, str]]) -> None:
    c, auth = client
    only_a = await (await c.get("/api/v1/dead-letters?device=a&limit=1", headers=auth)).json()
    (first,) = only_a["dead_letters"]
    assert first["reason"] == "too_large"
    rest = await (
        await c.get(f"/api/v1/dead-letters?device=a&before={only_a['next_before']}", headers=auth)
    ).json()
    assert [d["reason"] for d in rest["dead_letters"]] == ["not_json"]
    by_reason = await (
        await c.get("/api/v1/dead-letters?reason=unknown_device", headers=auth)
    ).json()
    assert [d["device"] for d in by_reason["dead_letters"]] == ["b"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("before=-1", "before"),
        ("reason=a%20b", "reason"),
        ("sort=id", "sort"),
    ],
)
async def test_bad_parameters_name_the_field(
    client: tuple[Client, dict[str, str]], query: str, field: str
) -> None:
    c, auth = client
    response = await c.get(f"/api/v1/dead-letters?{query}", headers=auth)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert (await response.json())["invalid_params"][0]["name"] == field


async def test_counts_of_one_device_and_the_payloads_length_and_hash(
    client: tuple[Client, dict[str, str]],
) -> None:
    c, auth = client
    only_b = await (await c.get("/api/v1/dead-letters?device=b", headers=auth)).json()
    assert only_b["counts"] == {"unknown_device": 1}
    only_a = await (await c.get("/api/v1/dead-letters?device=a", headers=auth)).json()
    assert only_a["counts"] == {"not_json": 1, "too_large": 1}
    big = only_a["dead_letters"][0]
    assert (big["size"], big["sha256"]) == (3000, hashlib.sha256(b"x" * 3000).hexdigest())
