"""``ikn bench analytics``: a month of utilisation analytics for a campus, from the rollups.

It starts its own PostgreSQL (embedded), loads a campus (default 5,000 desks in 5
buildings, 125 zones, 4 agencies and shared zones) and a month of working days:
desk sensors reporting arrivals, lunch and departures, environment sensors every 15
minutes, and bookings (checked in, released as no-shows, ghosts). Readings go in
through the ingest's own store path (``ikn_store.readings.rows.write``), so the rollup
triggers run as in production. Then:

1. ``refresh_s``: the first full rollup of the month (``ikn_store.readings.rollups.refresh``);
2. per level (desk, zone, floor, building, agency): the month's utilisation by day as
   the API answers it (the JSON rows, ``analytics.utilisation_json``), repeated, p50
   and p99 in ms, with the rows and bytes answered; ``desk_dicts``: the desk level as
   Python dicts (``analytics.utilisation``, what CSV is written from); the funnel by
   building too;
3. ``late_refresh_ms``: a late reading for one desk in the middle of the month, and
   the refresh that corrects its closed day;
4. the ceilings: ``scan_floor_ms`` a bare ``count(*)`` over the month of desk-day
   rollup rows (what the largest level, desks, must read at least), and
   ``raw_building_ms`` one building's month of desk-hours computed from the raw
   readings and bookings instead of the rollups.

5. ``dirty_marking``: what marking the rollups dirty adds to the ingest's readings
   INSERT, per statement, for a batch of ``DIRTY_BATCH`` new desk readings (median of
   ``DIRTY_TRIALS``, each in a rolled-back transaction): the INSERT alone, and the
   INSERT plus the ingest's marking from the batch's summary (``rollups.mark_dirty``:
   ``analytics_mark_readings()``, the step ``ingest_derive()`` runs).

``ratio`` = scan_floor_ms / the desk level's p50 (1.0: as fast as counting the rows
it reads); ``raw_speedup`` = raw_building_ms / the building level's p50.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from ikn.brokers import free_port
from ikn_core.domain import IKN_ZONE as WITA
from ikn_core.domain import Building, Desk, Device, DeviceKind, Floor, Site, Zone
from ikn_store.analytics import queries as analytics
from ikn_store.analytics.queries import Bucket, Level, Query
from ikn_store.embedded import EmbeddedPostgres
from ikn_store.migrations import migrate
from ikn_store.pool import create_pool
from ikn_store.readings.partitions import ensure_partitions
from ikn_store.readings.rollups import mark_dirty, refresh
from ikn_store.readings.rows import ReadingRow, Summary, UpMessage, summarise, write
from ikn_store.spaces import load_site

AGENCIES = ("kemenkeu", "bappenas", "kemendagri", "otorita", None)  # None: shared zones
MESSAGES_PER_WRITE = 50  # about 5,000 readings per ingest transaction
DIRTY_BATCH = 5000
DIRTY_TRIALS = 15


@dataclass(frozen=True, slots=True)
class Options:
    desks: int = 5000
    days: int = 30
    repeat: int = 15


def _site(desks: int) -> Site:
    buildings, floors_per, zones_per = 5, 5, 5
    per_zone = max(1, -(-desks // (buildings * floors_per * zones_per)))
    b = tuple(Building(f"ab{i}", f"Gedung {i}") for i in range(buildings))
    f = tuple(
        Floor(f"ab{i}-f{j}", f"ab{i}", f"Lantai {j}", j)
        for i in range(buildings)
        for j in range(floors_per)
    )
    z = tuple(Zone(f"{fl.id}-z{k}", fl.id, f"Zona {k}") for fl in f for k in range(zones_per))
    d = tuple(
        Desk(f"ad{n}", z[n // per_zone].id, f"Meja {n}", float(n % per_zone), 0.0)
        for n in range(desks)
    )
    devices = tuple(
        Device(
            f"as{desk.id}",
            DeviceKind.DESK_SENSOR,
            desk.zone_id.split("-")[0],
            desk.zone_id,
            desk.id,
        )
        for desk in d
    ) + tuple(
        Device(f"ae{zone.id}", DeviceKind.ENVIRONMENT, zone.id.split("-")[0], zone.id) for zone in z
    )
    return Site(buildings=b, floors=f, zones=z, desks=d, devices=devices)


def _local(day: date, minutes: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=WITA) + timedelta(minutes=minutes)


def _desk_day(rng: random.Random, day: date) -> list[tuple[datetime, bool]]:
    """Arrive, lunch, back, leave; a third of desk-days nobody comes (free all day)."""
    if rng.random() < 0.33:
        return [(_local(day, 7 * 60), False), (_local(day, 13 * 60), False)]
    arrive, lunch, leave = rng.randint(450, 600), rng.randint(690, 750), rng.randint(930, 1050)
    return [
        (_local(day, 7 * 60), False),
        (_local(day, arrive), True),
        (_local(day, lunch), False),
        (_local(day, lunch + 60), True),
        (_local(day, leave), False),
    ]


def _working_days(first: date, days: int) -> list[date]:
    return [
        first + timedelta(days=i) for i in range(days) if (first + timedelta(days=i)).weekday() < 5
    ]


def _readings(device: Device, day: date, rng: random.Random) -> list[tuple[datetime, Any]]:
    if device.kind is DeviceKind.DESK_SENSOR:
        return [(ts, {"occupied": o}) for ts, o in _desk_day(rng, day)]
    return [
        (_local(day, m), {"co2_ppm": rng.randint(450, 1200), "temp_c": rng.uniform(22, 27)})
        for m in range(7 * 60, 19 * 60, 15)
    ]


def _messages(site: Site, days: list[date], rng: random.Random) -> list[UpMessage]:
    """One message per device with its month of readings (the store path takes any size)."""
    now = datetime.now(UTC)
    messages = []
    for device in site.devices:
        kind = "desk_occupancy" if device.kind is DeviceKind.DESK_SENSOR else "environment"
        stream = str(uuid.uuid4())
        readings = [r for day in days for r in _readings(device, day, rng)]
        rows = tuple(
            ReadingRow(device.id, stream, seq, ts, now, kind, body)
            for seq, (ts, body) in enumerate(readings, start=1)
        )
        messages.append(UpMessage(f"ikn/v1/dev/{device.id}/up", device.id, b"", now, rows))
    return messages


def _booking(desk: str, person: str, day: date, rng: random.Random) -> tuple[Any, ...]:
    """Booked 08:00-17:00: checked in by app at 08:10, or released as a no-show (15 %)."""
    t0, t1 = _local(day, 8 * 60), _local(day, 17 * 60)
    if rng.random() < 0.15:
        return (desk, person, t0, t1, "released", None, None, t0 + timedelta(minutes=15))
    return (desk, person, t0, t1, "checked_in", t0 + timedelta(minutes=10), "app", None)


_BOOK = """
INSERT INTO bookings (desk_id, person_id, created_by, period, status, checked_in_at,
                      check_in_signal, ended_at)
