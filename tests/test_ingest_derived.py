"""Derived state of the ingest: desk debounce (a desk left for less than the grace
still counts as in use) and zone people counts, run in the building's zone
(Asia/Makassar) for both the test process and the database sessions."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn.brokers import BrokerProcess
from ikn_core.contract import Batch, DeskOccupancy, encode_batch
from ikn_core.domain import Device, DeviceKind
from ikn_core.settings import IngestSettings
from ikn_store.pool import create_pool
from ikn_store.readings.partitions import ensure_partitions
from ikn_store.readings.rows import ReadingRow, UpMessage, release_vacant_desks, write
from ikn_store.tokens import create_token
from tests.helpers import SMALL_SITE, api_settings, eventually, fetch, publish, seed
from tests.test_ingest import _start

ZONE = "Asia/Makassar"
SITE = dataclasses.replace(
    SMALL_SITE,
    devices=(*SMALL_SITE.devices, Device("count-a", DeviceKind.PEOPLE_COUNTER, "b1", "b1-f1-a")),
)


@pytest.fixture(autouse=True)
def makassar(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", ZONE)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the ingest has them, every session of the database in the
    building's zone."""
    await seed(database_url, SITE)
    conn = await asyncpg.connect(database_url)
    try:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f"ALTER DATABASE {name} SET timezone = '{ZONE}'")
    finally:
        await conn.close()
    pool = await create_pool(database_url, 2)
    try:
        async with pool.acquire() as conn:
            today = datetime.now(UTC).date()
            await ensure_partitions(conn, {today + timedelta(days=n) for n in (-1, 0, 1)})
            yield conn
    finally:
        await pool.close()


def _message(device: str, *readings: tuple[datetime, str, dict[str, object]]) -> UpMessage:
    stream = str(uuid.uuid4())
    now = datetime.now(UTC)
    rows = tuple(
        ReadingRow(device, stream, seq, ts, now, kind, body)
        for seq, (ts, kind, body) in enumerate(readings, 1)
    )
    return UpMessage(f"ikn/v1/dev/{device}/up", device, b"{}", now, rows)


def _desk(ts: datetime, occupied: bool) -> tuple[datetime, str, dict[str, object]]:
    return (ts, "desk_occupancy", {"occupied": occupied})


async def _state(conn: asyncpg.Connection) -> tuple[bool, datetime, datetime | None]:
    row = await conn.fetchrow(
        "SELECT occupied, since, vacant_since FROM desk_state WHERE desk_id = 'd1'"
    )
    assert row is not None
    return row["occupied"], row["since"], row["vacant_since"]


async def _events(conn: asyncpg.Connection) -> list[tuple[bool, datetime]]:
    rows = await conn.fetch("SELECT occupied, at FROM desk_events WHERE desk_id = 'd1' ORDER BY id")
    return [(r["occupied"], r["at"]) for r in rows]


async def test_a_desk_left_within_the_grace_stays_in_use_then_turns_free_when_it_ends(
    db: asyncpg.Connection,
) -> None:
    grace = timedelta(minutes=5)
    now = datetime.now(UTC).replace(microsecond=0)
    sat, left = now - timedelta(minutes=3), now - timedelta(minutes=1)
    await write(db, [_message("desk-d1", _desk(sat, True))], vacant_grace=grace)
    await write(db, [_message("desk-d1", _desk(left, False))], vacant_grace=grace)
    assert await _state(db) == (True, sat, left)  # in use: left 1 min ago, grace 5 min
    assert await _events(db) == [(True, sat)]

    assert await release_vacant_desks(db, grace) == 0
    assert await release_vacant_desks(db, timedelta(seconds=30)) == 1  # a shorter grace ran out
    assert await _state(db) == (False, left, None)
    assert await _events(db) == [(True, sat), (False, left)]  # one change, at the time it was left
    assert await db.fetchval("SHOW timezone") == ZONE  # the session ran in the building's zone


