"""Several batches written at once are still acknowledged in the order they arrived
(MQTT wants PUBACKs in order), each only after its own write finished."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ikn_core.settings import IngestSettings
from ikn_store.readings.rows import WriteResult
from ingest.decode import Decoded, Received
from ingest.service import IngestService


class _SlowFirst(IngestService):
    """Writes nothing; the first batch takes longest, so the second finishes first."""

    def __init__(self, settings: IngestSettings) -> None:
        super().__init__(settings)
        self.finished: list[int] = []
        self.calls = 0
        self.concurrent = 0
        self.most_concurrent = 0

    async def _write(
        self, pool: asyncpg.Pool, decoded: Sequence[Decoded], stop: asyncio.Event
    ) -> WriteResult | None:
        self.calls += 1
        n = self.calls  # the batch's place in arrival order
        self.concurrent += 1
        self.most_concurrent = max(self.most_concurrent, self.concurrent)
        await asyncio.sleep(0.3 if n == 1 else 0.01)
        self.concurrent -= 1
        self.finished.append(n)
        return WriteResult()


class _Acks:
    def __init__(self) -> None:
        self.mids: list[int] = []

    def ack(self, message: Received) -> None:
        self.mids.append(message.mid)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        raise AssertionError("a dead letter that names no readings confirms none")

    def stop(self) -> None:
        raise AssertionError("no batch fails here")


def _message(mid: int) -> Received:
    return Received("ikn/v1/dev/x/up", b"not json", mid, 1, datetime.now(UTC), 1)


async def test_batches_written_at_once_are_acknowledged_in_arrival_order() -> None:
    settings = IngestSettings.from_env(
        {
            "IKN_DATABASE_URL": "postgresql://unused@127.0.0.1:1/x",
            "IKN_MQTT_URL": "mqtt://127.0.0.1:1",
            "IKN_INGEST_WRITERS": "2",
            "IKN_INGEST_BATCH_MAX": "1",  # one message per batch
        }
    )
    service = _SlowFirst(settings)
    queue: asyncio.Queue[Received] = asyncio.Queue()
    for mid in (1, 2, 3):
        queue.put_nowait(_message(mid))
    acks, stop = _Acks(), asyncio.Event()
    pool: Any = None  # _write above never touches it
    consumer = asyncio.create_task(service._consume(queue, pool, acks, stop))
    for _ in range(100):
        if len(acks.mids) == 3:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(consumer, 5)
    assert service.most_concurrent == 2  # written at once: batch 2 finished before batch 1
    assert service.finished[0] == 2
    assert acks.mids == [1, 2, 3]