SELECT desk, person, person, tstzrange(t0, t1), status, checked_in_at, signal, ended_at
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[],
            $6::timestamptz[], $7::text[], $8::timestamptz[])
     AS u(desk, person, t0, t1, status, checked_in_at, signal, ended_at)
"""


async def _bookings(
    conn: asyncpg.Connection, site: Site, days: list[date], rng: random.Random
) -> int:
    await conn.executemany(
        "INSERT INTO people (id, name, agency, unit) VALUES ($1, $1, $2, 'u')",
        [(f"ap{i}", AGENCIES[i % 4]) for i in range(len(site.desks))],
    )
    chosen = [
        _booking(desk.id, f"ap{i}", day, rng)
        for i, desk in enumerate(site.desks)
        for day in days
        if rng.random() >= 0.4
    ]
    cols = [list(col) for col in zip(*chosen, strict=True)]
    await conn.execute(_BOOK, *cols)
    return len(cols[0])


async def _load(url: str, o: Options) -> dict[str, Any]:
    rng = random.Random(8)
    site = _site(o.desks)
    first = date.today().replace(day=1) - timedelta(days=o.days)
    days = _working_days(first, o.days)
    pool = await create_pool(url, 2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            await load_site(conn, site)
            await conn.execute("UPDATE devices SET expected_interval_s = 21600")  # 6 h heartbeat
            await conn.executemany(
                "UPDATE zones SET agency = $2 WHERE id = $1",
                [(z.id, AGENCIES[i % len(AGENCIES)]) for i, z in enumerate(site.zones)],
            )
            await ensure_partitions(
                conn, [first - timedelta(days=1) + timedelta(days=i) for i in range(o.days + 2)]
            )
            booked = await _bookings(conn, site, days, rng)
            messages = _messages(site, days, rng)
            t0 = time.perf_counter()
            for i in range(0, len(messages), MESSAGES_PER_WRITE):
                await write(conn, messages[i : i + MESSAGES_PER_WRITE])
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            await refresh(conn)
            refresh_s = time.perf_counter() - t0
            slot_rows = await conn.fetchval("SELECT count(*) FROM analytics_slots")
            day_rows = await conn.fetchval("SELECT count(*) FROM analytics_days")
    finally:
        await pool.close()
    return {
        "first": first,
        "last": first + timedelta(days=o.days - 1),
        "desks": len(site.desks),
        "zones": len(site.zones),
        "readings": sum(len(m.rows) for m in messages),
        "bookings": booked,
        "rollup_slot_rows": slot_rows,
        "rollup_day_rows": day_rows,
        "load_s": round(load_s, 1),
        "refresh_s": round(refresh_s, 1),
    }


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return round(ordered[len(ordered) // 2], 1), round(p99, 1)


async def _timed(repeat: int, probe: Any) -> tuple[float, float, int]:
    samples, rows = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = len(await probe())
        samples.append((time.perf_counter() - t0) * 1000)
    return (*_percentiles(samples), rows)


async def _queries(url: str, o: Options, first: date, last: date) -> dict[str, Any]:
    out: dict[str, Any] = {}
    conn = await asyncpg.connect(url)
    try:
        for level in Level:
            out[level.value] = await _answers(conn, o, Query(level, Bucket.DAY, first, last))
        desk = Query(Level.DESK, Bucket.DAY, first, last)
        p50, p99, rows = await _timed(o.repeat, lambda: analytics.utilisation(conn, desk))
        out["desk_dicts"] = {"p50_ms": p50, "p99_ms": p99, "rows": rows}
        one = Query(Level.DESK, Bucket.DAY, first, last, building="ab0")
        out["desk_one_building"] = await _answers(conn, o, one)
        funnel = Query(Level.BUILDING, Bucket.DAY, first, last)
        p50, p99, rows = await _timed(o.repeat, lambda: analytics.funnel(conn, funnel))
        out["funnel_building"] = {"p50_ms": p50, "p99_ms": p99, "rows": rows}
        floor, _, _ = await _timed(
            o.repeat,
            lambda: conn.fetch(
                "SELECT count(*) FROM analytics_days"
                " WHERE level = 'desk' AND day BETWEEN $1 AND $2",
                first,
                last,
            ),
        )
        out["scan_floor_ms"] = floor
        raw = Query(Level.BUILDING, Bucket.HOUR, first, last, building="ab0")
        out["raw_building_ms"], _, _ = await _timed(1, lambda: analytics.desk_slots_raw(conn, raw))
    finally:
        await conn.close()
    return out


async def _answers(conn: asyncpg.Connection, o: Options, query: Query) -> dict[str, Any]:
    """The JSON answer's p50/p99, its rows and its size."""
    p50, p99, size = await _timed(o.repeat, lambda: analytics.utilisation_json(conn, query))
    rows = len(orjson.loads(await analytics.utilisation_json(conn, query)))
    return {"p50_ms": p50, "p99_ms": p99, "rows": rows, "mb": round(size / 1e6, 1)}


