"""The optional InfluxDB v2 sink: stored readings also go out as line protocol.

It runs beside the PostgreSQL path and never holds it up: ``offer`` (called after
the commit and the acks) only appends to a bounded buffer, and a background task
writes batches through ``influxdb-client``. When the buffer is full, new readings
are dropped and counted (``ikn_ingest_influx_dropped{reason="buffer_full"}``);
a batch the server refuses for its content (4xx other than 429) is dropped and
counted as ``rejected``; a server that is away or failing (connection errors,
timeouts, 429, 5xx) gets the same batch again with backoff, while new readings
keep filling the buffer up to its bound.

One line per reading: measurement = kind, tags ``device``, ``building``, ``floor``,
``zone`` (those known), fields from the reading body (numbers as floats so a field
never changes type, booleans as booleans, strings quoted), time in milliseconds.
Badge tokens are not sent (personal data stays in PostgreSQL only).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from ikn_core.settings import InfluxSettings
from ikn_store.readings.rows import DevicePlace, ReadingRow, UpMessage
from ingest.decode import Decoded
from ingest.metrics import IngestMetrics

log = logging.getLogger(__name__)

_MS = cast(WritePrecision, WritePrecision.MS)  # the library types its constants as str

RETRY_MAX_DELAY_S = 30.0
_NOT_SENT = frozenset({"badge"})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({'"': r"\"", "\\": r"\\"})


class Writer(Protocol):
    async def __call__(self, lines: str) -> None: ...


def line(row: ReadingRow, place: DevicePlace | None) -> str | None:
    """The line protocol of one reading; None when it has no field to send."""
    fields = ",".join(
        f"{_tag(k)}={_field(v)}"
        for k, v in row.body.items()
        if k not in _NOT_SENT and v is not None and not isinstance(v, dict | list)
    )
    if not fields:
        return None
    tags = f"device={_tag(row.device_id)}"
    if place is not None:
        for key, value in (
            ("building", place.building_id),
            ("floor", place.floor_id),
            ("zone", place.zone_id),
        ):
            if value:
                tags += f",{key}={_tag(value)}"
    ms = int(row.ts.timestamp() * 1000)
    return f"{row.kind.translate(_MEASUREMENT_ESCAPES)},{tags} {fields} {ms}"


def _tag(text: str) -> str:
    return text.translate(_TAG_ESCAPES)


def _field(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    return '"' + str(value).translate(_STRING_ESCAPES) + '"'


def _retryable(exc: BaseException) -> bool:
    """A server away or overloaded: worth the same batch again. A 4xx says the batch is bad."""
    status = getattr(exc, "status", None)
    if isinstance(exc, ApiException) and isinstance(status, int) and 400 <= status < 500:
        return status == 429
    return True


class InfluxSink:
    """Bounded buffer of readings, drained by ``run`` in batches."""

    def __init__(self, settings: InfluxSettings, metrics: IngestMetrics, writer: Writer) -> None:
        self.settings = settings
        self.metrics = metrics
        self._write = writer
        self._buffer: deque[tuple[ReadingRow, DevicePlace | None]] = deque()
        self._wake = asyncio.Event()
        self._full = False  # log the start of a drop run once, not every batch

    def offer(self, messages: Iterable[Decoded], places: Mapping[str, DevicePlace]) -> None:
        """Queue the readings of the stored messages; never waits."""
        room = self.settings.buffer_max - len(self._buffer)
        dropped = 0
        for item in messages:
            if not isinstance(item, UpMessage) or item.device_id not in places:
                continue
            place = places[item.device_id]
            take = max(0, min(room, len(item.rows)))
            self._buffer.extend((row, place) for row in item.rows[:take])
            room -= take
            dropped += len(item.rows) - take
        if dropped:
            self.metrics.influx_dropped.labels("buffer_full").inc(dropped)
            if not self._full:
                log.warning("InfluxDB buffer full (%d readings): dropping", len(self._buffer))
            self._full = True
        elif room > 0:
            self._full = False
        self.metrics.influx_buffer.set(len(self._buffer))
        if len(self._buffer) >= self.settings.batch_size:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Write batches every ``flush_ms`` (sooner when a batch is full) until ``stop``."""
        while not stop.is_set():
            await _wait_any(self._wake, stop, self.settings.flush_ms / 1000)
            self._wake.clear()
            while self._buffer and not stop.is_set():
                await self._send(self._take(), stop)
        if self._buffer:
            self.metrics.influx_dropped.labels("shutdown").inc(len(self._buffer))
            self._buffer.clear()

    def _take(self) -> list[tuple[ReadingRow, DevicePlace | None]]:
        n = min(self.settings.batch_size, len(self._buffer))
        batch = [self._buffer.popleft() for _ in range(n)]
        self.metrics.influx_buffer.set(len(self._buffer))
        return batch

    async def _send(
        self, batch: Sequence[tuple[ReadingRow, DevicePlace | None]], stop: asyncio.Event
    ) -> None:
        lines = [text for row, place in batch if (text := line(row, place)) is not None]
        if not lines:
            return
        body = "\n".join(lines)
        delay = 0.5
        while True:
            try:
                await self._write(body)
            except Exception as exc:
                if not _retryable(exc):
                    self.metrics.influx_dropped.labels("rejected").inc(len(batch))
                    log.warning("InfluxDB refused %d readings: %s", len(batch), exc)
                    return
                self.metrics.influx_failures.inc()
                log.warning("InfluxDB write failed (%s); retry in %.1f s", exc, delay)
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    self.metrics.influx_dropped.labels("shutdown").inc(len(batch))
                    return
                except TimeoutError:
                    pass
                delay = min(delay * 2, RETRY_MAX_DELAY_S)
            else:
                self.metrics.influx_written.inc(len(batch))
                return


async def _wait_any(event: asyncio.Event, stop: asyncio.Event, within: float) -> None:
    """Wait for ``event`` or ``stop``, at most ``within`` s."""
    waits = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


class InfluxClient:
    """``influxdb-client``'s async write API as a ``Writer``; use with ``async with``."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        self._client: InfluxDBClientAsync | None = None

    async def __aenter__(self) -> InfluxClient:
        s = self.settings
        self._client = InfluxDBClientAsync(s.url, token=s.token, org=s.org, timeout=s.timeout_ms)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]

    async def __call__(self, lines: str) -> None:
        assert self._client is not None
        await self._client.write_api().write(
            bucket=self.settings.bucket,
            org=self.settings.org,
            record=lines,
            write_precision=_MS,
        )
