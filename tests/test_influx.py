"""The InfluxDB sink against a real server implementing the InfluxDB v2 write API
(victoria-metrics: ``/api/v2/write``; its ``/api/v1/export`` shows what arrived)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from influxdb_client.rest import ApiException

from ikn.brokers import BrokerProcess, free_port, wait_for_port
from ikn_core.contract import Batch, DeskOccupancy, Environment, PeopleCount, encode_batch
from ikn_core.domain import Device, DeviceKind
from ikn_core.settings import InfluxSettings, IngestSettings
from ikn_store.readings.rows import DevicePlace, ReadingRow
from ingest.influx import _retryable, line
from tests.helpers import SMALL_SITE, eventually, fetch, publish, seed
from tests.test_ingest import Running, _start

INSTALL_HINT = "victoria-metrics is needed: apt-get install victoria-metrics (scripts/setup dev)"


@dataclass
class VictoriaMetrics:
    port: int
    datadir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("victoria-metrics")
        if binary is None:
            pytest.fail(INSTALL_HINT, pytrace=False)
        log_path = self.datadir.with_suffix(".log")
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"-storageDataPath={self.datadir}",
                    f"-httpListenAddr=127.0.0.1:{self.port}",
                    "-retentionPeriod=100y",
                ],
                stdout=out,
                stderr=out,
            )
        wait_for_port("127.0.0.1", self.port, self.proc, 30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A private victoria-metrics on a free loopback port, for this test alone."""
    vm = VictoriaMetrics(free_port(), tmp_path / "vm")
    vm.start()
    yield vm
    vm.stop()


