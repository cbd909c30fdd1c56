"""The ingest on a real Mosquitto and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import orjson
import pytest

from ikn.brokers import BrokerProcess, free_port
from ikn_core.contract import Batch, DeskOccupancy, Status, encode_batch, encode_status
from ikn_core.settings import IngestSettings
from ikn_store.readings.rows import WriteResult
from ingest.service import IngestService
from tests.helpers import eventually, fetch, publish, seed


@dataclass
class Running:
    service: IngestService
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


def _settings(db: str, broker: BrokerProcess | _FakeBroker, client_id: str) -> IngestSettings:
    return IngestSettings.from_env(
        {
            "IKN_DATABASE_URL": db,
            "IKN_MQTT_URL": broker.url,
            "IKN_INGEST_CLIENT_ID": client_id,
            "IKN_INGEST_BATCH_LATENCY_MS": "20",
            "IKN_DESK_VACANT_GRACE_S": "0",  # raw sensor state; test_ingest_derived.py: grace
        }
    )


async def _start(settings: IngestSettings) -> Running:
    service = IngestService(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await eventually(lambda: asyncio.sleep(0, service), lambda s: s.subscribed or task.done())
    return Running(service, stop, task)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _batch(*occupied: bool, stream: str | None = None, ts: int | None = None) -> Batch:
    ts = ts or _now_ms()
    readings = tuple(DeskOccupancy(i, ts + i, o) for i, o in enumerate(occupied))
    return Batch(stream or Batch.new_stream(), readings)


async def _count(db: str, query: str, *args: object) -> int:
    return int((await fetch(db, query, *args))[0][0])


async def test_a_batch_is_stored_once_and_sets_desk_state(
    ingest: Running, database_url: str, mosquitto: BrokerProcess
) -> None:
    payload = encode_batch(_batch(False, True))
    publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", payload)
    await eventually(
        lambda: _count(database_url, "SELECT count(*) FROM readings"), lambda n: n == 2
    )
    state = await eventually(
        lambda: fetch(database_url, "SELECT occupied FROM desk_state WHERE desk_id = 'd1'"),
        lambda rows: len(rows) == 1,
    )
    assert state[0]["occupied"] is True

    publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", payload)  # redelivery of the same batch
    await eventually(
        lambda: asyncio.sleep(0, ingest.service.stats.counts["duplicates"]), lambda n: n == 2
    )
    assert await _count(database_url, "SELECT count(*) FROM readings") == 2


async def test_malformed_payloads_become_dead_letters_and_ingest_goes_on(
    ingest: Running, database_url: str, mosquitto: BrokerProcess
) -> None:
    bad = [
        ("ikn/v1/dev/desk-d1/up", b"\xff not json", "not_json"),
        ("ikn/v1/dev/desk-d1/up", b'{"v":2,"stream":"x","readings":[]}', "bad_version"),
        (
            "ikn/v1/dev/desk-d1/up",
            orjson.dumps(
                {
                    "v": 1,
                    "stream": str(uuid.uuid4()),
                    "readings": [
                        {"seq": "1", "ts": _now_ms(), "kind": "desk_occupancy", "occupied": True}
                    ],
                }
            ),
            "bad_field",
        ),
        ("ikn/v1/dev/no-such-device/up", encode_batch(_batch(True)), "unknown_device"),
        (
            "ikn/v1/dev/desk-d1/up",
            encode_batch(_batch(True, ts=_now_ms() + 3 * 86_400_000)),
            "bad_ts",
        ),
    ]
    for topic, payload, _ in bad:
        publish(mosquitto.port, topic, payload)
    publish(mosquitto.port, "ikn/v1/dev/desk-d2/up", encode_batch(_batch(True)))

    rows = await eventually(
        lambda: fetch(database_url, "SELECT reason, topic, payload, detail FROM dead_letters"),
        lambda r: len(r) == len(bad),
    )
    assert sorted((r["reason"], r["topic"], bytes(r["payload"])) for r in rows) == sorted(
        (reason, topic, payload) for topic, payload, reason in bad
    )
    details = {r["reason"]: r["detail"] for r in rows}
    assert details["bad_field"] == 'readings[0].seq: expected an integer, got a string "1"'
    await eventually(
        lambda: fetch(database_url, "SELECT occupied FROM desk_state WHERE desk_id = 'd2'"),
        lambda r: len(r) == 1 and r[0]["occupied"] is True,
    )


async def test_an_older_reading_never_overrides_a_newer_state(
    ingest: Running, database_url: str, mosquitto: BrokerProcess
) -> None:
    now = _now_ms()
    publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", encode_batch(_batch(True, ts=now)))
    await eventually(
        lambda: _count(database_url, "SELECT count(*) FROM desk_state"), lambda n: n == 1
    )
    publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", encode_batch(_batch(False, ts=now - 60_000)))
    await eventually(
        lambda: _count(database_url, "SELECT count(*) FROM readings"), lambda n: n == 2
    )
    rows = await fetch(database_url, "SELECT occupied FROM desk_state WHERE desk_id = 'd1'")
    assert rows[0]["occupied"] is True


async def test_status_and_will_update_device_health(
    ingest: Running, database_url: str, mosquitto: BrokerProcess
) -> None:
    online = encode_status(Status("online", fw="1.2.0", uptime_s=5, battery_pct=15))
    publish(mosquitto.port, "ikn/v1/dev/desk-d3/status", online, retain=True)
    rows = await eventually(
        lambda: fetch(
            database_url, "SELECT online, status FROM device_status WHERE device_id = 'desk-d3'"
        ),
        lambda r: len(r) == 1 and r[0]["online"] is True,
    )
    assert orjson.loads(rows[0]["status"])["fw"] == "1.2.0"
    assert orjson.loads(rows[0]["status"])["battery_pct"] == 15
    publish(
        mosquitto.port, "ikn/v1/dev/desk-d3/status", encode_status(Status("offline")), retain=True
    )
    await eventually(
        lambda: fetch(database_url, "SELECT online FROM device_status WHERE device_id = 'desk-d3'"),
        lambda r: r[0]["online"] is False,
    )


async def test_what_is_published_while_the_ingest_is_down_arrives_after_restart(
    database_url: str, mosquitto: BrokerProcess
) -> None:
    await seed(database_url)
    settings = _settings(database_url, mosquitto, "ingest-persistent")
    first = await _start(settings)
    await first.close()

    publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", encode_batch(_batch(True, False, True)))
    second = await _start(settings)
    try:
        await eventually(
            lambda: _count(database_url, "SELECT count(*) FROM readings"), lambda n: n == 3
        )
    finally:
        await second.close()


async def test_metrics_count_what_happened(database_url: str, mosquitto: BrokerProcess) -> None:
    await seed(database_url)
    port = free_port()
    settings = IngestSettings.from_env(
        {
            "IKN_DATABASE_URL": database_url,
            "IKN_MQTT_URL": mosquitto.url,
            "IKN_INGEST_CLIENT_ID": "ingest-metrics",
            "IKN_INGEST_METRICS_PORT": str(port),
        }
    )
    running = await _start(settings)
    try:
        publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", encode_batch(_batch(True, False)))
        publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", b"{")

        async def scrape() -> str:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/metrics") as response,
            ):
                return await response.text()

        text = await eventually(scrape, lambda t: 'reason="not_json"} 1.0' in t)
        assert "ikn_ingest_readings_stored_total 2.0" in text
        assert "ikn_ingest_messages_total 2.0" in text
        assert "ikn_ingest_lag_seconds_count 1.0" in text
    finally:
        await running.close()


async def test_a_desk_sensor_checks_in_the_booking_of_that_desk(
    ingest: Running, database_url: str, mosquitto: BrokerProcess
) -> None:
    """Through the real path: sensor reading -> MQTT -> ingest -> booking checked in,
    only for an occupied reading inside the check-in window (15 min before the start)."""
    now = datetime.now(UTC).replace(microsecond=0)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO people (id, name, agency, unit) "
            "VALUES ('p1', 'Siti', 'kemen', 'u1'), ('p2', 'Budi', 'kemen', 'u1')"
        )
        booking = """INSERT INTO bookings (desk_id, person_id, created_by, period)
                     VALUES ($1, $2, $2, tstzrange($3, $4)) RETURNING id"""
        starts_soon = await conn.fetchval(
            booking, "d1", "p1", now + timedelta(minutes=10), now + timedelta(hours=2)
        )
        later = await conn.fetchval(
            booking, "d2", "p2", now + timedelta(hours=1), now + timedelta(hours=3)
        )
    finally:
        await conn.close()

    publish(mosquitto.port, "ikn/v1/dev/desk-d2/up", encode_batch(_batch(True)))  # too early
    publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", encode_batch(_batch(False)))  # empty
    publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", encode_batch(_batch(True)))
    rows = await eventually(
        lambda: fetch(database_url, "SELECT id, status, check_in_signal FROM bookings"),
        lambda r: any(x["status"] == "checked_in" for x in r),
    )
    await eventually(
        lambda: _count(database_url, "SELECT count(*) FROM readings"), lambda n: n == 3
    )
    rows = await fetch(database_url, "SELECT id, status, check_in_signal FROM bookings")
    status = {r["id"]: (r["status"], r["check_in_signal"]) for r in rows}
    assert status == {starts_soon: ("checked_in", "sensor"), later: ("booked", None)}


async def test_a_connection_lost_while_writing_apart_is_retried_not_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch is refused for its content, then the connection breaks while its messages
    are written one by one: the ingest waits and retries, it does not end (a real
    PostgreSQL restart once did this; tests/test_ingest_resilience.py covers the restart)."""
    service = IngestService(_settings("postgresql://h/db", _FakeBroker(), "unit"))
    attempts: list[int] = []

    async def write_once(_pool: object, decoded: list[object]) -> WriteResult:
        attempts.append(len(decoded))
        if len(attempts) == 1:
            raise asyncpg.DataError("refused for its content")
        if len(attempts) == 2:
            raise ConnectionResetError(104, "Connection reset by peer")
        return WriteResult(stored=len(decoded))

    monkeypatch.setattr(service, "_write_once", write_once)
    monkeypatch.setattr("ingest.service.RETRY_MAX_DELAY_S", 0.01)
    result = await service._write(object(), [object(), object()], asyncio.Event())  # type: ignore[list-item]
    assert result is not None and result.stored == 2
    assert attempts == [2, 1, 2]
    assert service.stats.metrics.db_retries._value.get() == 1


class _FakeBroker:
    url = "mqtt://127.0.0.1:1883"
