"""The edge agent against a real Mosquitto: batches, QoS 1, status, Will, outbox."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent import AgentConfig, EdgeAgent, FleetStats, MemoryOutbox, run_fleet
from edge_agent.uplink import Uplink
from ikn.brokers import BrokerProcess, start_amqtt, start_mosquitto
from ikn_core.contract import (
    DeskOccupancy,
    Observation,
    Reading,
    Status,
    decode_batch,
    decode_status,
    encode_status,
    parse_topic,
    status_topic,
    up_topic,
)
from ikn_core.mqtt import Backoff
from ikn_core.settings import MqttSettings, MqttUrl
from tests.helpers import until_changed

DEADLINE_S = 15.0
FAST = AgentConfig(reconnect_min_s=0.05, reconnect_max_s=0.5, close_timeout_s=5.0)


# -- helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Subscriber:
    """A real MQTT client in the test; its messages are handed to the asyncio loop."""

    def __init__(self, broker: BrokerProcess, protocol: str = "5") -> None:
        self.broker = broker
        self.messages: list[Message] = []
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self.subscribed = False
        v5 = protocol == "5"
        self.client = Client(
            CallbackAPIVersion.VERSION2,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    async def start(self, topic: str) -> None:
        await asyncio.to_thread(self.client.connect, self.broker.host, self.broker.port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        await self.wait_until(lambda: self.subscribed, "SUBACK")

    def _on_subscribe(self, *_: Any) -> None:
        self._loop.call_soon_threadsafe(self._on_suback)

    def _on_suback(self) -> None:
        self.subscribed = True
        self._changed.set()

    def _on_message(self, _c: Client, _u: Any, msg: MQTTMessage) -> None:
        message = Message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain))
        self._loop.call_soon_threadsafe(self._add, message)

    def _add(self, message: Message) -> None:
        self.messages.append(message)
        self._changed.set()

    async def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        await until_changed(
            self._changed, ready, DEADLINE_S, lambda: f"no {what}; got {self.messages}"
        )

    async def stop(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
        # paho closes loop_start's wake-up socket pair only in __del__, which a
        # garbage-collected cycle may run after the sockets' own finalisers (a
        # ResourceWarning, an error under -W error): close it now.
        self.client._reset_sockets(sockpair_only=True)

    def on(self, channel: str) -> list[Message]:
        return [m for m in self.messages if parse_topic(m.topic).channel == channel]

    def readings(self, device_id: str | None = None) -> list[Reading]:
        return [
            r
            for m in self.on("up")
            if device_id is None or parse_topic(m.topic).device_id == device_id
            for r in decode_batch(m.payload).readings
        ]

    def statuses(self) -> list[Status]:
        return [decode_status(m.payload) for m in self.on("status")]


@asynccontextmanager
async def subscribed(
    broker: BrokerProcess, topic: str = "ikn/v1/dev/#", protocol: str = "5"
) -> AsyncIterator[Subscriber]:
    sub = Subscriber(broker, protocol)
    await sub.start(topic)
    try:
        yield sub
    finally:
        await sub.stop()


@dataclass
class ListDriver:
    """Yields its observations, then ends (or waits for ``hold`` to be set)."""

    device_id: str
    observations: Sequence[Observation]
    hold: asyncio.Event | None = None
    fail: bool = False

    async def __aiter__(self) -> AsyncIterator[Observation]:
        for obs in self.observations:
            yield obs
        if self.fail:
            raise RuntimeError("sensor unplugged")
        if self.hold is not None:
            await self.hold.wait()


def now_ms() -> int:
    return int(time.time() * 1000)


def desk(occupied: bool) -> Observation:
    return Observation("desk_occupancy", now_ms(), {"occupied": occupied})


def mqtt_settings(broker: BrokerProcess) -> MqttSettings:
    return MqttSettings(MqttUrl.parse(broker.url), protocol=broker.protocol)


async def connected(agent: EdgeAgent) -> None:
    async with asyncio.timeout(DEADLINE_S):
        await agent.wait_connected()


async def flushed(agent: EdgeAgent) -> None:
    async with asyncio.timeout(DEADLINE_S):
        await agent.flush()


# -- through a real broker ------------------------------------------------------------


async def test_observations_arrive_as_contract_batches_with_qos_1(
    mosquitto: BrokerProcess,
) -> None:
    observations = [
        *(desk(i % 2 == 0) for i in range(20)),
        Observation("people_count", now_ms(), {"count": 14}),
        Observation("environment", now_ms(), {"co2_ppm": 612, "temp_c": 24.5}),
    ]
    config = AgentConfig(batch_max_readings=5)
    async with subscribed(mosquitto) as sub:
        async with EdgeAgent("desk-f1-a-01", mqtt_settings(mosquitto), config=config) as agent:
            await agent.pump(ListDriver("desk-f1-a-01", observations))
            await flushed(agent)
        await sub.wait_until(lambda: len(sub.readings()) == 22, "22 readings")

    ups = sub.on("up")
    assert {m.topic for m in ups} == {up_topic("desk-f1-a-01")}
    assert all(m.qos == 1 for m in ups)
    batches = [decode_batch(m.payload) for m in ups]
    assert len({b.stream for b in batches}) == 1
    assert all(1 <= len(b.readings) <= 5 for b in batches)
    seqs = [r.seq for r in sub.readings()]
    assert seqs == sorted(set(seqs)) and len(seqs) == 22
    assert [r.kind for r in sub.readings()][-2:] == ["people_count", "environment"]
    assert agent.stats.delivered == 22 and agent.stats.outbox == 0


async def test_a_lone_reading_leaves_within_the_latency_bound(mosquitto: BrokerProcess) -> None:
    config = AgentConfig(batch_max_readings=100, batch_latency_s=0.05)
    async with (
        subscribed(mosquitto) as sub,
        EdgeAgent("desk-1", mqtt_settings(mosquitto), config=config) as agent,
    ):
        await connected(agent)
        agent.submit(desk(True))  # one reading, far below the batch size; no flush
        await sub.wait_until(lambda: len(sub.readings()) == 1, "the lone reading")
    assert sub.readings()[0] == DeskOccupancy(seq=1, ts=sub.readings()[0].ts, occupied=True)


async def test_retained_online_status_after_connect(mosquitto: BrokerProcess) -> None:
    settings = mqtt_settings(mosquitto)
    async with (
        subscribed(mosquitto, status_topic("pc-f1-a")) as live,
        EdgeAgent("pc-f1-a", settings, config=AgentConfig(fw="pc-fw/2.1")) as agent,
    ):
        await connected(agent)
        await live.wait_until(lambda: len(live.statuses()) == 1, "online status")
        async with subscribed(mosquitto, status_topic("pc-f1-a")) as late:
            await late.wait_until(lambda: len(late.messages) == 1, "retained status")
    retained = late.messages[0]
    assert retained.retain and retained.qos == 1
    status = decode_status(retained.payload)
    assert status.state == "online" and status.fw == "pc-fw/2.1"
    assert status.outbox == 0 and status.dropped == 0 and status.uptime_s is not None


async def test_will_is_published_when_the_connection_is_cut(mosquitto: BrokerProcess) -> None:
    async with (
        subscribed(mosquitto, status_topic("env-f1")) as sub,
        EdgeAgent("env-f1", mqtt_settings(mosquitto), config=FAST) as agent,
    ):
        await connected(agent)
        await sub.wait_until(lambda: len(sub.statuses()) == 1, "online status")
        agent.abort()  # no DISCONNECT: the broker must publish the Will
        await sub.wait_until(lambda: len(sub.statuses()) == 2, "the Will")
    will = sub.on("status")[1]
    assert will.payload == encode_status(Status(state="offline"))
    assert decode_status(will.payload) == Status(state="offline")
    assert agent.stats.connects == 1  # an aborted agent does not come back
    async with subscribed(mosquitto, status_topic("env-f1")) as late:
        await late.wait_until(lambda: len(late.messages) == 1, "retained Will")
    assert late.messages[0].retain and late.statuses() == [Status(state="offline")]


async def test_graceful_close_publishes_retained_offline(mosquitto: BrokerProcess) -> None:
    async with EdgeAgent("desk-2", mqtt_settings(mosquitto)) as agent:
        await connected(agent)
        agent.submit(desk(False))
    assert not agent.connected and agent.stats.delivered == 1
    async with subscribed(mosquitto, status_topic("desk-2")) as late:
        await late.wait_until(lambda: len(late.messages) == 1, "retained status")
    status = decode_status(late.messages[0].payload)
    assert late.messages[0].retain
    assert status.state == "offline" and status.fw is not None  # said, not the bare Will
    assert status.outbox == 0


async def test_observation_that_fails_the_contract_is_counted_and_skipped(
    mosquitto: BrokerProcess,
) -> None:
    observations = [
        desk(True),
        Observation("door_open", now_ms(), {"open": True}),  # unknown kind
        Observation("people_count", now_ms(), {"count": -1}),  # out of range
        Observation("desk_occupancy", now_ms(), {"occupied": "yes"}),  # wrong type
        Observation("desk_occupancy", 12, {"occupied": True}),  # a broken clock
        desk(False),
    ]
    async with subscribed(mosquitto) as sub:
        async with EdgeAgent("desk-3", mqtt_settings(mosquitto)) as agent:
            await agent.pump(ListDriver("desk-3", observations))
            await flushed(agent)
            assert agent.connected
        await sub.wait_until(lambda: len(sub.readings()) == 2, "the two good readings")
    assert agent.stats.rejected == 4
    assert [(r.seq, r.body()) for r in sub.readings()] == [
        (1, {"occupied": True}),
        (2, {"occupied": False}),
    ]


async def test_full_outbox_drops_the_oldest_and_counts(mosquitto: BrokerProcess) -> None:
    config = AgentConfig(outbox_capacity=3)
    agent = EdgeAgent("desk-4", mqtt_settings(mosquitto), config=config)
    async with subscribed(mosquitto) as sub:
        try:
            for i in range(5):  # offline: nothing leaves yet
                agent.submit(desk(i % 2 == 1))
            assert (agent.stats.outbox, agent.stats.dropped) == (3, 2)
            await agent.start()
            await flushed(agent)
            await sub.wait_until(lambda: len(sub.readings()) == 3, "the three newest")
        finally:
            await agent.close()
    assert [r.seq for r in sub.readings()] == [3, 4, 5]
    online = sub.statuses()[0]
    assert (online.state, online.outbox, online.dropped) == ("online", 3, 2)


async def test_reconnects_and_delivers_what_waited(
    mosquitto: BrokerProcess, tmp_path: Path
) -> None:
    async with EdgeAgent("desk-5", mqtt_settings(mosquitto), config=FAST) as agent:
        await connected(agent)
        agent.submit(desk(True))
        await flushed(agent)
        mosquitto.stop()
        async with asyncio.timeout(DEADLINE_S):
            await agent.wait_disconnected()
        agent.submit(desk(False))  # waits in the outbox
        agent.submit(desk(True))
        again = start_mosquitto(tmp_path / "again", port=mosquitto.port)
        try:
            await flushed(agent)
            assert agent.stats.connects == 2 and agent.stats.delivered == 3
        finally:
            await agent.close()
            again.stop()


async def test_runs_over_mqtt_3_1_1_on_the_embedded_broker(tmp_path: Path) -> None:
    broker = start_amqtt(tmp_path / "amqtt")
    try:
        async with subscribed(broker, protocol="3.1.1") as sub:
            async with EdgeAgent("pc-f2-b", mqtt_settings(broker)) as agent:
                assert mqtt_settings(broker).protocol == "3.1.1"
                await agent.pump(ListDriver("pc-f2-b", [desk(True), desk(False)]))
                await flushed(agent)
            await sub.wait_until(lambda: len(sub.readings()) == 2, "two readings")
            await sub.wait_until(lambda: len(sub.statuses()) == 2, "online, then offline")
        assert [s.state for s in sub.statuses()] == ["online", "offline"]
    finally:
        broker.stop()


async def test_fleet_runs_each_driver_into_its_own_agent(mosquitto: BrokerProcess) -> None:
    hold, stop = asyncio.Event(), asyncio.Event()
    drivers = [ListDriver(f"desk-{i}", [desk(True), desk(False)], hold) for i in range(3)]
    drivers.append(ListDriver("desk-broken", [desk(True)], fail=True))
    async with subscribed(mosquitto) as sub:
        fleet = asyncio.create_task(run_fleet(drivers, mqtt_settings(mosquitto), stop))
        try:
            await sub.wait_until(lambda: len(sub.readings()) == 7, "7 readings from 4 devices")
            offline = {d.device_id for d in drivers[:3]}
        finally:
            stop.set()
            async with asyncio.timeout(DEADLINE_S):
                totals = await fleet
        await sub.wait_until(
            lambda: (
                {
                    parse_topic(m.topic).device_id
                    for m in sub.on("status")
                    if decode_status(m.payload).state == "offline"
                }
                >= offline
            ),
            "offline status of each device",
        )
    assert totals == FleetStats(
        devices=4, delivered=7, dropped=0, rejected=0, refused=0, undelivered=0
    )
    assert {d: len(sub.readings(d)) for d in ("desk-0", "desk-broken")} == {
        "desk-0": 2,
        "desk-broken": 1,
    }


# -- units ---------------------------------------------------------------------------------


def reading(seq: int) -> Reading:
    return DeskOccupancy(seq=seq, ts=now_ms(), occupied=seq % 2 == 0)


def test_memory_outbox_drops_oldest_pending_and_keeps_in_flight() -> None:
    outbox = MemoryOutbox(capacity=3)
    for seq in (1, 2):
        outbox.append(reading(seq))
    assert [r.seq for r in outbox.take(1)] == [1]  # seq 1 is in flight
    for seq in (3, 4, 5):
        outbox.append(reading(seq))
    assert (len(outbox), outbox.pending, outbox.dropped) == (3, 2, 2)
    assert [r.seq for r in outbox.take(10)] == [4, 5]
    assert outbox.ack(4, 5) == 2  # acknowledged out of order
    assert outbox.ack(1, 1) == 1 and len(outbox) == 0
    with pytest.raises(ValueError, match="expected seq 6"):
        outbox.append(reading(9))


async def test_uplink_keeps_a_bounded_window_and_forgets_only_on_puback() -> None:
    sent: list[bytes] = []

    def send(payload: bytes) -> int:
        sent.append(payload)
        return len(sent)  # the message id

    outbox = MemoryOutbox()
    uplink = Uplink(outbox, send, batch_max=2, latency_s=60, window=2)
    uplink.set_online(True)
    for seq in range(1, 8):
        uplink.offer(reading(seq))
    assert len(sent) == 2 and uplink.in_flight == 2  # two full batches, window full
    assert len(outbox) == 7  # nothing forgotten before a PUBACK
    assert uplink.acked(1, ok=True)
    assert not uplink.acked(99, ok=True)  # not one of ours (a status message)
    await asyncio.sleep(0)  # the refill runs once paho's callback has returned
    assert len(sent) == 3 and len(outbox) == 5
    uplink.flush()  # the odd seventh reading goes without waiting for the latency
    assert uplink.acked(2, ok=False) and uplink.refused == 2
    await asyncio.sleep(0)
    assert [[r.seq for r in decode_batch(p).readings] for p in sent] == [
        [1, 2],
        [3, 4],
        [5, 6],
        [7],
    ]
    for mid in (3, 4):
        uplink.acked(mid, ok=True)
    assert uplink.idle and uplink.delivered == 5
    uplink.stop()


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    nominal = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal, strict=True))
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_agent_config_lists_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"batch_max_readings in 1\.\.1000.*max_in_flight"):
        AgentConfig(batch_max_readings=5000, max_in_flight=0)
