"""Hostile payloads around valid batches, through the real Mosquitto to a running
``ikn ingest`` (issue 15): every message ends stored, dead-lettered or (0 bytes) a
cleared retained message; the ingest never exits; a good reading published after each
one is stored; and the exact set of (device, stream, seq) stored is what was sent valid.

Hypothesis draws a valid batch of a desk sensor (or, one in four, a status) and then
edits it: any Unicode (U+0000 and lone surrogates included, escaped or as raw bytes) in
values and field names, huge numbers, deep nesting, duplicate keys, extra keys,
truncation."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from ikn.brokers import BrokerProcess
from ikn_core.domain import READING_KINDS, DeviceKind
from ikn_store.readings.rows import StatusUpdate, UpMessage
from ingest.decode import Cleared, Received, Window, decode
from tests.helpers import seed
from tests.test_ingest_resilience import _env, _ingest

HOSTILE = "desk-d1"  # a desk sensor of tests/helpers.py's SMALL_SITE
GOOD = "desk-d2"
CONTRACT = Path(__file__).parent.parent / "docs" / "contract.md"
# every code point: U+0000 and lone surrogates too (characters() leaves out surrogates)
_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
_DEEP = "__deep__"  # a value replaced by deep nesting once serialised
_RAW_NUMBER = "__number__"  # a value replaced by a number JSON can write, Python not
_DUPLICATE = "__duplicate__"  # a key replaced by a duplicate of another key


@st.composite
def readings(draw: st.DrawFn, seq: int) -> dict[str, Any]:
    ts = int(time.time() * 1000) - draw(st.integers(0, 3_600_000))
    kind = draw(
        st.sampled_from(["desk_occupancy", "desk_occupancy", "command_result", "people_count"])
    )
    if kind == "desk_occupancy":
        return {"seq": seq, "ts": ts, "kind": kind, "occupied": draw(st.booleans())}
    if kind == "people_count":  # a desk sensor does not count people: wrong_kind
        return {"seq": seq, "ts": ts, "kind": kind, "count": draw(st.integers(0, 50))}
    reading = {"seq": seq, "ts": ts, "kind": kind, "command": "c-1", "ok": draw(st.booleans())}
    if draw(st.booleans()):
        reading["detail"] = draw(_ANY_TEXT)
    return reading


@st.composite
def batches(draw: st.DrawFn) -> dict[str, Any]:
    first = draw(st.integers(0, 2**62))
    count = draw(st.integers(1, 4))
    items = [draw(readings(first + i)) for i in range(count)]
    return {"v": 1, "stream": str(draw(st.uuids())), "readings": items}


@st.composite
def statuses(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"v": 1, "state": draw(st.sampled_from(["online", "offline"]))}
    if draw(st.booleans()):
        doc["fw"] = draw(_ANY_TEXT)
    if draw(st.booleans()):
        doc["uptime_s"] = draw(st.integers(0, 2**63 - 1))
    return doc


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of ``doc`` an edit may change: itself and its readings, as far as
    earlier edits left them objects."""
    items = doc.get("readings")
    readings = [r for r in items if type(r) is dict] if type(items) is list else []
    return [c for c in (doc, *readings) if c]


