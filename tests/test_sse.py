"""The live occupancy stream (SSE): a sensor change travels device → real Mosquitto →
ingest → PostgreSQL trigger → NOTIFY → API → client; Last-Event-ID replays the rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from api.stream import HUB, QUEUE_SIZE
from ikn.brokers import BrokerProcess
from ikn_core.contract import Batch, DeskOccupancy, encode_batch
from ikn_store.fleet.devices import DeskEvent
from tests.helpers import api_settings, bearer, eventually, fetch, publish
from tests.test_ingest import Running, _now_ms

Client = TestClient[web.Request, web.Application]
TIMEOUT = 20.0


@pytest.fixture
async def client(database_url: str, ingest: Running) -> AsyncIterator[Client]:
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def headers(database_url: str) -> dict[str, str]:
    return await bearer(database_url, "fm", "facility_manager")


class Sensor:
    """A desk sensor publishing through the real broker, with a clock that moves on."""

    def __init__(self, broker: BrokerProcess, device: str) -> None:
        self.broker, self.device = broker, device
        self.stream = Batch.new_stream()
        self.seq = 0
        self.ts = _now_ms()

    def report(self, occupied: bool) -> None:
        self.seq += 1
        self.ts += 1000
        batch = Batch(self.stream, (DeskOccupancy(self.seq, self.ts, occupied),))
        publish(self.broker.port, f"ikn/v1/dev/{self.device}/up", encode_batch(batch))


async def next_event(response: aiohttp.ClientResponse) -> tuple[int, dict[str, Any]]:
    """The next SSE event (comments and the retry hint skipped), with its id."""
    found, data = await next_frame(response)
    assert found is not None, data
    return found, data


async def next_frame(response: aiohttp.ClientResponse) -> tuple[int | None, dict[str, Any]]:
    """The next SSE event, with its id if it has one."""
    fields: dict[str, str] = {}
    async with asyncio.timeout(TIMEOUT):
        while True:
            line = (await response.content.readline()).decode()
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if line == "":
                if "data" in fields:
                    found = int(fields["id"]) if "id" in fields else None
                    return found, orjson.loads(fields["data"])
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value


async def _events(database_url: str) -> int:
    return len(await fetch(database_url, "SELECT id FROM desk_events"))


async def test_a_sensor_change_reaches_a_connected_client(
    client: Client, headers: dict[str, str], mosquitto: BrokerProcess, database_url: str
) -> None:
    response = await client.get("/api/v1/occupancy/stream", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    Sensor(mosquitto, "desk-d1").report(True)
    event_id, data = await next_event(response)
    (row,) = await fetch(database_url, "SELECT id FROM desk_events")
    assert event_id == row["id"]
    assert {k: data[k] for k in ("desk", "building", "floor", "zone", "state", "sensor")} == {
        "desk": "d1",
        "building": "b1",
        "floor": "b1-f1",
        "zone": "b1-f1-a",
        "state": "occupied",
        "sensor": "desk-d1",
    }
    assert data["at"].endswith("+08:00")  # the building's zone, Asia/Makassar
    response.close()


async def test_resume_with_last_event_id_replays_what_was_missed(
    client: Client, headers: dict[str, str], mosquitto: BrokerProcess, database_url: str
) -> None:
    sensor = Sensor(mosquitto, "desk-d1")
    first = await client.get("/api/v1/occupancy/stream", headers=headers)
    sensor.report(True)
    seen, _ = await next_event(first)
    first.close()  # the dashboard loses its connection; two changes happen meanwhile
    sensor.report(False)  # (one at a time: within one ingest batch the newest reading wins)
    await eventually(lambda: _events(database_url), lambda n: n == 2)
    sensor.report(True)
    await eventually(lambda: _events(database_url), lambda n: n == 3)
    again = await client.get(
        "/api/v1/occupancy/stream", headers={**headers, "Last-Event-ID": str(seen)}
    )
    replayed = [await next_event(again), await next_event(again)]
    assert [(i - seen, d["state"]) for i, d in replayed] == [(1, "free"), (2, "occupied")]
    sensor.report(False)  # and it is live again, without repeating the replay
    live_id, live = await next_event(again)
    assert (live_id - seen, live["state"]) == (3, "free")
    again.close()


async def test_a_stream_ends_at_its_age_and_resumes_where_it_ended(
    database_url: str, ingest: Running, headers: dict[str, str], mosquitto: BrokerProcess
) -> None:
    """``IKN_SSE_MAX_AGE_S``: the stream ends by itself (not before its age); resumed with
    ``Last-Event-ID``, the change made meanwhile comes first."""
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url, "IKN_SSE_MAX_AGE_S": "1"}))
    async with TestClient(TestServer(app)) as client:
        sensor = Sensor(mosquitto, "desk-d1")
        loop = asyncio.get_running_loop()
        opened_at = loop.time()
        first = await client.get("/api/v1/occupancy/stream", headers=headers)
        sensor.report(True)
        seen, _ = await next_event(first)
        async with asyncio.timeout(TIMEOUT):
            rest = await first.content.read()  # to its end
        assert loop.time() - opened_at >= 1.0
        assert b"data:" not in rest
        sensor.report(False)
        await eventually(lambda: _events(database_url), lambda n: n == 2)
        again = await client.get(
            "/api/v1/occupancy/stream", headers={**headers, "Last-Event-ID": str(seen)}
        )
        replayed, data = await next_event(again)
        assert (replayed - seen, data["state"]) == (1, "free")
        again.close()


async def test_filters_pass_only_their_places(
    client: Client, headers: dict[str, str], mosquitto: BrokerProcess
) -> None:
    response = await client.get("/api/v1/occupancy/stream?floor=b1-f2", headers=headers)
    Sensor(mosquitto, "desk-d1").report(True)  # floor b1-f1: not for this client
    Sensor(mosquitto, "desk-d3").report(True)
    _, data = await next_event(response)
    assert (data["desk"], data["floor"]) == ("d3", "b1-f2")
    response.close()


@pytest.mark.parametrize(
    ("sent", "status", "field"),
    [
        (("", {"Last-Event-ID": "abc"}), 400, "Last-Event-ID"),
        (("", {"Last-Event-ID": "-1"}), 400, "Last-Event-ID"),
        (("?floor=no-such", {}), 404, "floor"),
        (("?zone=a%20b", {}), 400, "zone"),
        (("?desk=d1", {}), 400, "desk"),
    ],
)
async def test_bad_requests_get_a_problem_naming_the_field(
    client: Client,
    headers: dict[str, str],
    sent: tuple[str, dict[str, str]],
    status: int,
    field: str,
) -> None:
    query, extra = sent
    response = await client.get(f"/api/v1/occupancy/stream{query}", headers={**headers, **extra})
    assert response.status == status
    assert response.content_type == "application/problem+json"
    assert (await response.json())["invalid_params"][0]["name"] == field


async def test_a_client_whose_queue_overflows_is_cut_off_after_what_was_queued(
    database_url: str, ingest: Running
) -> None:
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with TestClient(TestServer(app)):
        hub = app[HUB]
        await asyncio.wait_for(hub.ready.wait(), TIMEOUT)
        slow = hub.subscribe({})  # nobody reads its queue
        conn = await asyncpg.connect(database_url)
        try:
            for i in range(QUEUE_SIZE + 1):
                await conn.execute(
                    """INSERT INTO desk_state AS s
                       (desk_id, device_id, occupied, since, reported_at, updated_at)
                       VALUES ('d2', 'desk-d2', $1, now(), now(), now())
                       ON CONFLICT (desk_id) DO UPDATE SET occupied = EXCLUDED.occupied""",
                    i % 2 == 0,
                )
        finally:
            await conn.close()
        await eventually(lambda: asyncio.sleep(0, hub.dropped), lambda n: n == 1)
        assert slow.ended
        queued = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
        assert len(queued) == QUEUE_SIZE and None not in queued
        ids = [e.id for e in queued if isinstance(e, DeskEvent)]
        assert ids == sorted(ids)


async def test_shutdown_ends_open_streams(database_url: str, headers: dict[str, str]) -> None:
    from tests.helpers import seed

    await seed(database_url)
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        response = await client.get("/api/v1/occupancy/stream", headers=headers)
        assert response.status == 200
        assert await response.content.readline() == b"retry: 2000\n"
        # 30 s, well below aiohttp's 60 s shutdown timeout: the stream must end itself.
        async with asyncio.timeout(30):
            await client.server.close()
            assert await response.content.read() == b"\n"  # the rest, then a clean end
    finally:
        await client.close()


async def test_a_lost_listener_ends_the_streams_and_comes_back(
    client: Client, headers: dict[str, str], mosquitto: BrokerProcess, database_url: str
) -> None:
    response = await client.get("/api/v1/occupancy/stream", headers=headers)
    killed = await fetch(
        database_url,
        """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND query LIKE 'LISTEN %'
             AND application_name <> 'ikn-display-feed'""",  # the ingest's (display.py)
    )
    assert [r[0] for r in killed] == [True]
    async with asyncio.timeout(TIMEOUT):  # ended, so that the client resumes with its id
        await response.content.read()
    again = await client.get("/api/v1/occupancy/stream", headers=headers)
    assert again.status == 200  # the handler waited for the listener to be back
    Sensor(mosquitto, "desk-d2").report(True)
    _, data = await next_event(again)
    assert data["desk"] == "d2"
    again.close()


# --- Limits (issue 16): streams per token and in all, tokens checked again ---


async def _token(database_url: str, name: str) -> dict[str, str]:
    return await bearer(database_url, name, "facility_manager")


@pytest.fixture
async def limited(database_url: str) -> AsyncIterator[Client]:
    """An API (no ingest needed) with small stream limits and a quick token re-check."""
    from tests.helpers import seed

    await seed(database_url)
    env = {
        "IKN_DATABASE_URL": database_url,
        "IKN_SSE_MAX_PER_TOKEN": "2",
        "IKN_SSE_MAX_STREAMS": "3",
        "IKN_SSE_RECHECK_S": "0.3",
    }
    async with TestClient(TestServer(make_app(api_settings(env)))) as c:
        yield c


async def _opened(client: Client, headers: dict[str, str]) -> aiohttp.ClientResponse:
    response = await client.get("/api/v1/occupancy/stream", headers=headers)
    if response.status == 200:
        assert await response.content.readline() == b"retry: 2000\n"
    return response


async def test_one_token_holds_a_bounded_number_of_streams(
    limited: Client, database_url: str
) -> None:
    ani = await _token(database_url, "ani-dashboard")
    first, second = await _opened(limited, ani), await _opened(limited, ani)
    assert (first.status, second.status) == (200, 200)
    third = await _opened(limited, ani)
    assert third.status == 429 and third.content_type == "application/problem+json"
    assert (await third.json())["type"].endswith("/too-many-streams")
    assert int(third.headers["Retry-After"]) > 0
    # another token is not held back by ani's
    other = await _opened(limited, await _token(database_url, "budi-dashboard"))
    assert other.status == 200
    # a closed stream gives its place back
    first.close()
    again = await eventually(lambda: _opened(limited, ani), lambda r: r.status == 200)
    for response in (second, other, again):
        response.close()


async def test_a_process_holds_a_bounded_number_of_streams(
    limited: Client, database_url: str
) -> None:
    opened = [await _opened(limited, await _token(database_url, f"wall-{i}")) for i in range(3)]
    assert [r.status for r in opened] == [200, 200, 200]
    refused = await _opened(limited, await _token(database_url, "wall-3"))
    assert refused.status == 503 and "Retry-After" in refused.headers
    assert (await refused.json())["type"].endswith("/stream-unavailable")
    for response in opened:
        response.close()


async def test_a_revoked_token_loses_its_open_stream(limited: Client, database_url: str) -> None:
    headers = await _token(database_url, "lobby-screen")
    response = await _opened(limited, headers)
    assert response.status == 200
    await fetch(database_url, "DELETE FROM api_tokens WHERE name = 'lobby-screen'")
    async with asyncio.timeout(TIMEOUT):  # re-checked every 0.3 s: the stream ends
        rest = await response.content.read()
    assert b"data:" not in rest
    again = await limited.get("/api/v1/occupancy/stream", headers=headers)
    assert again.status == 401
