"""The ingest's own COPY encoding (ikn_store/readings/copy_rows.py) stores exactly what asyncpg's
codecs store, for every kind of reading, time zone and stream spelling."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from ikn_store.pool import create_pool
from ikn_store.readings import copy_rows
from ikn_store.readings.rows import _READING_COLUMNS

# A ``ReadingRow``, whose stream may also be a UUID object (``copy_rows.encode`` takes both)
Row = tuple[str, uuid.UUID | str, int, datetime, datetime, str, dict[str, Any]]


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    pool = await create_pool(database_url, 1)  # with the staging table and jsonb codec
    try:
        async with pool.acquire() as conn:
            yield conn
    finally:
        await pool.close()


def _rows() -> list[Row]:
    stream = uuid.uuid4()
    now = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)
    plus8 = timezone(timedelta(hours=8))
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("desk_occupancy", {"occupied": True}),
        ("desk_occupancy", {"occupied": False}),
        ("badge_tap", {"badge": "tok-ü-1", "direction": "out"}),
        ("people_count", {"count": 12}),
        ("environment", {"co2_ppm": 612.5, "temp_c": -3, "humidity_pct": 41.25}),
    ]
    rows: list[Row] = []
    for n, (kind, body) in enumerate(bodies * 3):
        ts = now - timedelta(milliseconds=n % 4)  # some readings share their time
        rows.append(
            (
                f"dev-{n % 2}",
                stream if n % 3 else str(stream),  # a UUID, or its text
                2**40 + n,
                ts.astimezone(plus8) if n % 5 == 0 else ts,
                now + timedelta(microseconds=n // 5),
                kind,
                body,
            )
        )
    return rows


async def _staged(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await conn.fetch("SELECT * FROM staging_readings ORDER BY seq")]


async def test_encoded_rows_read_back_as_asyncpg_would_store_them(
    conn: asyncpg.Connection,
) -> None:
    rows = _rows()
    async with conn.transaction():
        await conn.copy_records_to_table("staging_readings", records=rows, columns=_READING_COLUMNS)
        expected = await _staged(conn)
    async with conn.transaction():
        await conn.copy_to_table(
            "staging_readings",
            source=copy_rows.chunks(copy_rows.encode(rows)),
            columns=_READING_COLUMNS,
            format="binary",
        )
        got = await _staged(conn)
    assert got == expected
    assert len(got) == len(rows)


async def test_an_empty_batch_is_valid_copy_data(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await conn.copy_to_table(
            "staging_readings",
            source=copy_rows.chunks(copy_rows.encode([])),
            columns=_READING_COLUMNS,
            format="binary",
        )
        assert await _staged(conn) == []