@st.composite
def hostile(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid batch (or, one in four, a status) with zero to three edits, serialised one
    of several ways; and the topic it goes to."""
    channel = draw(st.sampled_from(["up", "up", "up", "status"]))
    doc = draw(batches() if channel == "up" else statuses())
    for _ in range(draw(st.integers(0, 3))):
        containers = _containers(doc)
        if not containers:
            break
        target = draw(st.sampled_from(containers))
        key = draw(st.sampled_from(sorted(target)))
        edit = draw(
            st.sampled_from(
                [
                    *("nul_value", "nul_key", "extra_key", "any_text", "huge", "deep"),
                    *("raw_number", "duplicate", "wrong_type"),
                ]
            )
        )
        if edit == "nul_value":
            value = target[key]
            target[key] = f"{value}\x00" if isinstance(value, str) else "\x00"
        elif edit == "nul_key":
            target[f"{key}\x00"] = target.pop(key)
        elif edit == "extra_key":
            target[draw(_ANY_TEXT)] = draw(st.integers() | _ANY_TEXT | st.none())
        elif edit == "any_text":
            target[key] = draw(_ANY_TEXT)
        elif edit == "huge":
            target[key] = draw(st.integers(2**63, 10**40) | st.integers(-(10**40), -1))
        elif edit == "deep":
            target[key] = _DEEP
        elif edit == "raw_number":
            target[key] = _RAW_NUMBER
        elif edit == "duplicate":
            target[_DUPLICATE] = draw(st.sampled_from(sorted(target)))
        else:
            target[key] = draw(st.booleans() | st.floats(allow_nan=False) | st.lists(st.none()))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), separators=(",", ":"))
    text = text.replace(f'"{_DEEP}"', "[" * (n := draw(st.integers(1000, 1100))) + "]" * n)
    text = text.replace(f'"{_RAW_NUMBER}"', draw(st.sampled_from(["1e400", "-1e999", "1" * 400])))
    text = re.sub(f'"{_DUPLICATE}":"([^"]*)"', r'"\1":"duplicate"', text)
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate as raw bytes: not UTF-8
    if draw(st.booleans()) and draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    return f"ikn/v1/dev/{HOSTILE}/{channel}", raw


@dataclass
class _Sent:
    stored: set[tuple[str, str, int]] = field(default_factory=set)
    dead: int = 0
    cleared: int = 0
    statuses: int = 0


@contextmanager
def _publisher(port: int) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def _publish(client: mqtt.Client, topic: str, payload: bytes) -> None:
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(timeout=10)
    assert info.is_published()


def _expect(topic: str, raw: bytes, sent: _Sent, window: Window) -> None:
    """What the ingest must make of ``raw``, by the contract's decoder and the registry."""
    outcome = decode(Received(topic, raw, 0, 1, datetime.now(UTC), 0), window)
    allowed = READING_KINDS[DeviceKind.DESK_SENSOR]
    if isinstance(outcome, Cleared):
        sent.cleared += 1
    elif isinstance(outcome, StatusUpdate):
        sent.statuses += 1
    elif isinstance(outcome, UpMessage) and all(r.kind in allowed for r in outcome.rows):
        sent.stored |= {(HOSTILE, r.stream, r.seq) for r in outcome.rows}
    else:
        sent.dead += 1


def _contract_reasons() -> set[str]:
    text = CONTRACT.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z_]+)` \|", text, re.MULTILINE))


class _Db:
    """A connection for a synchronous test: each query runs the test's own loop."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(url))

    def value(self, sql: str, *args: object) -> Any:
        return self.loop.run_until_complete(self.conn.fetchval(sql, *args))

    def rows(self, sql: str) -> list[asyncpg.Record]:
        return list(self.loop.run_until_complete(self.conn.fetch(sql)))

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def _all_accounted_for(db: _Db, sent: _Sent) -> None:
    """Every hostile message ended as the contract says; nothing else was stored."""
    deadline = time.monotonic() + 60
    letters = "SELECT coalesce(sum(letters), 0) FROM dead_letter_counts"
    while db.value(letters) < sent.dead and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db.value(letters) == sent.dead
    rows = db.rows("SELECT device_id, stream, seq FROM readings")
    assert {(r[0], str(r[1]), r[2]) for r in rows} == sent.stored
    reasons = {r[0] for r in db.rows("SELECT DISTINCT reason FROM dead_letters")}
    assert reasons <= _contract_reasons() - {"store_failed"}
    assert sent.dead and sent.statuses  # the examples were of each outcome
    assert any(device == HOSTILE for device, _, _ in sent.stored)


def test_hostile_payloads_never_stop_the_ingest_and_lose_nothing(
    database_url: str, mosquitto: BrokerProcess, tmp_path: Path
) -> None:
    asyncio.run(seed(database_url))
    db = _Db(database_url)
    proc = _ingest(_env(database_url, mosquitto), "hypothesis-ingest", tmp_path / "ingest.log")
    good_stream = str(uuid.uuid4())
    good_seqs = itertools.count(1)
    sent = _Sent()
    window = Window(timedelta(days=90))

    def good_reading_stored(client: mqtt.Client, seq: int, *, resend_s: float = 60) -> None:
        """Publish a good reading after the hostile one and wait until it is stored
        (publishing it again every ``resend_s``: until the ingest first subscribed,
        the broker has nobody to hold it for)."""
        now = int(time.time() * 1000)
        reading = {"seq": seq, "ts": now, "kind": "desk_occupancy", "occupied": True}
        batch = json.dumps({"v": 1, "stream": good_stream, "readings": [reading]}).encode()
        sent.stored.add((GOOD, good_stream, seq))
        deadline = time.monotonic() + 60
        sql = "SELECT count(*) FROM readings WHERE stream = $1 AND seq = $2"
        while True:
            _publish(client, f"ikn/v1/dev/{GOOD}/up", batch)
            resend = time.monotonic() + resend_s
            while time.monotonic() < resend:
                if db.value(sql, good_stream, seq):
                    return
                assert proc.poll() is None, "the ingest exited"
                assert time.monotonic() < deadline, f"good reading {seq} not stored"
                time.sleep(0.01)

    try:
        with _publisher(mosquitto.port) as client:
            good_reading_stored(client, 0, resend_s=0.5)  # the ingest is up and subscribed

            @settings(
                max_examples=120,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(hostile())
            def one(message: tuple[str, bytes]) -> None:
                topic, raw = message
                _expect(topic, raw, sent, window)
                _publish(client, topic, raw)
                good_reading_stored(client, next(good_seqs))

            one()
        _all_accounted_for(db, sent)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        db.close()
