"""Issue 20, outage grace on real processes: the ingest (an ``ikn ingest`` child) and
the API record the platform's own outages in ``platform_disruptions`` once PostgreSQL
is back: PostgreSQL stopped under them (``database_unavailable``), the API's server
errors over a window (``api_errors``), and a gap since the API's last heartbeat when
it starts (``api_unavailable``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from api.app import make_app
from ikn.brokers import BrokerProcess
from ikn_core.contract import encode_batch
from ikn_core.settings import DisruptionSettings
from ikn_store.embedded import EmbeddedPostgres
from ikn_store.tokens import create_token
from tests.helpers import api_settings, eventually, fetch, poll, publish, seed
from tests.test_ingest import _batch, _settings, _start
from tests.test_ingest_resilience import _env, _ingest, _private_postgres

pytestmark = pytest.mark.slow
FAST = {
    "IKN_DISRUPTION_HEARTBEAT_S": "0.2",
    "IKN_DISRUPTION_UNAVAILABLE_S": "1",
    "IKN_DISRUPTION_ERROR_WINDOW_S": "0.5",
    "IKN_DISRUPTION_ERROR_MIN": "3",
    "IKN_DISRUPTION_ERROR_RATE": "0.5",
}


def _windows(url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        try:
            conn = await asyncpg.connect(url)
        except (OSError, asyncpg.PostgresError):
            return []
        try:
            rows = await conn.fetch(
                """SELECT cause, building_id, recorded_by,
                          extract(epoch FROM upper(during) - lower(during)) AS seconds
                   FROM platform_disruptions ORDER BY id"""
            )
        finally:
            await conn.close()
        return [dict(r) for r in rows]

    return asyncio.run(read())


def _beat(url: str, service: str) -> bool:
    async def read() -> bool:
        conn = await asyncpg.connect(url)
        try:
            found: bool = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM platform_heartbeats WHERE service = $1)", service
            )
        finally:
            await conn.close()
        return found

    return asyncio.run(read())


def test_the_ingest_records_a_postgresql_outage_once_it_is_back(
    mosquitto: BrokerProcess, tmp_path: Path
) -> None:
    with _private_postgres(tmp_path) as pg:
        db = pg.url()
        ingest = _ingest({**_env(db, mosquitto), **FAST}, "outage-ingest", tmp_path / "log")
        try:
            poll(lambda: _beat(db, "ingest"), bool, 60)
            assert _windows(db) == []  # its first beat: nothing before it
            pg.stop()
            time.sleep(3)
            pg.start()
            found = poll(lambda: _windows(db), bool, 60)
        finally:
            ingest.terminate()
            assert ingest.wait(timeout=60) == 0
    [window] = found
    assert (window["cause"], window["building_id"], window["recorded_by"]) == (
        "database_unavailable",
        None,
        "ingest",
    )
    assert 2.5 <= window["seconds"] < 30, window


def test_the_api_records_its_gap_at_start_its_errors_and_the_outage(tmp_path: Path) -> None:
    with _private_postgres(tmp_path) as pg:
        found = asyncio.run(_api_through_an_outage(pg))
    causes = {w["cause"]: w for w in found}
    assert set(causes) == {"api_unavailable", "api_errors", "database_unavailable"}, found
    assert all(w["recorded_by"] == "api" and w["building_id"] is None for w in found)
    assert causes["database_unavailable"]["seconds"] >= 1.5


async def _api_through_an_outage(pg: EmbeddedPostgres) -> list[dict[str, Any]]:
    """The API started 1 h after its last beat, then PostgreSQL stopped under it for 2 s
    while it answers 503s: the windows it recorded."""
    db = pg.url()
    conn = await asyncpg.connect(db)
    try:
        token = await create_token(conn, "fm", "facility_manager")
        await conn.execute(
            """INSERT INTO platform_heartbeats (service, beat_at)
               VALUES ('api', now() - interval '1 hour')"""
        )
    finally:
        await conn.close()
    runner = web.AppRunner(make_app(api_settings({"IKN_DATABASE_URL": db, **FAST})))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/devices"
        headers = {"Authorization": f"Bearer {token}"}
        started = await asyncio.to_thread(poll, lambda: _windows(db), bool, 30)
        assert [(w["cause"], w["recorded_by"]) for w in started] == [("api_unavailable", "api")]
        assert 3590 <= started[0]["seconds"] < 3700
        async with aiohttp.ClientSession() as http:
            await asyncio.to_thread(pg.stop)
            for _ in range(5):
                async with http.get(url, headers=headers) as response:
                    assert response.status == 503
            await asyncio.sleep(2)
            await asyncio.to_thread(pg.start)
            found: list[dict[str, Any]] = await asyncio.to_thread(
                poll, lambda: _windows(db), lambda ws: len(ws) >= 3, 60
            )
    finally:
        await runner.cleanup()
    return found


async def test_the_ingest_records_a_buildings_lag_past_its_threshold(
    database_url: str, mosquitto: BrokerProcess
) -> None:
    """With a threshold below any write's time, every batch lags: the window is of the
    building of the device (b1), ``ingest_lag``, recorded by the ingest."""
    await seed(database_url)
    settings = _settings(database_url, mosquitto, "lag-ingest")
    settings = replace(
        settings,
        disruption=DisruptionSettings(heartbeat_s=0.1, ingest_lag_s=0.000_001),
    )
    running = await _start(settings)
    try:
        publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", encode_batch(_batch(True)))
        found = await eventually(
            lambda: fetch(
                database_url,
                "SELECT building_id, cause, recorded_by, detail FROM platform_disruptions",
            ),
            bool,
        )
    finally:
        await running.close()
    [window] = found
    assert (window["building_id"], window["cause"], window["recorded_by"]) == (
        "b1",
        "ingest_lag",
        "ingest",
    )
    assert window["detail"].startswith("readings stored ")
