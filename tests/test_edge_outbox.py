"""The durable outbox (``SqliteOutbox``): the Outbox contract it shares with
``MemoryOutbox``, what it keeps across a restart and a SIGKILL, its bound, and the
end-to-end proof: broker stopped mid-stream, agent SIGKILLed and restarted during
the outage, and a subscriber still sees every reading exactly once by (stream, seq)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent import EdgeAgent, MemoryOutbox, Outbox, SqliteOutbox
from ikn.brokers import BrokerProcess, start_mosquitto
from ikn_core.contract import PeopleCount, Reading, decode_batch, decode_status, up_topic
from tests.helpers import until_changed
from tests.test_edge_agent import flushed, mqtt_settings, subscribed

DEADLINE_S = 60.0
TS0 = 1_795_424_990_000


def count(seq: int) -> PeopleCount:
    return PeopleCount(seq=seq, ts=TS0 + seq, count=seq % 1000)


OutboxFactory = Callable[[int], Outbox]


@pytest.fixture(params=["memory", "sqlite"])
def make_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OutboxFactory]:
    opened: list[SqliteOutbox] = []

    def make(capacity: int) -> Outbox:
        if request.param == "memory":
            return MemoryOutbox(capacity)
        box = SqliteOutbox(tmp_path / "outbox.db", capacity)
        opened.append(box)
        return box

    yield make
    for box in opened:
        box.close()


# -- the Outbox contract, both implementations ------------------------------------------


def test_take_hands_out_oldest_first_and_ack_forgets(make_outbox: OutboxFactory) -> None:
    box = make_outbox(100)
    for seq in range(1, 11):
        box.append(count(seq))
    assert (len(box), box.pending, box.next_seq) == (10, 10, 11)
    first = box.take(4)
    assert [r.seq for r in first] == [1, 2, 3, 4]
    assert first[0] == count(1)  # content comes back as it went in
    second = box.take(4)
    assert (len(box), box.pending) == (10, 2)
    assert box.ack(5, 8) == 4  # a later batch acknowledged first
    assert box.ack(1, 4) == 4
    assert (len(box), box.pending) == (2, 2)
    assert [r.seq for r in box.take(10)] == [9, 10]
    assert [r.seq for r in second] == [5, 6, 7, 8]


def test_append_checks_the_sequence(make_outbox: OutboxFactory) -> None:
    box = make_outbox(10)
    with pytest.raises(ValueError, match="expected seq 1, got 2"):
        box.append(count(2))


def test_full_outbox_drops_oldest_pending_first(make_outbox: OutboxFactory) -> None:
    box = make_outbox(5)
    for seq in range(1, 9):
        box.append(count(seq))
    assert (len(box), box.dropped) == (5, 3)
    assert [r.seq for r in box.take(2)] == [4, 5]  # in flight now
    box.append(count(9))  # drops 6, the oldest *pending*, not 4 or 5 in flight
    assert (len(box), box.dropped, box.pending) == (5, 4, 3)
    assert [r.seq for r in box.take(10)] == [7, 8, 9]
    box.append(count(10))  # all in flight: the oldest of them goes
    assert box.dropped == 5
    assert box.ack(4, 9) == 4  # 4 was dropped already


# -- durable across restarts --------------------------------------------------------------


def test_restart_continues_the_stream_and_resends_the_unacknowledged(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = SqliteOutbox(path, 100)
    stream = box.stream
    for seq in range(1, 7):
        box.append(count(seq))
    box.take(4)
    box.ack(1, 2)  # 3 and 4 were in flight, never acknowledged
    box.close()
    again = SqliteOutbox(path, 100)
    try:
        assert (again.stream, again.next_seq, len(again), again.pending) == (stream, 7, 4, 4)
        assert again.take(10) == [count(s) for s in (3, 4, 5, 6)]
    finally:
        again.close()


def test_next_seq_survives_an_empty_outbox_and_newest_first_acks(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = SqliteOutbox(path, 100)
    for seq in range(1, 5):
        box.append(count(seq))
    box.take(2)
    box.take(2)
    box.ack(3, 4)  # the newest rows go first; the highest seq must not be reused
    box.close()
    box = SqliteOutbox(path, 100)
    assert box.next_seq == 5
    box.take(2)
    box.ack(1, 2)
    box.close()
    box = SqliteOutbox(path, 100)
    try:
        assert (box.next_seq, len(box)) == (5, 0)
    finally:
        box.close()


def test_a_new_file_is_a_new_stream(tmp_path: Path) -> None:
    a, b = SqliteOutbox(tmp_path / "a.db"), SqliteOutbox(tmp_path / "b.db")
    try:
        assert a.stream != b.stream
    finally:
        a.close()
        b.close()


def test_drops_are_counted_persisted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.db"
    box = SqliteOutbox(path, 3)
    with caplog.at_level(logging.WARNING, logger="edge_agent.sqlite_outbox"):
        box.extend(count(seq) for seq in range(1, 8))
    assert (len(box), box.dropped) == (3, 4)
    assert "full (3 readings): dropped the oldest; 4 dropped in all" in caplog.text
    box.close()
    box = SqliteOutbox(path, 3)
    try:
        assert (box.dropped, [r.seq for r in box.take(10)]) == (4, [5, 6, 7])
    finally:
        box.close()


SIGKILLED_WRITER = textwrap.dedent(
    """
    import os, sys
    from edge_agent import SqliteOutbox
    from ikn_core.contract import PeopleCount
    box = SqliteOutbox(sys.argv[1], 1_000_000)
    for seq in range(1, int(sys.argv[2]) + 1):
        box.append(PeopleCount(seq=seq, ts=1_795_424_990_000 + seq, count=seq % 1000))
    print(box.stream, flush=True)
    os.kill(os.getpid(), 9)
    """
)


def test_every_committed_reading_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    proc = subprocess.run(
        [sys.executable, "-c", SIGKILLED_WRITER, str(path), "500"],
        capture_output=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    box = SqliteOutbox(path)
    try:
        assert box.stream == proc.stdout.decode().strip()
        assert (box.next_seq, len(box)) == (501, 500)
        assert box.take(1000) == [count(seq) for seq in range(1, 501)]
    finally:
        box.close()


async def test_agent_status_reports_what_the_full_outbox_dropped(
    mosquitto: BrokerProcess, tmp_path: Path
) -> None:
    box = SqliteOutbox(tmp_path / "outbox.db", 3)
    agent = EdgeAgent("desk-9", mqtt_settings(mosquitto), outbox=box)
    async with subscribed(mosquitto) as sub:
        try:
            for seq in range(5):  # offline: nothing leaves yet
                agent.submit(_people(seq))
            assert (agent.stats.outbox, agent.stats.dropped) == (3, 2)
            await agent.start()
            await flushed(agent)
            await sub.wait_until(lambda: len(sub.readings()) == 3, "the three newest")
        finally:
            await agent.close()
            box.close()
    assert [r.seq for r in sub.readings()] == [3, 4, 5]
    online = decode_status(sub.on("status")[0].payload)
    assert (online.state, online.outbox, online.dropped) == ("online", 3, 2)


def _people(n: int) -> Any:
    from ikn_core.contract import Observation

    return Observation("people_count", TS0 + n, {"count": n})


# -- the proof: outage, SIGKILL, restart, exactly once ----------------------------------

AGENT_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from edge_agent import AgentConfig, EdgeAgent, SqliteOutbox
    from ikn_core.contract import Observation
    from ikn_core.settings import MqttSettings, MqttUrl

    path, url, total = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def observation(k):
        ts = 1_795_424_990_000 + k
        if k % 3 == 0:
            return Observation("environment", ts, {"temp_c": (k % 500) / 10})
        if k % 3 == 1:
            return Observation("desk_occupancy", ts, {"occupied": k % 2 == 0})
        return Observation("people_count", ts, {"count": k % 1000})

    class Counter:
        device_id = "desk-outage"
        def __init__(self, first):
            self.first = first
        async def __aiter__(self):
            for k in range(self.first, total + 1):
                yield observation(k)
                await asyncio.sleep(0.002)

    async def main():
        box = SqliteOutbox(path, 1_000_000)
        config = AgentConfig(reconnect_min_s=0.05, reconnect_max_s=0.3, batch_max_readings=50)
        agent = EdgeAgent("desk-outage", MqttSettings(MqttUrl.parse(url)), config=config,
                          outbox=box)
        await agent.start()
        await agent.pump(Counter(box.next_seq))  # reading k gets seq k
        async with asyncio.timeout(60):
            await agent.flush()
        await agent.close()
        box.close()
        print("done", flush=True)

    asyncio.run(main())
    """
)