async def _exported(vm: VictoriaMetrics) -> dict[tuple[str, str], dict[int, float]]:
    """What victoria-metrics holds: (metric name, device) -> {ms: value}."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(f"{vm.url}/internal/force_flush") as response:
            response.raise_for_status()
        params = {"match[]": '{__name__!=""}'}
        async with session.get(f"{vm.url}/api/v1/export", params=params) as response:
            response.raise_for_status()
            text = await response.text()
    out: dict[tuple[str, str], dict[int, float]] = {}
    for raw in text.splitlines():
        doc: dict[str, Any] = orjson.loads(raw)
        metric = doc["metric"]
        series = out.setdefault((metric["__name__"], metric.get("device", "")), {})
        series.update(zip(doc["timestamps"], doc["values"], strict=True))
    return out


def _settings(db: str, broker: BrokerProcess, influx_url: str, **extra: str) -> IngestSettings:
    return IngestSettings.from_env(
        {
            "IKN_DATABASE_URL": db,
            "IKN_MQTT_URL": broker.url,
            "IKN_INGEST_CLIENT_ID": f"ingest-{uuid.uuid4().hex[:8]}",
            "IKN_INGEST_BATCH_LATENCY_MS": "20",
            "IKN_INFLUX_URL": influx_url,
            "IKN_INFLUX_ORG": "ikn",
            "IKN_INFLUX_BUCKET": "readings",
            "IKN_INFLUX_FLUSH_MS": "50",
            **extra,
        }
    )


def _sample(running: Running, name: str, **labels: str) -> float:
    value = running.service.stats.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_readings_arrive_in_influx_with_values_tags_and_times(
    database_url: str, mosquitto: BrokerProcess, victoria: VictoriaMetrics
) -> None:
    sensors = (
        Device("count-1", DeviceKind.PEOPLE_COUNTER, "b1", "b1-f1-a"),
        Device("air-1", DeviceKind.ENVIRONMENT, "b1", "b1-f1-a"),
    )
    await seed(database_url, replace(SMALL_SITE, devices=SMALL_SITE.devices + sensors))
    running = await _start(_settings(database_url, mosquitto, victoria.url))
    try:
        t0 = int(time.time() * 1000) - 60_000
        sent = {
            "desk-d1": (DeskOccupancy(1, t0, True), DeskOccupancy(2, t0 + 1000, False)),
            "count-1": (PeopleCount(3, t0 + 2000, 7),),
            "air-1": (Environment(4, t0 + 3000, co2_ppm=612, temp_c=24.5),),
        }
        for device, readings in sent.items():
            batch = encode_batch(Batch(Batch.new_stream(), readings))
            publish(mosquitto.port, f"ikn/v1/dev/{device}/up", batch)
        publish(
            mosquitto.port,
            "ikn/v1/dev/no-such-device/up",
            encode_batch(Batch(Batch.new_stream(), sent["desk-d1"])),
        )
        expected = {
            ("desk_occupancy_occupied", "desk-d1"): {t0: 1.0, t0 + 1000: 0.0},
            ("people_count_count", "count-1"): {t0 + 2000: 7.0},
            ("environment_co2_ppm", "air-1"): {t0 + 3000: 612.0},
            ("environment_temp_c", "air-1"): {t0 + 3000: 24.5},
        }
        await eventually(lambda: _exported(victoria), lambda got: got == expected)
        assert _sample(running, "ikn_ingest_influx_written_total") == 4
        stored = await fetch(database_url, "SELECT count(*) FROM readings")
        assert stored[0][0] == 4
    finally:
        await running.close()


async def test_influx_down_never_holds_up_postgresql_and_drops_are_counted(
    database_url: str, mosquitto: BrokerProcess, victoria: VictoriaMetrics
) -> None:
    await seed(database_url)
    victoria.stop()
    running = await _start(
        _settings(
            database_url,
            mosquitto,
            victoria.url,
            IKN_INFLUX_BUFFER_MAX="50",
            IKN_INFLUX_BATCH_SIZE="10",
            IKN_INFLUX_TIMEOUT_MS="500",
        )
    )
    try:
        t0 = int(time.time() * 1000) - 60_000
        for n in range(4):
            batch = Batch(
                Batch.new_stream(),
                tuple(DeskOccupancy(n * 50 + i, t0 + n * 50 + i, i % 2 == 0) for i in range(50)),
            )
            publish(mosquitto.port, "ikn/v1/dev/desk-d2/up", encode_batch(batch))
        await eventually(
            lambda: fetch(database_url, "SELECT count(*) FROM readings"), lambda r: r[0][0] == 200
        )
        await eventually(
            _async(lambda: _sample(running, "ikn_ingest_influx_failures_total")), lambda n: n >= 1
        )
        dropped = _sample(running, "ikn_ingest_influx_dropped_total", reason="buffer_full")
        assert 200 - 50 - 10 <= dropped < 200  # the buffer holds 50, one batch of 10 in flight
        assert _sample(running, "ikn_ingest_influx_written_total") == 0

        victoria.start()  # back: what the buffer held arrives, nothing more is lost
        got = await eventually(
            lambda: _exported(victoria),
            lambda got: len(got.get(("desk_occupancy_occupied", "desk-d2"), {})) == 200 - dropped,
        )
        assert _sample(running, "ikn_ingest_influx_written_total") == 200 - dropped
        series = got[("desk_occupancy_occupied", "desk-d2")]
        assert all(value == (1.0 if (ms - t0) % 2 == 0 else 0.0) for ms, value in series.items())
    finally:
        await running.close()


def _async(probe: Any) -> Any:
    async def run() -> Any:
        return probe()

    return run


def test_line_protocol_escapes_and_types() -> None:
    ts = datetime(2026, 11, 23, 1, 2, 3, 456000, tzinfo=UTC)
    row = ReadingRow("dev 1", "s", 1, ts, ts, "environment", {"co2_ppm": 600, "temp_c": None})
    place = DevicePlace("b,1", "f=1", None)
    assert line(row, place) == (
        r"environment,device=dev\ 1,building=b\,1,floor=f\=1 co2_ppm=600.0 1795395723456"
    )
    tap = ReadingRow("r1", "s", 2, ts, ts, "badge_tap", {"badge": "tok", "direction": 'i"n'})
    assert line(tap, None) == r'badge_tap,device=r1 direction="i\"n" 1795395723456'
    desk = ReadingRow("d1", "s", 3, ts, ts, "desk_occupancy", {"occupied": False})
    assert line(desk, None) == "desk_occupancy,device=d1 occupied=false 1795395723456"


def _api_error(status: int) -> ApiException:
    return ApiException(status=status, reason="from the server")  # type: ignore[no-untyped-call]


def test_only_a_server_away_or_overloaded_is_retried() -> None:
    assert not _retryable(_api_error(400))
    assert not _retryable(_api_error(401))
    assert _retryable(_api_error(429))
    assert _retryable(_api_error(503))
    assert _retryable(_api_error(0))
    assert _retryable(OSError("connection refused"))


def test_influx_settings_need_org_and_bucket_and_hide_the_token() -> None:
    from ikn_core.errors import SettingsError

    base = {"IKN_DATABASE_URL": "postgresql://x@h/db", "IKN_MQTT_URL": "mqtt://h"}
    with pytest.raises(SettingsError) as err:
        IngestSettings.from_env({**base, "IKN_INFLUX_URL": "http://h:8086"})
    assert "IKN_INFLUX_ORG" in str(err.value) and "IKN_INFLUX_BUCKET" in str(err.value)
    settings = IngestSettings.from_env(
        {
            **base,
            "IKN_INFLUX_URL": "http://h:8086",
            "IKN_INFLUX_ORG": "o",
            "IKN_INFLUX_BUCKET": "b",
            "IKN_INFLUX_TOKEN": "s3cret",
        }
    )
    assert settings.influx == InfluxSettings("http://h:8086", "o", "b", "s3cret")
    assert "s3cret" not in repr(settings)
    assert IngestSettings.from_env(base).influx is None
