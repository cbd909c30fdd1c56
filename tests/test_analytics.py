"""Utilisation analytics on hand-computable fixtures in Asia/Makassar (UTC+8).

Monday 2 November 2026, local time; every desk sensor is expected to report hourly,
so a reading's state holds until the next reading, at most two hours:

- d1 (zone b1-f1-a): free 08:00, occupied 09:30, free 11:00, free 12:00, free 13:00
  (live until 15:00), then occupied 23:00 and free 01:00 on Tuesday (live until 03:00).
  Booked 09:00-12:00, checked in by app at 09:35.
- d2 (zone b1-f1-a): occupied 10:00, free 10:30 (live until 12:30). Booked 14:00-16:00,
  released at 14:15 as a no-show.
- d3 (zone b1-f2-a): free 08:30, free 09:45 (live until 11:45). Booked 09:00-10:00,
  checked in by app at 09:05 but never occupied: a ghost booking.
- an environment sensor in b1-f1-a: CO2 600 / 24 °C at 10:05, 800 / 26 °C at 10:20.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson
import pytest

from ikn_store.analytics.queries import (
    Bucket,
    Level,
    Query,
    environment,
    funnel,
    utilisation,
    utilisation_computed,
    utilisation_json,
)
from ikn_store.pool import create_pool
from ikn_store.readings.partitions import ensure_partitions
from ikn_store.readings.rollups import refresh
from ikn_store.readings.rows import ReadingRow, UpMessage, write
from tests.helpers import seed

WITA = ZoneInfo("Asia/Makassar")
MONDAY = date(2026, 11, 2)
TUESDAY = date(2026, 11, 3)


def at(hhmm: str, day: date = MONDAY) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=WITA)


async def store(
    conn: asyncpg.Connection, device: str, *readings: tuple[datetime, dict[str, Any]]
) -> None:
    """Store readings the way the ingest does (one batch, one transaction)."""
    stream = str(uuid.uuid4())
    kind = "environment" if device.startswith("env") else "desk_occupancy"
    rows = tuple(
        ReadingRow(device, stream, seq, ts, datetime.now(UTC), kind, body)
        for seq, (ts, body) in enumerate(readings, start=1)
    )
    await write(
        conn, [UpMessage(f"ikn/v1/dev/{device}/up", device, b"{}", datetime.now(UTC), rows)]
    )


def occ(hhmm: str, occupied: bool, day: date = MONDAY) -> tuple[datetime, dict[str, Any]]:
    return at(hhmm, day), {"occupied": occupied}


BOOK = """INSERT INTO bookings (desk_id, person_id, created_by, period, status, checked_in_at,
                               check_in_signal, ended_at)
          VALUES ($1, $2, $2, tstzrange($3, $4), $5, $6, $7, $8)"""


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    await seed(database_url)
    pool = await create_pool(database_url, 2)  # its connections have the ingest's staging table
    try:
        async with pool.acquire() as connection:
            await build_fixture(connection)
            yield connection
    finally:
        await pool.close()


async def build_fixture(conn: asyncpg.Connection) -> None:
    await ensure_partitions(conn, [MONDAY - timedelta(days=1), MONDAY, TUESDAY])
    await conn.execute("UPDATE devices SET expected_interval_s = 3600")
    await conn.execute("UPDATE zones SET agency = 'kemenkeu' WHERE id = 'b1-f1-a'")
    await conn.execute(
        "INSERT INTO devices (id, kind, building_id, zone_id) "
        "VALUES ('env-1', 'environment', 'b1', 'b1-f1-a')"
    )
    await conn.execute(
        "INSERT INTO people (id, name, agency, unit) VALUES "
        "('p1', 'Siti', 'kemenkeu', 'u'), ('p2', 'Budi', 'kemenkeu', 'u'), "
        "('p3', 'Ani', 'bappenas', 'u')"
    )
    await conn.execute(
        BOOK, "d1", "p1", at("09:00"), at("12:00"), "checked_in", at("09:35"), "app", None
    )
    await conn.execute(
        BOOK, "d2", "p2", at("14:00"), at("16:00"), "released", None, None, at("14:15")
    )
    await conn.execute(
        BOOK, "d3", "p3", at("09:00"), at("10:00"), "checked_in", at("09:05"), "app", None
    )
    await store(
        conn,
        "desk-d1",
        occ("08:00", False),
        occ("09:30", True),
        occ("11:00", False),
        occ("12:00", False),
        occ("13:00", False),
        occ("23:00", True),
        occ("01:00", False, TUESDAY),
    )
    await store(conn, "desk-d2", occ("10:00", True), occ("10:30", False))
    await store(conn, "desk-d3", occ("08:30", False), occ("09:45", False))
    await store(
        conn,
        "env-1",
        (at("10:05"), {"co2_ppm": 600, "temp_c": 24.0}),
        (at("10:20"), {"co2_ppm": 800, "temp_c": 26.0}),
    )
    assert await refresh(conn) is not None


def _by(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


async def test_desk_days_split_occupancy_at_local_midnight(conn: asyncpg.Connection) -> None:
    rows = await utilisation(conn, Query(Level.DESK, Bucket.DAY, MONDAY, TUESDAY, zone="b1-f1-a"))
    monday = _by(rows, place="d1", bucket="2026-11-02")
    # live 08:00-15:00 and 23:00-24:00; occupied 09:30-11:00 and 23:00-24:00
    assert monday["live_minutes"] == 480 and monday["occupied_minutes"] == 150
    assert monday["booked_minutes"] == 180 and monday["unbooked_occupied_minutes"] == 60
    assert monday["occupancy_share"] == round(150 / 480, 4)
    assert monday["booked_share"] == round(180 / 1440, 4)
    tuesday = _by(rows, place="d1", bucket="2026-11-03")
    # occupied 00:00-01:00, then free and live until 03:00
    assert tuesday["live_minutes"] == 180 and tuesday["occupied_minutes"] == 60
    assert tuesday["unbooked_occupied_minutes"] == 60 and tuesday["booked_minutes"] == 0


async def test_zone_hour_peak_average_and_utilisation(conn: asyncpg.Connection) -> None:
    rows = await utilisation(conn, Query(Level.ZONE, Bucket.HOUR, MONDAY, MONDAY, building="b1"))
    ten = _by(rows, place="b1-f1-a", bucket="2026-11-02T10:00")
    # d1 occupied all hour, d2 10:00-10:30: both live all hour
    assert ten["live_minutes"] == 120 and ten["occupied_minutes"] == 90
    assert ten["peak_occupied"] == 2 and ten["average_occupied"] == 1.5
    assert ten["occupancy_share"] == 0.75
    # every quarter hour had a desk in use (frequency 1); in use: 2, 2, 1, 1 of 2 desks
    assert ten["frequency"] == 1.0 and ten["occupancy_rate"] == 0.75 and ten["utilisation"] == 0.75
    nine = _by(rows, place="b1-f1-a", bucket="2026-11-02T09:00")
    # only d1 live (free until 09:30, then occupied): 2 of 4 quarters in use, 1 desk of 1
    assert nine["frequency"] == 0.5 and nine["occupancy_rate"] == 1.0 and nine["utilisation"] == 0.5
    assert nine["booked_minutes"] == 60 and nine["booked_share"] == round(60 / 120, 4)


async def test_desk_quarter_hours_from_the_raw_tables_match(conn: asyncpg.Connection) -> None:
    rows = await utilisation(
        conn, Query(Level.DESK, Bucket.QUARTER, MONDAY, MONDAY, zone="b1-f1-a")
    )
    d2 = [r for r in rows if r["place"] == "d2" and r["occupied_minutes"] > 0]
    assert [r["bucket"] for r in d2] == ["2026-11-02T10:00", "2026-11-02T10:15"]
    hours = await utilisation(conn, Query(Level.DESK, Bucket.HOUR, MONDAY, MONDAY, zone="b1-f1-a"))
    days = await utilisation(conn, Query(Level.DESK, Bucket.DAY, MONDAY, MONDAY, zone="b1-f1-a"))
    for desk in ("d1", "d2"):
        hourly = sum(r["occupied_minutes"] for r in hours if r["place"] == desk)
        assert hourly == _by(days, place=desk)["occupied_minutes"]


async def test_funnel_no_shows_and_ghost_bookings(conn: asyncpg.Connection) -> None:
    rows = await funnel(conn, Query(Level.BUILDING, Bucket.DAY, MONDAY, TUESDAY))
    assert rows == [
        {
            "place": "b1",
            "bucket": "2026-11-02",
            "booked": 3,
            "checked_in": 2,
            "occupied": 1,
            "no_shows": 1,
            "no_show_rate": round(1 / 3, 4),
            "ghost_bookings": 1,
        }
    ]


async def test_agency_level_groups_zones_by_owner(conn: asyncpg.Connection) -> None:
    rows = await utilisation(conn, Query(Level.AGENCY, Bucket.DAY, MONDAY, MONDAY))
    owned = _by(rows, place="kemenkeu")
    assert owned["desks"] == 2 and owned["occupied_minutes"] == 150 + 30
    shared = _by(rows, place=None)  # b1-f2-a belongs to no agency
    assert shared["desks"] == 1 and shared["occupied_minutes"] == 0


async def test_environment_averages(conn: asyncpg.Connection) -> None:
    rows = await environment(conn, Query(Level.FLOOR, Bucket.HOUR, MONDAY, MONDAY))
    assert rows == [
        {
            "place": "b1-f1",
            "bucket": "2026-11-02T10:00",
            "co2_ppm": 700.0,
            "co2_readings": 2,
            "temp_c": 25.0,
            "temp_readings": 2,
        }
    ]


async def test_a_late_reading_corrects_a_closed_bucket(conn: asyncpg.Connection) -> None:
    query = Query(Level.ZONE, Bucket.DAY, MONDAY, MONDAY, zone="b1-f1-a")
    before = _by(await utilisation(conn, query), place="b1-f1-a")
    assert before["occupied_minutes"] == 150 + 30
    # d2's 11:00 reading arrives a day late: occupied until 13:00 (two expected intervals)
    await store(conn, "desk-d2", occ("11:00", True))
    assert await conn.fetchval("SELECT count(*) FROM analytics_dirty") > 0
    assert _by(await utilisation(conn, query), place="b1-f1-a") == before  # not yet rolled up
    await refresh(conn)
    after = _by(await utilisation(conn, query), place="b1-f1-a")
    assert after["occupied_minutes"] == 150 + 30 + 120
    assert after["live_minutes"] == before["live_minutes"] + 30  # d2 live until 13:00, not 12:30
    assert await conn.fetchval("SELECT count(*) FROM analytics_dirty") == 0


def test_a_bucket_too_small_for_the_period_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 7 days"):
        Query(Level.ZONE, Bucket.QUARTER, MONDAY, MONDAY + timedelta(days=7))
    with pytest.raises(ValueError, match="ends before"):
        Query(Level.ZONE, Bucket.DAY, TUESDAY, MONDAY)


async def test_cancelled_and_deleted_bookings_leave_the_figures_at_the_next_refresh(
    conn: asyncpg.Connection,
) -> None:
    query = Query(Level.ZONE, Bucket.DAY, MONDAY, MONDAY, zone="b1-f2-a")
    assert _by(await utilisation(conn, query), place="b1-f2-a")["booked_minutes"] == 60
    await conn.execute(
        "UPDATE bookings SET status = 'cancelled', ended_at = lower(period) WHERE desk_id = 'd3'"
    )
    await refresh(conn)
    assert _by(await utilisation(conn, query), place="b1-f2-a")["booked_minutes"] == 0
    rows = await funnel(conn, Query(Level.BUILDING, Bucket.DAY, MONDAY, MONDAY))
    assert rows[0]["booked"] == 2 and rows[0]["ghost_bookings"] == 0
    await conn.execute("DELETE FROM bookings WHERE desk_id = 'd2'")  # and one deleted
    await refresh(conn)
    rows = await funnel(conn, Query(Level.BUILDING, Bucket.DAY, MONDAY, MONDAY))
    assert rows[0]["booked"] == 1 and rows[0]["no_shows"] == 0


async def _desk_days_agree(conn: asyncpg.Connection, query: Query) -> list[dict[str, Any]]:
    """Desks by day as read from the rendered rows equal the same figures computed from
    the day rollup, and the JSON answer holds exactly those rows."""
    read = await utilisation(conn, query)
    assert read == await utilisation_computed(conn, query)
    assert orjson.loads(await utilisation_json(conn, query)) == read
    return read


async def test_rendered_desk_days_equal_the_computed_ones(conn: asyncpg.Connection) -> None:
    query = Query(Level.DESK, Bucket.DAY, MONDAY, TUESDAY)
    rows = await _desk_days_agree(conn, query)
    assert [(r["place"], r["bucket"]) for r in rows] == [
        ("d1", "2026-11-02"),
        ("d1", "2026-11-03"),
        ("d2", "2026-11-02"),
        ("d3", "2026-11-02"),
    ]
    d2 = _by(rows, place="d2")
    assert (d2["occupied_minutes"], d2["booked_minutes"], d2["frequency"]) == (30, 15, 0.2)
    assert d2["occupancy_share"] == round(30 / 150, 4) and d2["utilisation"] == 0.2
    await store(conn, "desk-d2", occ("11:00", True))  # late: occupied 11:00-13:00
    await refresh(conn)
    d2 = _by(await _desk_days_agree(conn, query), place="d2")
    assert d2["occupied_minutes"] == 30 + 120
    one = await _desk_days_agree(
        conn, Query(Level.DESK, Bucket.DAY, MONDAY, MONDAY, zone="b1-f2-a")
    )
    assert [r["place"] for r in one] == ["d3"]


_D3_FIRST = ("desk_occupancy", {"occupied": False})


async def test_the_ingest_marks_dirty_what_it_stores(conn: asyncpg.Connection) -> None:
    """Desk readings mark their desk's zone until two expected intervals later,
    environment readings their zone; a redelivered batch marks again but changes no
    figure."""
    before = await utilisation(conn, Query(Level.ZONE, Bucket.DAY, MONDAY, MONDAY))
    stream = await conn.fetchval("SELECT stream FROM readings WHERE device_id = 'desk-d3'")
    again = ReadingRow("desk-d3", stream, 1, at("08:30"), datetime.now(UTC), *_D3_FIRST)
    done = await write(
        conn, [UpMessage("ikn/v1/dev/desk-d3/up", "desk-d3", b"{}", at("12:00"), (again,))]
    )
    assert done.duplicates == 1  # redelivered: stored once
    await store(conn, "env-1", (at("10:05"), {"co2_ppm": 600, "temp_c": 24.0}))
    dirty = await conn.fetch(
        "SELECT desk_id, zone_id, lower(span) AS lo, upper(span) AS hi FROM analytics_dirty"
        " ORDER BY zone_id"
    )
    assert [tuple(r) for r in dirty] == [
        (None, "b1-f1-a", at("10:05"), at("10:05") + timedelta(microseconds=1)),
        (None, "b1-f2-a", at("08:30"), at("10:30")),  # d3's zone
    ]
    await refresh(conn)
    after = await utilisation(conn, Query(Level.ZONE, Bucket.DAY, MONDAY, MONDAY))
    assert after == before  # a reading at the same instant and state changes nothing
