"""The ingest's write of readings (ikn_store.readings.rows, ``ingest_derive()``): a batch of new
readings goes straight into ``readings`` by COPY; one holding a reading stored before
is written again through ``staging_readings`` and stores the rest once. The summary
that the derivation reads is a GROUP BY device_id, kind, ts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ikn_store.pool import create_pool
from ikn_store.readings.partitions import ensure_partitions
from ikn_store.readings.rows import ReadingRow, UpMessage, summarise, write
from tests.helpers import seed

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def _reference(rows: list[ReadingRow]) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    """The summary, in plain Python: GROUP BY device_id, kind, ts."""
    groups: dict[tuple[str, str, datetime], list[ReadingRow]] = {}
    for r in rows:
        groups.setdefault((r.device_id, r.kind, r.ts), []).append(r)

    def occupied(r: ReadingRow) -> bool:
        return r.kind == "desk_occupancy" and r.body.get("occupied") is True

    out = {}
    for key, members in groups.items():
        top = max(r.seq for r in members)
        out[key] = (
            max(r.received_at for r in members),
            any(occupied(r) for r in members),
            any(occupied(r) for r in members if r.seq == top),
        )
    return out


_messages = st.lists(
    st.builds(
        lambda device, rx, readings: UpMessage(
            f"ikn/v1/dev/{device}/up",
            device,
            b"{}",
            T0 + timedelta(seconds=rx),
            tuple(
                ReadingRow(
                    device,
                    "s1",
                    seq,
                    T0 + timedelta(seconds=ts),
                    T0 + timedelta(seconds=rx),
                    kind,
                    {"occupied": occupied} if kind == "desk_occupancy" else {"count": 3},
                )
                for seq, ts, kind, occupied in readings
            ),
        ),
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 5),
        st.lists(
            st.tuples(
                st.integers(0, 6),
                st.integers(0, 3),
                st.sampled_from(["desk_occupancy", "people_count", "environment", "badge_tap"]),
                st.booleans(),
            ),
            max_size=12,
        ),
    ),
    max_size=6,
)


@given(_messages)
def test_the_summary_is_the_sql_grouping(messages: list[UpMessage]) -> None:
    rows = [r for m in messages for r in m.rows]
    s = summarise(messages)
    assert s.groups == _reference(rows)
    sent = orjson.loads(s.json())  # as ingest_derive() gets it
    assert len(sent) == len(s.groups)
    for entry in sent:
        key = (entry["device_id"], entry["kind"], datetime.fromisoformat(entry["ts"]))
        seen, occupied, last_occupied = s.groups[key]
        assert datetime.fromisoformat(entry["seen"]) == seen
        assert (entry["occupied"], entry["last_occupied"]) == (occupied, last_occupied)
    assert s.has_counts == any(r.kind == "people_count" for r in rows)
    assert s.has_taps == any(r.kind == "badge_tap" for r in rows)


class _Recording:
    """A connection that notes the tables it copies into."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.copied_into: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def copy_to_table(self, table: str, **kwargs: Any) -> str:
        self.copied_into.append(table)
        return str(await self._conn.copy_to_table(table, **kwargs))


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[_Recording]:
    await seed(database_url)
    pool = await create_pool(database_url, 1)  # the ingest's connections: with staging
    try:
        async with pool.acquire() as c:
            today = datetime.now(UTC).date()
            await ensure_partitions(c, {today + timedelta(days=n) for n in (-1, 0, 1)})
            yield _Recording(c)
    finally:
        await pool.close()


def _message(stream: str, seqs: range, at: datetime, occupied: bool) -> UpMessage:
    rows = tuple(
        ReadingRow("desk-d1", stream, seq, at, at, "desk_occupancy", {"occupied": occupied})
        for seq in seqs
    )
    return UpMessage("ikn/v1/dev/desk-d1/up", "desk-d1", b"{}", at, rows)


async def _stored(conn: _Recording, stream: str) -> list[int]:
    rows = await conn.fetch("SELECT seq FROM readings WHERE stream = $1 ORDER BY seq", stream)
    return [r["seq"] for r in rows]


async def test_new_readings_go_straight_into_readings(conn: _Recording) -> None:
    stream, at = str(uuid.uuid4()), datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    result = await write(conn, [_message(stream, range(10), at, True)])
    assert (result.stored, result.duplicates) == (10, 0)
    assert conn.copied_into == ["readings"]
    assert await _stored(conn, stream) == list(range(10))
    assert await conn.fetchval("SELECT occupied FROM desk_state WHERE desk_id = 'd1'") is True


async def test_a_batch_with_readings_stored_before_stores_the_rest_once(
    conn: _Recording,
) -> None:
    stream, at = str(uuid.uuid4()), datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    await write(conn, [_message(stream, range(10), at, True)])
    conn.copied_into.clear()
    later = at + timedelta(seconds=5)
    again = [
        _message(stream, range(5, 10), at, True),
        _message(stream, range(10, 15), later, False),
    ]
    result = await write(conn, again, vacant_grace=timedelta(0))
    assert (result.stored, result.duplicates) == (5, 5)
    # the COPY into readings failed on the first redelivered reading, and was undone
    assert conn.copied_into == ["readings", "staging_readings"]
    assert await _stored(conn, stream) == list(range(15))
    # the derived state comes from the whole batch: the newest reading says vacant
    row = await conn.fetchrow("SELECT occupied, reported_at FROM desk_state WHERE desk_id = 'd1'")
    assert row is not None
    assert (row["occupied"], row["reported_at"]) == (False, later)
