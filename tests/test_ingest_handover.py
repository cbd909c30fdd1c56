"""The hand-over from the MQTT source to the consumer (ingest/mqtt.py ``Inbox`` and
``MqttSource``, paho driven by the asyncio loop), on a real Mosquitto: every message
arrives once and in order, a full queue stops the reading, and the source connects
again after the broker went away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ikn.benchmarks.publisher import publish
from ikn.brokers import BrokerProcess, start_mosquitto
from ikn_core.settings import IngestSettings
from ingest.decode import Received
from ingest.mqtt import Inbox, MqttSource
from tests.helpers import eventually


def _message(mid: int) -> Received:
    return Received("ikn/v1/dev/x/up", b"{}", mid, 1, datetime.now(UTC), 1)


def _seqs(items: list[Received]) -> list[int]:
    return [r["seq"] for item in items for r in orjson.loads(item.payload)["readings"]]


def test_the_inbox_never_refuses_and_calls_back_once_half_empty() -> None:
    async def scenario() -> None:
        inbox = Inbox(4)
        for mid in range(1, 6):  # one past the limit: paho delivered it, it is kept
            inbox.put_nowait(_message(mid))
        assert inbox.at_limit() and inbox.qsize() == 5
        called: list[int] = []
        inbox.when_room(lambda: called.append(inbox.qsize()))
        assert [inbox.get_nowait().mid for _ in range(2)] == [1, 2]
        assert called == []  # three left: more than half of four
        assert inbox.get_nowait().mid == 3
        assert called == [2]
        inbox.get_nowait()
        assert called == [2]  # once
        inbox.when_room(lambda: called.append(-1))  # room already: at once
        assert called == [2, -1]

    asyncio.run(scenario())


@pytest.fixture
async def source(mosquitto: BrokerProcess) -> AsyncIterator[MqttSource]:
    settings = IngestSettings.from_env(
        {"IKN_DATABASE_URL": "postgresql://unused@127.0.0.1:1/x", "IKN_MQTT_URL": mosquitto.url}
    )
    src = MqttSource(settings.mqtt, "handover-test", "handover", Inbox(10))
    stop = asyncio.Event()
    task = asyncio.create_task(src.run(stop))
    await eventually(_subscribed(src, 1), bool)
    yield src
    stop.set()
    await asyncio.wait_for(task, 10)
    src.stop()


def _subscribed(src: MqttSource, generation: int) -> Callable[[], Awaitable[bool]]:
    """Whether connection number ``generation`` is up and its subscriptions confirmed."""

    async def probe() -> bool:
        return src.subscribed_generation == src.generation == generation

    return probe


async def test_a_full_queue_stops_the_reading_and_nothing_is_lost_or_reordered(
    source: MqttSource, mosquitto: BrokerProcess
) -> None:
    stream = "7b0c8f4e-2d7a-4c55-9a51-3f1f3e0a9d10"
    published = asyncio.create_task(asyncio.to_thread(publish, mosquitto.port, 1, 200, 1, stream))
    queue = source.queue
    assert isinstance(queue, Inbox)

    async def size() -> int:
        return queue.qsize()

    await eventually(size, lambda n: n >= queue.limit)
    await published  # the broker took all 200 and holds what the ingest does not read
    await asyncio.sleep(0.3)  # the one wait that shows nothing more came in meanwhile
    assert queue.qsize() == queue.limit
    got: list[Received] = []
    while len(got) < 200:
        item = await asyncio.wait_for(queue.get(), 10)
        got.append(item)
        source.ack(item)
        assert queue.qsize() <= queue.limit
    assert _seqs(got) == list(range(200))
    assert queue.empty()


async def test_the_source_connects_again_after_the_broker_restarted(
    source: MqttSource, mosquitto: BrokerProcess, tmp_path: Path
) -> None:
    first = source.generation
    mosquitto.stop()
    broker = start_mosquitto(tmp_path / "again", port=mosquitto.port)
    try:
        await eventually(_subscribed(source, first + 1), bool, within=30)
        stream = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
        await asyncio.to_thread(publish, broker.port, 2, 5, 1, stream)
        got = [await asyncio.wait_for(source.queue.get(), 10) for _ in range(5)]
        assert _seqs(got) == list(range(5))
        assert {item.generation for item in got} == {first + 1}
    finally:
        broker.stop()
