"""The ingest benchmark's publisher (ikn/benchmarks/publisher.py) writes MQTT packets
itself: what it sends arrives intact through a real Mosquitto, to a paho subscriber."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from itertools import islice
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ikn.benchmarks.publisher import device_id, packet_ids, remaining_length
from ikn.brokers import BrokerProcess
from tests.helpers import poll


@pytest.mark.parametrize(
    ("n", "encoded"),
    [  # MQTT 3.1.1 section 2.2.3, table 2.4: the bounds of each length
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (16_383, "ff7f"),
        (16_384, "808001"),
        (2_097_151, "ffff7f"),
        (2_097_152, "80808001"),
        (268_435_455, "ffffff7f"),
    ],
)
def test_remaining_length_is_encoded_as_the_spec_says(n: int, encoded: str) -> None:
    assert remaining_length(n).hex() == encoded


def test_packet_ids_skip_zero_when_they_wrap() -> None:
    ids = list(islice(packet_ids(), 65_537))
    assert ids[:2] == [1, 2] and ids[65_533:] == [65_534, 65_535, 1, 2]


class _Subscriber:
    """A paho client on ``ikn/v1/dev/+/up`` that keeps what it receives."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = lambda _c, _u, m: self.messages.append(
            (m.topic, bytes(m.payload))
        )
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe("ikn/v1/dev/+/up", qos=1)
        self._client.loop_start()
        assert self._subscribed.wait(10)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _run_publisher(port: int, *counts: int, stream: str) -> dict[str, Any]:
    """Run it as the benchmark does, as a process of its own; what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "ikn.benchmarks.publisher", str(port), *map(str, counts), stream],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(orjson.loads(done.stdout))


@pytest.mark.parametrize(
    ("devices", "readings", "batch"),
    [
        (3, 2500, 1),  # more messages than its window of 1000 unacknowledged ones
        (2, 7, 3),  # a last, shorter message
        (1, 3000, 3000),  # one message of ~200 kB: a three-byte remaining length
    ],
)
def test_what_it_publishes_arrives_intact(
    mosquitto: BrokerProcess, devices: int, readings: int, batch: int
) -> None:
    subscriber = _Subscriber(mosquitto.port)
    stream = str(uuid.uuid4())
    try:
        printed = _run_publisher(mosquitto.port, devices, readings, batch, stream=stream)
        messages = -(-readings // batch)
        assert printed["messages"] == messages
        poll(lambda: len(subscriber.messages), lambda n: n >= messages, 60)
    finally:
        subscriber.close()
    assert len(subscriber.messages) == messages
    first_ms, last_ms = int(printed["first"] * 1000), int(printed["last"] * 1000) + 1
    seq = 0
    for m, (topic, payload) in enumerate(subscriber.messages):  # one connection: in order
        assert topic == f"ikn/v1/dev/{device_id(m % devices)}/up"
        body = orjson.loads(payload)
        assert body.keys() == {"v", "stream", "readings"}
        assert body["v"] == 1 and body["stream"] == stream
        count = min(batch, readings - seq)
        assert [r["seq"] for r in body["readings"]] == list(range(seq, seq + count))
        for r in body["readings"]:
            assert r.keys() == {"seq", "ts", "kind", "occupied"}
            assert r["kind"] == "desk_occupancy" and r["occupied"] is (r["seq"] % 2 == 0)
            assert first_ms <= r["ts"] <= last_ms  # stamped while it was sending
        seq += count
    assert seq == readings
