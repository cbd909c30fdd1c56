"""No message from a device can stop, stall or slow the ingest for the others (issue 15):
on the real Mosquitto and PostgreSQL, each failing on the code before it."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest

from ikn.brokers import BrokerProcess
from ikn_core.contract import Batch, DeskOccupancy, encode_batch
from ikn_store.fleet.dead_letters import DeadLetter
from ikn_store.pool import close_pool, create_pool
from ikn_store.readings.rows import WriteResult
from ingest.decode import Decoded, Received, decode
from ingest.mqtt import Inbox
from ingest.service import DeadLetterLog, IngestService
from tests.helpers import eventually, fetch, publish, seed
from tests.test_ingest import Running, _settings

UP = "ikn/v1/dev/desk-d1/up"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _good(seq: int = 1, stream: str | None = None) -> bytes:
    return encode_batch(Batch(stream or Batch.new_stream(), (DeskOccupancy(seq, _now_ms(), True),)))


async def _dead(db: str) -> list[tuple[str, str, str, bytes]]:
    rows = await fetch(db, "SELECT topic, reason, detail, payload FROM dead_letters ORDER BY id")
    return [(r[0], r[1], r[2], bytes(r[3])) for r in rows]


async def _stored(db: str, stream: str) -> int:
    return int((await fetch(db, "SELECT count(*) FROM readings WHERE stream = $1", stream))[0][0])


async def test_a_nul_in_a_field_name_is_a_dead_letter_and_the_ingest_goes_on(
    ingest: Running, database_url: str, mosquitto: BrokerProcess
) -> None:
    """Before: the dead-letter write failed (invalid byte sequence 0x00) and the ingest
    exited, and again on every restart (the message was never acknowledged)."""
    doc = orjson.loads(_good())
    hostile = orjson.dumps({**doc, "x\x00y": 1})
    publish(mosquitto.port, UP, hostile)
    after = str(uuid.uuid4())
    publish(mosquitto.port, UP, _good(stream=after))
    await eventually(lambda: _stored(database_url, after), lambda n: n == 1)
    assert await _dead(database_url) == [
        (UP, "unknown_field", "x\\u0000y: is not part of contract v1", hostile)
    ]
    assert not ingest.task.done()


async def test_a_nul_in_a_string_value_is_a_contract_error_not_a_store_failure(
    ingest: Running, database_url: str, mosquitto: BrokerProcess
) -> None:
    """Before: a ``store_failed`` dead letter (a reason not in the contract's table), and
    its batch written one message at a time."""
    status = b'{"v":1,"state":"online","fw":"1.0\\u0000"}'
    publish(mosquitto.port, "ikn/v1/dev/desk-d2/status", status)
    answer = orjson.loads(_good())
    answer["readings"] = [
        {"seq": 2, "ts": _now_ms(), "kind": "command_result", "command": "c-1", "ok": False}
        | {"detail": "no\x00pe"}
    ]
    publish(mosquitto.port, UP, orjson.dumps(answer))
    letters = await eventually(lambda: _dead(database_url), lambda d: len(d) == 2)
    assert sorted((topic, reason, detail) for topic, reason, detail, _ in letters) == [
        (UP, "bad_field", "readings[0].detail: must not contain U+0000 (NUL)"),
        ("ikn/v1/dev/desk-d2/status", "bad_field", "fw: must not contain U+0000 (NUL)"),
    ]
    assert ingest.service.stats.counts["dead_letter.store_failed"] == 0


async def test_a_reading_of_a_kind_its_device_does_not_send_is_a_dead_letter(
    ingest: Running, database_url: str, mosquitto: BrokerProcess
) -> None:
    """Before: a desk sensor's people count was stored (and counted people at a desk)."""
    stream = str(uuid.uuid4())
    reading = {"seq": 1, "ts": _now_ms(), "kind": "people_count", "count": 4}
    counted = orjson.dumps({"v": 1, "stream": stream, "readings": [reading]})
    publish(mosquitto.port, UP, counted)
    (letter,) = await eventually(lambda: _dead(database_url), lambda d: len(d) == 1)
    assert letter[1:] == (
        "wrong_kind",
        "readings[0].kind: a people_count reading from a device that sends "
        "command_result, desk_occupancy",
        counted,
    )
    assert await _stored(database_url, stream) == 0


async def test_a_zero_byte_message_clears_a_retained_one_and_is_no_dead_letter(
    ingest: Running, database_url: str, mosquitto: BrokerProcess
) -> None:
    publish(mosquitto.port, "ikn/v1/dev/desk-d1/status", b"", retain=True)
    publish(mosquitto.port, UP, b"", retain=True)
    after = str(uuid.uuid4())
    publish(mosquitto.port, UP, _good(stream=after))
    await eventually(lambda: _stored(database_url, after), lambda n: n == 1)
    await eventually(
        lambda: asyncio.sleep(0, ingest.service.stats.counts["cleared"]), lambda n: n == 2
    )
    assert await _dead(database_url) == []


async def test_a_batch_the_database_refuses_is_bisected_to_the_one_message(
    database_url: str, mosquitto: BrokerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refuses one message of 1,000 (a trigger, standing in for any gap of the
    contract): the 999 others are stored, the one is a ``store_failed`` dead letter with
    its raw bytes, in at most 2·log2(1000) + 2 transactions. Before: one by one, 1,002."""
    await seed(database_url)
    await fetch(
        database_url,
        """CREATE FUNCTION refuse_666() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.seq = 666 THEN RAISE EXCEPTION 'refused' USING ERRCODE = '22023';
           END IF; RETURN NEW; END $$""",
    )
    await fetch(
        database_url,
        """CREATE TRIGGER refuse BEFORE INSERT ON readings
           FOR EACH ROW EXECUTE FUNCTION refuse_666()""",
    )
    service = IngestService(_settings(database_url, mosquitto, "bisect"))
    stream = str(uuid.uuid4())
    now = datetime.now(UTC)
    messages = [
        Received(UP, _good(seq, stream), seq, 1, now, 1)
        for seq in range(1000)  # one message per reading, as most devices send
    ]
    decoded = [decode(m, service.window) for m in messages]
    calls: list[int] = []
    real = service._write_once

    async def counted(pool: asyncpg.Pool, batch: Sequence[Decoded]) -> WriteResult:
        calls.append(len(batch))
        return await real(pool, batch)

    monkeypatch.setattr(service, "_write_once", counted)
    pool = await create_pool(database_url, 2)
    try:
        result = await service._write(pool, decoded, asyncio.Event())
    finally:
        await close_pool(pool)
    assert result is not None and result.stored == 999
    ((reason, payload),) = [(d.reason, d.payload) for d in result.dead_letters]
    assert (reason, payload) == ("store_failed", messages[666].payload)
    assert await _stored(database_url, stream) == 999
    assert len(calls) <= 2 * math.ceil(math.log2(1000)) + 2, calls


def test_the_log_has_one_line_per_device_and_reason_and_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: a WARNING per dead letter, 5,000 lines for 5,000 bad messages."""
    log = DeadLetterLog()
    now = datetime.now(UTC)
    caplog.set_level(logging.WARNING, "ingest.service")
    for n in range(5000):
        device = "desk-7" if n % 2 else "desk-8"
        log.add(DeadLetter(now, f"ikn/v1/dev/{device}/up", device, "not_json", "x\x00", b""))
    log.add(DeadLetter(now, "ikn/v1/dev/desk-7/up", "desk-7", "bad_field", "y", b""))
    log.flush(10)
    log.flush(10)  # nothing more
    assert [r.getMessage() for r in caplog.records] == [
        "dead letter from ikn/v1/dev/desk-8/up: not_json: x\\u0000",
        "dead letter from ikn/v1/dev/desk-7/up: not_json: x\\u0000",
        "dead letter from ikn/v1/dev/desk-7/up: bad_field: y",
        "2499 more dead letters from device desk-7: not_json in the last 10 s",
        "2499 more dead letters from device desk-8: not_json in the last 10 s",
    ]


async def test_the_inbox_is_bounded_in_bytes_as_well_as_messages() -> None:
    """Before: only messages were counted, so 1,000 messages of 1 MiB could wait."""
    inbox = Inbox(1000, byte_limit=1000)
    woken: list[bool] = []
    now = datetime.now(UTC)
    for mid in range(3):
        inbox.put_nowait(Received(UP, b"x" * 400, mid, 1, now, 1))
    assert inbox.at_limit() and inbox.bytes == 1200
    inbox.when_room(lambda: woken.append(True))
    inbox.get_nowait()
    assert not woken  # 800 bytes: more than half
    inbox.get_nowait()
    assert woken == [True] and not inbox.at_limit() and inbox.bytes == 400


async def test_a_card_number_reaches_neither_the_dead_letters_nor_the_log(
    ingest: Running, database_url: str, mosquitto: BrokerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 16: a faulty reader's card numbers, as an integer and as a string."""
    caplog.set_level(logging.DEBUG)
    stream = str(uuid.uuid4())
    for seq, badge in enumerate([4829001234, "0004829001"]):
        reading = {"seq": seq, "ts": _now_ms(), "kind": "badge_tap", "badge": badge}
        reading["direction"] = "in"
        publish(mosquitto.port, UP, orjson.dumps({"v": 1, "stream": stream, "readings": [reading]}))
    letters = await eventually(lambda: _dead(database_url), lambda d: len(d) == 2)
    assert [reason for _, reason, _, _ in letters] == ["bad_field", "bad_field"]
    for _topic, _reason, detail, payload in letters:
        assert b"482900" not in payload and "482900" not in detail
        assert b'"badge":"[redacted]"' in payload
    assert "482900" not in caplog.text


async def test_a_batch_holds_no_more_payload_bytes_than_the_inbox(
    database_url: str, mosquitto: BrokerProcess
) -> None:
    """IKN_INGEST_QUEUE_MAX_BYTES bounds a batch being collected too: 5,000 messages of
    1 MiB (what the production broker lets through) would otherwise make a 5 GB batch."""
    settings = replace(  # a latency bound the test never reaches: only the bytes end it
        _settings(database_url, mosquitto, "bytes"),
        queue_max_bytes=1 << 20,
        batch_latency_ms=60_000,
    )
    service = IngestService(settings)
    inbox = Inbox(1000, service.settings.queue_max_bytes)
    now = datetime.now(UTC)
    for mid in range(10):
        inbox.put_nowait(Received(UP, b"x" * 400_000, mid, 1, now, 1))
    batch = await service._collect(inbox, asyncio.Event())
    assert [m.mid for m in batch] == [0, 1, 2]  # 1.2 MB: the third passed the bound