def expected(seq: int) -> dict[str, Any]:
    ts = TS0 + seq
    if seq % 3 == 0:
        return {"seq": seq, "ts": ts, "kind": "environment", "temp_c": (seq % 500) / 10}
    if seq % 3 == 1:
        return {"seq": seq, "ts": ts, "kind": "desk_occupancy", "occupied": seq % 2 == 0}
    return {"seq": seq, "ts": ts, "kind": "people_count", "count": seq % 1000}


class ResubscribingSubscriber:
    """Collects every reading on one ``up`` topic by (stream, seq), subscribing again
    after each reconnect (a restarted broker without persistence forgot it)."""

    def __init__(self, broker: BrokerProcess, topic: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self.topic = topic
        self.readings: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.subacks = 0
        self.client = Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        # paho 2.2 waits min(delay * 2**n, max) seconds, a float, but its hints say int;
        # whole seconds would make this test's reconnects twenty times slower
        self.client.reconnect_delay_set(0.05, 0.3)  # type: ignore[arg-type]
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.broker = broker

    async def start(self) -> None:
        await asyncio.to_thread(self.client.connect, self.broker.host, self.broker.port)
        self.client.loop_start()
        await self.wait_until(lambda: self.subacks >= 1, "SUBACK")

    async def stop(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
        # paho closes loop_start's wake-up socket pair only in __del__, which a
        # garbage-collected cycle may run after the sockets' own finalisers (a
        # ResourceWarning, an error under -W error): close it now.
        self.client._reset_sockets(sockpair_only=True)

    def _on_subscribe(self, *_: Any) -> None:
        self._loop.call_soon_threadsafe(self._suback)

    def _suback(self) -> None:
        self.subacks += 1
        self._changed.set()

    def _on_message(self, _c: Client, _u: Any, msg: MQTTMessage) -> None:
        batch = decode_batch(bytes(msg.payload))
        self._loop.call_soon_threadsafe(self._add, batch.stream, batch.readings)

    def _add(self, stream: str, readings: tuple[Reading, ...]) -> None:
        for r in readings:
            self.readings.setdefault((stream, r.seq), []).append(r.to_dict())
        self._changed.set()

    def seqs(self) -> set[int]:
        return {seq for _, seq in self.readings}

    async def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        await until_changed(
            self._changed, ready, DEADLINE_S, lambda: f"no {what}; {len(self.readings)} readings"
        )


def outbox_state(path: Path) -> tuple[int, set[int]]:
    """(highest seq numbered, seqs still held) as another process sees the file."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = {seq for (seq,) in db.execute("SELECT seq FROM readings")}
        (next_seq,) = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        return max(int(next_seq) - 1, max(rows, default=0)), rows
    finally:
        db.close()


async def until(probe: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not reached within {DEADLINE_S} s: {what}")
        await asyncio.sleep(0.02)


def spawn_agent(
    path: Path, broker: BrokerProcess, total: int, log: Path
) -> subprocess.Popen[bytes]:
    """An agent child process, its output (stdout and stderr) in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", AGENT_CHILD, str(path), broker.url, str(total)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_outage_and_sigkill_lose_nothing_and_duplicate_nothing(
    mosquitto: BrokerProcess, tmp_path: Path
) -> None:
    path, total, port = tmp_path / "outbox.db", 2000, mosquitto.port
    sub = ResubscribingSubscriber(mosquitto, up_topic("desk-outage"))
    await sub.start()
    broker = mosquitto
    first = spawn_agent(path, broker, total, tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        await sub.wait_until(lambda: len(sub.readings) >= 150, "a first stretch of readings")
        # Freeze the agent so that everything the broker acknowledged reaches the
        # subscriber before the broker goes: the rest is in the outbox, to be resent.
        first.send_signal(signal.SIGSTOP)
        top, held = await asyncio.to_thread(outbox_state, path)
        acked = set(range(1, top + 1)) - held
        await sub.wait_until(lambda: acked <= sub.seqs(), "every acknowledged reading")
        broker.stop()
        first.send_signal(signal.SIGCONT)
        await until(lambda: outbox_state(path)[0] >= top + 150, "readings queued offline")
        first.kill()  # SIGKILL while the broker is down
        first.wait(DEADLINE_S)
        killed_at, _ = outbox_state(path)

        second = spawn_agent(path, broker, total, tmp_path / "second.log")
        await until(lambda: outbox_state(path)[0] >= killed_at + 150, "the restart appends")
        second.send_signal(signal.SIGSTOP)  # so the subscriber is back before it publishes
        subacks = sub.subacks
        broker = start_mosquitto(tmp_path / "mosquitto-again", port=port)
        await sub.wait_until(lambda: sub.subacks > subacks, "a new SUBACK")
        second.send_signal(signal.SIGCONT)
        await asyncio.to_thread(second.wait, DEADLINE_S)
        output = (tmp_path / "second.log").read_text()
        assert (second.returncode, output[-5:]) == (0, "done\n"), output[-2000:]
        await sub.wait_until(lambda: len(sub.readings) >= total, "every reading")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        await sub.stop()
        if broker is not mosquitto:
            broker.stop()
    streams = {stream for stream, _ in sub.readings}
    assert len(streams) == 1, "the restarted agent continued the same stream"
    assert sorted(sub.seqs()) == list(range(1, total + 1))
    for (_, seq), copies in sub.readings.items():
        assert all(copy == expected(seq) for copy in copies), (seq, copies)
    assert outbox_state(path) == (total, set())