async def test_coming_back_within_the_grace_is_no_change(db: asyncpg.Connection) -> None:
    grace = timedelta(minutes=5)
    now = datetime.now(UTC).replace(microsecond=0)
    sat = now - timedelta(minutes=4)
    for minutes_ago, occupied in ((4, True), (3, False), (2, True)):
        reading = _desk(now - timedelta(minutes=minutes_ago), occupied)
        await write(db, [_message("desk-d1", reading)], vacant_grace=grace)
    assert await _state(db) == (True, sat, None)
    assert await release_vacant_desks(db, timedelta(0)) == 0
    assert await _events(db) == [(True, sat)]


async def test_a_vacancy_older_than_the_grace_frees_the_desk_at_once(
    db: asyncpg.Connection,
) -> None:
    grace = timedelta(minutes=5)
    now = datetime.now(UTC).replace(microsecond=0)
    sat, left = now - timedelta(minutes=30), now - timedelta(minutes=20)
    await write(db, [_message("desk-d1", _desk(sat, True))], vacant_grace=grace)
    await write(db, [_message("desk-d1", _desk(left, False))], vacant_grace=grace)  # late
    assert await _state(db) == (False, left, None)
    # and a vacant heartbeat of a free desk changes nothing
    await write(db, [_message("desk-d1", _desk(now, False))], vacant_grace=grace)
    assert await _state(db) == (False, left, None)
    assert await _events(db) == [(True, sat), (False, left)]


async def test_the_ingest_frees_a_desk_once_its_grace_has_passed(
    db: asyncpg.Connection, database_url: str, mosquitto: BrokerProcess
) -> None:
    settings = IngestSettings.from_env(
        {
            "IKN_DATABASE_URL": database_url,
            "IKN_MQTT_URL": mosquitto.url,
            "IKN_INGEST_CLIENT_ID": f"ingest-{uuid.uuid4().hex[:8]}",
            "IKN_INGEST_BATCH_LATENCY_MS": "20",
            "IKN_DESK_VACANT_GRACE_S": "2",
        }
    )
    running = await _start(settings)
    try:
        stream = Batch.new_stream()
        ms = int(time.time() * 1000)
        for seq, occupied in ((1, True), (2, False)):
            batch = Batch(stream, (DeskOccupancy(seq, ms + seq, occupied),))
            publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", encode_batch(batch))
            await eventually(lambda: fetch(database_url, "SELECT 1 FROM readings"), bool)
        await eventually(
            lambda: fetch(database_url, "SELECT count(*) FROM readings"), lambda r: r[0][0] == 2
        )
        left = datetime.fromtimestamp((ms + 2) / 1000, UTC)
        # until the grace has passed the desk is in use, then it is free since it was left
        state = await eventually(lambda: _state(db), lambda s: not s[0], within=20)
        assert state == (False, left, None)
        assert [o for o, _ in await _events(db)] == [True, False]
    finally:
        await running.close()


async def test_zone_people_counts_keep_the_newest_and_show_in_the_live_view(
    db: asyncpg.Connection, database_url: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    newest = now - timedelta(seconds=30)
    await write(
        db,
        [
            _message(
                "count-a",
                (now - timedelta(minutes=2), "people_count", {"count": 5}),
                (newest, "people_count", {"count": 7}),
            )
        ],
    )
    await write(
        db, [_message("count-a", (now - timedelta(minutes=1), "people_count", {"count": 3}))]
    )
    token = await create_token(db, "fm", "facility_manager")
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with TestClient(TestServer(app)) as client:
        response = await client.get(
            "/api/v1/occupancy/live?floor=b1-f1", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 200
        body = await response.json()
        other = await client.get(
            "/api/v1/occupancy/live?floor=b1-f2", headers={"Authorization": f"Bearer {token}"}
        )
        assert (await other.json())["zone_counts"] == []
    (zone,) = body["zone_counts"]
    assert {k: zone[k] for k in ("zone", "floor", "people", "sensor")} == {
        "zone": "b1-f1-a",
        "floor": "b1-f1",
        "people": 7,
        "sensor": "count-a",
    }
    assert datetime.fromisoformat(zone["reported_at"]) == newest
    assert zone["reported_at"].endswith("+08:00")
    assert 30 <= zone["age_s"] < 120
