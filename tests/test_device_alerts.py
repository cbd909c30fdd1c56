"""Fleet alerts from what devices sent lately: a flooding device and a drifting clock
(ahead, or behind even in its freshest reading), alongside offline and unsynced
clocks; listed by the devices API and counted in the ingest's Prometheus gauge."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn_core.attendance import Policies
from ikn_core.attendance.policy import READER_MAX_TOKENS_PER_MINUTE as TAP_TOKENS_PER_MIN
from ikn_core.settings import IngestSettings
from ikn_store.fleet.devices import (
    ALERTS,
    FLOOD_READINGS_PER_MIN,
    RECENT_WINDOW,
    DeviceView,
    alert_counts,
    device_alerts,
    list_devices,
)
from ikn_store.pool import create_pool
from ikn_store.readings.partitions import ensure_partitions
from ikn_store.tokens import create_token
from ingest.service import IngestService
from tests.helpers import api_settings, seed

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _view(**changes: object) -> DeviceView:
    base: dict[str, object] = {
        "id": "desk-d1",
        "kind": "desk_sensor",
        "building_id": "b1",
        "zone_id": None,
        "desk_id": "d1",
        "enabled": True,
        "expected_interval_s": 300,
        "online": True,
        "last_seen": NOW - timedelta(seconds=5),
        "status_at": NOW,
        "status": {"v": 1, "state": "online", "clock_synced": True},
        "has_credentials": True,
        "recent_readings": 10,
        "clock_offset_s": 0.2,
    }
    return DeviceView(**{**base, **changes})  # type: ignore[arg-type]


def test_a_healthy_device_has_no_alerts() -> None:
    assert device_alerts(_view(), NOW) == []


def test_each_alert_and_its_bound() -> None:
    flood = int(FLOOD_READINGS_PER_MIN * RECENT_WINDOW.total_seconds() / 60)
    assert device_alerts(_view(recent_readings=flood), NOW) == []
    assert device_alerts(_view(recent_readings=flood + 1), NOW) == ["flooding"]
    assert device_alerts(_view(clock_offset_s=-61.0), NOW) == ["clock-drift"]  # ahead
    assert device_alerts(_view(clock_offset_s=-59.0), NOW) == []
    assert device_alerts(_view(clock_offset_s=901.0), NOW) == ["clock-drift"]  # behind
    assert device_alerts(_view(last_seen=NOW - timedelta(seconds=301)), NOW) == ["offline"]
    assert device_alerts(_view(status={"v": 1, "state": "online", "clock_synced": False}), NOW) == [
        "clock-not-synced"
    ]
    low = {"v": 1, "state": "online", "clock_synced": True, "battery_pct": 19}
    assert device_alerts(_view(status=low), NOW) == ["battery-low"]
    assert device_alerts(_view(status={**low, "battery_pct": 20}), NOW) == []
    assert device_alerts(_view(enabled=False, recent_readings=10**6), NOW) == []


async def _readings(conn: asyncpg.Connection, device: str, n: int, ts: datetime) -> None:
    stream = str(uuid.uuid4())
    rows = [
        (device, stream, seq, ts, datetime.now(UTC), "desk_occupancy", '{"occupied": true}')
        for seq in range(n)
    ]
    await conn.executemany(
        """INSERT INTO readings (device_id, stream, seq, ts, received_at, kind, body)
           VALUES ($1, $2::uuid, $3, $4, $5, $6, $7::jsonb)""",
        rows,
    )


async def test_recent_readings_raise_flooding_and_clock_drift(database_url: str) -> None:
    await seed(database_url)
    now = datetime.now(UTC)
    flood = int(FLOOD_READINGS_PER_MIN * RECENT_WINDOW.total_seconds() / 60) + 1
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_partitions(conn, {now.date(), (now + timedelta(hours=2)).date()})
        await _readings(conn, "desk-d1", 3, now + timedelta(minutes=10))  # clock ahead
        await _readings(conn, "desk-d2", flood, now)
        await _readings(conn, "desk-d3", 2, now)
        views = {v.id: v for v in await list_devices(conn)}
        counts = await alert_counts(conn, datetime.now(UTC))
        token = await create_token(conn, "fm", "facility_manager")
    finally:
        await conn.close()
    assert "clock-drift" in device_alerts(views["desk-d1"], now)
    assert "flooding" in device_alerts(views["desk-d2"], now)
    assert views["desk-d2"].recent_readings == flood
    assert not {"clock-drift", "flooding"} & set(device_alerts(views["desk-d3"], now))
    assert counts["clock-drift"] == 1 and counts["flooding"] == 1

    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with TestClient(TestServer(app)) as client:
        response = await client.get(
            "/api/v1/devices/alerts", headers={"Authorization": f"Bearer {token}"}
        )
        listed = {d["id"]: d["alerts"] for d in (await response.json())["devices"]}
    assert "clock-drift" in listed["desk-d1"] and "flooding" in listed["desk-d2"]

    service = IngestService(
        IngestSettings.from_env(
            {"IKN_DATABASE_URL": database_url, "IKN_MQTT_URL": "mqtt://127.0.0.1:1"}
        )
    )
    pool = await create_pool(database_url, 2)
    try:
        await service._count_alerts(pool)
    finally:
        await pool.close()
    registry = service.stats.metrics.registry
    for alert in ALERTS:
        expected = 1 if alert in ("flooding", "clock-drift") else counts[alert]
        assert registry.get_sample_value("ikn_device_alerts", {"alert": alert}) == expected


async def _taps(conn: asyncpg.Connection, device: str, tokens: int, ts: datetime) -> None:
    stream = str(uuid.uuid4())
    rows = [
        (device, stream, n, ts + timedelta(seconds=n % 50), datetime.now(UTC), f"b1:{n:043d}")
        for n in range(tokens)
    ]
    await conn.executemany(
        """INSERT INTO readings (device_id, stream, seq, ts, received_at, kind, body)
           VALUES ($1, $2::uuid, $3, $4, $5, 'badge_tap', jsonb_build_object('badge', $6::text))""",
        rows,
    )


async def test_implausible_taps_raise_an_alert_for_their_reader(database_url: str) -> None:
    """More than the policy's badge_readers.max_tokens_per_minute (30) distinct tokens in
    a minute at one reader, or a tap outside the opening hours (the working hours +- 60
    min: 06:30-17:30) in the building's zone, are alerts of that reader."""
    assert Policies.default().in_force(date(2026, 12, 7)).opening_hours(date(2026, 12, 7)) == (
        time(6, 30),
        time(17, 30),
    )
    await seed(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        tz = ZoneInfo(await conn.fetchval("SELECT tz FROM buildings WHERE id = 'b1'"))
        today = datetime.now(tz).date()
        await ensure_partitions(conn, {today - timedelta(1), today, today + timedelta(1)})
        await conn.execute(
            """INSERT INTO devices (id, kind, building_id) VALUES ('door-ok', 'badge_reader', 'b1'),
               ('door-busy', 'badge_reader', 'b1'), ('door-night', 'badge_reader', 'b1')"""
        )
        mid_morning = datetime.combine(today, time(10, 0), tz)
        await _taps(conn, "door-ok", TAP_TOKENS_PER_MIN, mid_morning)
        await _taps(conn, "door-busy", TAP_TOKENS_PER_MIN + 1, mid_morning)
        await _taps(conn, "door-night", 1, datetime.combine(today, time(3, 0), tz))
        await _taps(conn, "door-ok", 1, datetime.combine(today, time(6, 30), tz))  # the margin
        views = {v.id: v for v in await list_devices(conn)}
        token = await create_token(conn, "fm", "facility_manager")
    finally:
        await conn.close()
    now = datetime.now(UTC)
    taps = {"implausible-tap-rate", "taps-outside-hours"}
    assert views["door-busy"].tap_tokens_per_min == TAP_TOKENS_PER_MIN + 1
    assert taps & set(device_alerts(views["door-ok"], now)) == set()
    assert taps & set(device_alerts(views["door-busy"], now)) == {"implausible-tap-rate"}
    assert taps & set(device_alerts(views["door-night"], now)) == {"taps-outside-hours"}
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with TestClient(TestServer(app)) as client:
        response = await client.get(
            "/api/v1/devices/alerts", headers={"Authorization": f"Bearer {token}"}
        )
        listed = {d["id"]: d["alerts"] for d in (await response.json())["devices"]}
    assert "implausible-tap-rate" in listed["door-busy"]
    assert "taps-outside-hours" in listed["door-night"]