def _dirty_batch(day: date, desks: int) -> list[ReadingRow]:
    """New desk readings (fresh streams) from up to 500 desks, ten each, on ``day``."""
    now = datetime.now(UTC)
    streams = [str(uuid.uuid4()) for _ in range(DIRTY_BATCH // 10)]
    return [
        ReadingRow(
            f"asad{i // 10 % desks}",
            streams[i // 10],
            i % 10 + 1,
            _local(day, 480 + i % 10),
            now,
            "desk_occupancy",
            {"occupied": i % 2 == 0},
        )
        for i in range(DIRTY_BATCH)
    ]


async def _insert_ms(conn: asyncpg.Connection, rows: list[ReadingRow], form: str) -> float:
    """The readings INSERT (and its dirty-marking) in ms, in a rolled-back transaction."""
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.copy_records_to_table("staging_readings", records=rows, columns=_COLUMNS)
        summary = _summary(rows).json()  # the ingest's, made before its write
        t0 = time.perf_counter()
        await conn.execute(
            "INSERT INTO readings SELECT * FROM staging_readings ON CONFLICT DO NOTHING"
        )
        if form == "summary":
            await mark_dirty(conn, summary)
        return (time.perf_counter() - t0) * 1000
    finally:
        await tx.rollback()


_COLUMNS = ("device_id", "stream", "seq", "ts", "received_at", "kind", "body")


def _summary(rows: list[ReadingRow]) -> Summary:
    """The batch's summary as the ingest makes it: one message per stream."""
    streams: dict[str, list[ReadingRow]] = {}
    for row in rows:
        streams.setdefault(row.stream, []).append(row)
    return summarise(
        UpMessage("", r[0].device_id, b"", r[0].received_at, tuple(r)) for r in streams.values()
    )


async def _dirty_cost(url: str, day: date, desks: int) -> dict[str, Any]:
    pool = await create_pool(url, 1)
    try:
        async with pool.acquire() as conn:
            samples: dict[str, list[float]] = {"none": [], "summary": []}
            for trial in range(DIRTY_TRIALS):
                rows = _dirty_batch(day, desks)
                forms = list(samples)
                for form in forms[trial % 2 :] + forms[: trial % 2]:  # each form first in turn
                    samples[form].append(await _insert_ms(conn, rows, form))
    finally:
        await pool.close()
    median = {form: sorted(t)[len(t) // 2] for form, t in samples.items()}
    return {
        "readings": DIRTY_BATCH,
        "insert_ms": round(median["none"], 2),
        "insert_with_marking_ms": round(median["summary"], 2),
        "marking_share": round(median["summary"] / median["none"] - 1, 3),
    }


async def _late(url: str, day: date) -> float:
    pool = await create_pool(url, 1)
    try:
        async with pool.acquire() as conn:
            late = ReadingRow(
                "asad0",
                str(uuid.uuid4()),
                1,
                _local(day, 20 * 60),
                datetime.now(UTC),
                "desk_occupancy",
                {"occupied": True},
            )
            await write(
                conn, [UpMessage("ikn/v1/dev/asad0/up", "asad0", b"", late.received_at, (late,))]
            )
            t0 = time.perf_counter()
            await refresh(conn)
            return round((time.perf_counter() - t0) * 1000, 1)
    finally:
        await pool.close()


async def _measure(url: str, o: Options) -> dict[str, Any]:
    loaded = await _load(url, o)
    first, last = loaded.pop("first"), loaded.pop("last")
    timings = await _queries(url, o, first, last)
    late_ms = await _late(url, first + (last - first) / 2)
    dirty = await _dirty_cost(url, first + (last - first) / 2, o.desks)
    desk_p50 = timings[Level.DESK.value]["p50_ms"]
    return {
        **loaded,
        "period": f"{first}..{last}",
        "bucket": "day",
        **{k: v for k, v in timings.items()},
        "late_refresh_ms": late_ms,
        "dirty_marking": dirty,
        "ratio": round(timings["scan_floor_ms"] / desk_p50, 3) if desk_p50 else None,
        "raw_speedup": round(timings["raw_building_ms"] / timings["building"]["p50_ms"], 1),
        "cpus": os.cpu_count(),
    }


def run(o: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ikn-bench-analytics-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), durable=False)
        pg.start()
        try:
            return asyncio.run(_measure(pg.url(), o))
        finally:
            pg.stop()
