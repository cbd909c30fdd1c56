"""The end-to-end acknowledgement on real parts: an edge agent with ``await_stored``
keeps each reading until the ingest's ``stored`` notice says PostgreSQL holds it (not
merely until the broker's PUBACK), resends what no notice confirmed, and is told of
dead letters too; the ingest publishes nothing with ``IKN_INGEST_STORED_NOTICES=off``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from edge_agent import AgentConfig, EdgeAgent, MemoryOutbox
from ikn.brokers import BrokerProcess
from ikn_core.contract import (
    Observation,
    StoredNotice,
    decode_down,
    decode_status,
    down_topic,
    encode_down,
)
from ikn_core.errors import SettingsError
from ikn_core.settings import EdgeSettings, IngestSettings
from ikn_store.dead_letters import DeadLetter
from ikn_store.readings import ReadingRow, UpMessage
from ingest.stored import StoredNotices, seq_ranges
from tests.helpers import eventually, fetch, publish, seed
from tests.test_edge_agent import DEADLINE_S, mqtt_settings, now_ms, subscribed
from tests.test_ingest import Running, _settings, _start

DEVICE = "desk-d1"
AWAIT = AgentConfig(
    reconnect_min_s=0.05,
    reconnect_max_s=0.5,
    batch_latency_s=0.05,
    batch_max_readings=20,
    await_stored=True,
    stored_timeout_s=2.0,  # above the ingest's notice interval (1 s)
    stored_timeout_max_s=4.0,
)


def test_seqs_become_sorted_inclusive_ranges() -> None:
    assert seq_ranges([]) == []
    assert seq_ranges([7, 3, 1, 2, 2, 9, 8]) == [(1, 3), (7, 9)]
    assert seq_ranges([5]) == [(5, 5)]


def test_a_dead_letter_confirms_the_readings_it_names_and_only_those() -> None:
    sent: list[tuple[str, bytes, int]] = []
    counts: list[int] = []
    notices = StoredNotices(lambda *args: sent.append(args), 0.0, counts.append)
    stream = "5f0c2a9e-1f7b-4d1e-9d7e-3b8f2a6c1d40"
    now = datetime.now(UTC)

    def letter(payload: bytes, topic: str = "ikn/v1/dev/desk-d1/up") -> DeadLetter:
        return DeadLetter(now, topic, "desk-d1", "bad_ts", "x", payload)

    named = b'{"v":1,"stream":"%s","readings":[{"seq":4},{"seq":5,"kind":"zap"}]}' % (
        stream.encode()
    )
    notices.note(
        [
            letter(named),
            letter(b"not json"),
            letter(b'{"v":1,"stream":"not-a-uuid","readings":[{"seq":1}]}'),
            letter(b'{"v":1,"stream":"%s","readings":[{"seq":-1}]}' % stream.encode()),
            letter(named, topic="ikn/v1/dev/desk-d1/status"),
        ]
    )
    assert counts == [1]  # (interval 0: at once)
    assert [(t, decode_down(p), q) for t, p, q in sent] == [
        (down_topic("desk-d1"), StoredNotice(stream, ((4, 5),)), 0)
    ]


async def test_commits_within_the_interval_make_one_notice_per_device() -> None:
    sent: list[tuple[str, bytes, int]] = []
    flushed = asyncio.Event()
    notices = StoredNotices(lambda *args: sent.append(args), 0.05, lambda _n: flushed.set())
    stream, now = "5f0c2a9e-1f7b-4d1e-9d7e-3b8f2a6c1d40", datetime.now(UTC)

    def up(device: str, *seqs: int) -> UpMessage:
        rows = tuple(ReadingRow(device, stream, q, now, now, "desk_occupancy", {}) for q in seqs)
        return UpMessage(f"ikn/v1/dev/{device}/up", device, b"", now, rows)

    notices.note([up("desk-d1", 1, 2), up("desk-d2", 7)])
    notices.note([up("desk-d1", 4), up("desk-d1", 3)])  # a second commit, soon after
    assert sent == []
    async with asyncio.timeout(DEADLINE_S):
        await flushed.wait()
    assert sorted((t, decode_down(p)) for t, p, _ in sent) == [
        (down_topic("desk-d1"), StoredNotice(stream, ((1, 4),))),
        (down_topic("desk-d2"), StoredNotice(stream, ((7, 7),))),
    ]


@asynccontextmanager
async def _agent(
    broker: BrokerProcess, config: AgentConfig = AWAIT
) -> AsyncIterator[tuple[EdgeAgent, MemoryOutbox]]:
    box = MemoryOutbox(10_000)
    async with EdgeAgent(DEVICE, mqtt_settings(broker), config=config, outbox=box) as agent:
        async with asyncio.timeout(DEADLINE_S):
            await agent.wait_listening()
        yield agent, box


async def _stored_seqs(db: str, stream: str) -> list[int]:
    rows = await fetch(
        db,
        "SELECT seq FROM readings WHERE device_id = $1 AND stream = $2 ORDER BY seq",
        DEVICE,
        uuid.UUID(stream),
    )
    return [r["seq"] for r in rows]


def _desk(n: int, ts: int | None = None) -> Observation:
    return Observation("desk_occupancy", ts or now_ms(), {"occupied": n % 2 == 0})


async def test_the_outbox_forgets_a_reading_once_the_ingest_says_it_is_stored(
    ingest: Running, mosquitto: BrokerProcess
) -> None:
    db = ingest.service.settings.db.url
    async with subscribed(mosquitto, down_topic(DEVICE)) as down, _agent(mosquitto) as (agent, box):
        for n in range(250):
            agent.submit(_desk(n))
        async with asyncio.timeout(DEADLINE_S):
            await agent.flush()  # with await_stored: until every reading is confirmed
        stats = agent.stats
        assert (len(box), stats.confirmed, stats.unconfirmed) == (0, 250, 0)
        assert await _stored_seqs(db, box.stream) == list(range(1, 251))
        got = [(decode_down(m.payload), m.qos) for m in down.messages]
        notices = [n for n, _ in got if isinstance(n, StoredNotice)]
        assert notices and all(n.stream == box.stream for n in notices)
        confirmed = [s for n in notices for lo, hi in n.seqs for s in range(lo, hi + 1)]
        assert sorted(set(confirmed)) == list(range(1, 251))
        assert {qos for n, qos in got if isinstance(n, StoredNotice)} == {0}
        assert len(notices) < 250 // 20  # coalesced: fewer notices than batches


async def test_readings_no_notice_confirms_stay_and_are_resent(mosquitto: BrokerProcess) -> None:
    """No ingest at all: the broker's PUBACK alone forgets nothing; the agent resends
    after its timeout, its status says how many wait, and a notice then frees them."""
    config = replace(AWAIT, status_interval_s=0.2)
    async with subscribed(mosquitto) as sub, _agent(mosquitto, config) as (agent, box):
        for n in range(30):
            agent.submit(_desk(n))
        await sub.wait_until(lambda: len(sub.readings(DEVICE)) >= 60, "every reading twice")
        assert sorted({r.seq for r in sub.readings(DEVICE)}) == list(range(1, 31))
        # the subscriber can see the last resends before the agent has their PUBACKs
        await eventually(
            lambda: asyncio.sleep(0, agent.stats.delivered), lambda n: n >= 60, DEADLINE_S
        )
        stats = agent.stats
        assert (len(box), stats.unconfirmed, stats.confirmed) == (30, 30, 0)
        assert stats.resent >= 30 and stats.delivered >= 60
        await sub.wait_until(
            lambda: any(s.unconfirmed == 30 for s in sub.statuses()), "a status saying 30 wait"
        )
        notice = encode_down(StoredNotice(box.stream, ((1, 10), (12, 30))))
        await asyncio.to_thread(publish, mosquitto.port, down_topic(DEVICE), notice)
        await eventually(lambda: asyncio.sleep(0, len(box)), lambda n: n == 1, DEADLINE_S)
        assert [r.seq for r in box.held(1, 30)] == [11]
        other = encode_down(StoredNotice(str(uuid.uuid4()), ((1, 30),)))  # another stream's
        await asyncio.to_thread(publish, mosquitto.port, down_topic(DEVICE), other)
        await asyncio.to_thread(publish, mosquitto.port, down_topic(DEVICE), notice)
        await eventually(lambda: asyncio.sleep(0, agent.stats.confirmed), lambda n: n == 29)
        assert len(box) == 1
    status = decode_status(sub.on("status")[-1].payload)
    assert status.unconfirmed is not None


async def test_at_most_max_unconfirmed_readings_are_out(mosquitto: BrokerProcess) -> None:
    """Past ``max_unconfirmed`` the agent sends nothing new until notices come: an
    outbox draining after an outage goes at the pace PostgreSQL stores it."""
    config = replace(AWAIT, batch_max_readings=10, max_unconfirmed=25)
    async with subscribed(mosquitto) as sub, _agent(mosquitto, config) as (agent, box):
        for n in range(60):
            agent.submit(_desk(n))
        # A timeout passed (the first 30 were sent again) and still nothing past 30.
        await eventually(lambda: asyncio.sleep(0, agent.stats.resent), lambda n: n >= 30)
        assert {r.seq for r in sub.readings(DEVICE)} == set(range(1, 31))
        notice = encode_down(StoredNotice(box.stream, ((1, 30),)))
        await asyncio.to_thread(publish, mosquitto.port, down_topic(DEVICE), notice)
        await sub.wait_until(
            lambda: {r.seq for r in sub.readings(DEVICE)} == set(range(1, 61)), "the rest"
        )


async def test_a_dead_lettered_reading_is_confirmed_too(
    ingest: Running, mosquitto: BrokerProcess
) -> None:
    """A reading the ingest keeps as a dead letter (its time is past retention) would
    fare no better resent: the notice covers it, and the outbox is not held for ever."""
    db = ingest.service.settings.db.url
    async with _agent(mosquitto) as (agent, box):
        agent.submit(_desk(1))
        agent.submit(_desk(2, ts=now_ms() - 400 * 86_400_000))  # a year and more ago
        agent.submit(_desk(3))
        async with asyncio.timeout(DEADLINE_S):
            await agent.flush()
        assert (len(box), agent.stats.confirmed) == (0, 3)
    letters = await fetch(db, "SELECT reason FROM dead_letters WHERE device_id = $1", DEVICE)
    assert [r["reason"] for r in letters] == ["bad_ts"]


@pytest.fixture
async def quiet_ingest(database_url: str, mosquitto: BrokerProcess) -> AsyncIterator[Running]:
    """An ingest with ``IKN_INGEST_STORED_NOTICES=off``."""
    await seed(database_url)
    settings = replace(_settings(database_url, mosquitto, "quiet-ingest"), stored_notices=False)
    running = await _start(settings)
    yield running
    await running.close()


async def test_an_ingest_with_notices_off_confirms_nothing(
    quiet_ingest: Running, mosquitto: BrokerProcess
) -> None:
    db = quiet_ingest.service.settings.db.url
    async with _agent(mosquitto) as (agent, box):
        for n in range(5):
            agent.submit(_desk(n))
        await eventually(lambda: _stored_seqs(db, box.stream), lambda s: s == [1, 2, 3, 4, 5])
        # Stored, and yet a timeout passed without a notice: the agent sent them again.
        await eventually(lambda: asyncio.sleep(0, agent.stats.resent), lambda n: n >= 5)
        assert (len(box), agent.stats.confirmed) == (5, 0)
    assert await _stored_seqs(db, box.stream) == [1, 2, 3, 4, 5]  # the resend stored once


def test_the_settings_turn_notices_and_waiting_off() -> None:
    env = {"IKN_DATABASE_URL": "postgresql://u@h/d", "IKN_MQTT_URL": "mqtt://h"}
    assert IngestSettings.from_env(env).stored_notices is True
    off = IngestSettings.from_env({**env, "IKN_INGEST_STORED_NOTICES": "off"})
    assert off.stored_notices is False
    edge = {"IKN_MQTT_URL": "mqtt://h", "IKN_DEVICE_ID": "desk-d1"}
    assert (
        EdgeSettings.from_env(edge).await_stored,
        EdgeSettings.from_env(edge).stored_timeout_s,
    ) == (True, 30)
    quiet = {**edge, "IKN_EDGE_AWAIT_STORED": "off", "IKN_EDGE_STORED_TIMEOUT_S": "5"}
    assert (
        EdgeSettings.from_env(quiet).await_stored,
        EdgeSettings.from_env(quiet).stored_timeout_s,
    ) == (False, 5)
    with pytest.raises(SettingsError, match="IKN_EDGE_AWAIT_STORED"):
        EdgeSettings.from_env({**edge, "IKN_EDGE_AWAIT_STORED": "yes"})
