"""Utilisation analytics read from the rollups of ``ikn_store/readings/rollups.py``.

Every figure is grouped by a place (desk, zone, floor, building or the agency that
owns the zone) and a bucket (15 minutes, hour, local day, local week starting
Monday) in the building's own time zone. The definitions are in docs/analytics.md.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from ikn_store.readings.rollups import DESK_SLOTS


class Level(enum.StrEnum):
    DESK = "desk"
    ZONE = "zone"
    FLOOR = "floor"
    BUILDING = "building"
    AGENCY = "agency"


class Bucket(enum.StrEnum):
    QUARTER = "15min"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


# The longest period each bucket answers (a month of hours, a week of quarter hours).
MAX_DAYS = {Bucket.QUARTER: 7, Bucket.HOUR: 31, Bucket.DAY: 366, Bucket.WEEK: 731}
_PLACE = {
    Level.DESK: "d.id",
    Level.ZONE: "z.id",
    Level.FLOOR: "f.id",
    Level.BUILDING: "b.id",
    Level.AGENCY: "coalesce(z.agency, '')",
}
_TRUNC = {
    Bucket.QUARTER: "{t}",
    Bucket.HOUR: "date_trunc('hour', {t})",
    Bucket.DAY: "date_trunc('day', {t})",
    Bucket.WEEK: "date_trunc('week', {t})",
}


@dataclass(frozen=True, slots=True)
class Query:
    """A period of local days ``first``..``last`` (both included) under optional places."""

    level: Level
    bucket: Bucket
    first: date
    last: date
    building: str | None = None
    floor: str | None = None
    zone: str | None = None

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError("the period ends before it starts")
        if self.days > MAX_DAYS[self.bucket]:
            raise ValueError(
                f"bucket={self.bucket} answers at most {MAX_DAYS[self.bucket]} days; "
                f"this period has {self.days}"
            )

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


# The desks in scope, with their group key and period bounds.
_SCOPE = """
SELECT {place} AS place, b.tz, z.id AS zone_id, d.id AS desk_id,
       ($1::date::timestamp AT TIME ZONE b.tz) AS lo,
       (($2::date + 1)::timestamp AT TIME ZONE b.tz) AS hi
FROM desks d JOIN zones z ON z.id = d.zone_id JOIN floors f ON f.id = z.floor_id
JOIN buildings b ON b.id = f.building_id
WHERE ($3::text IS NULL OR b.id = $3) AND ($4::text IS NULL OR f.id = $4)
  AND ($5::text IS NULL OR z.id = $5)
"""

# Day and week buckets: the day rollup of each place in scope.
_FROM_DAYS = """
WITH places AS (SELECT place, count(*) AS desks FROM ({scope}) s GROUP BY place)
SELECT a.place, {bucket} AS bucket, p.desks,
       sum(a.slots_live) AS slots_live, sum(a.slots_used) AS slots_used,
       sum(a.occ_sum) AS occ_sum, max(a.peak) AS peak, sum(a.live_s) AS live_s,
       sum(a.occupied_s) AS occupied_s, sum(a.booked_s) AS booked_s,
       sum(a.occupied_booked_s) AS occupied_booked_s,
       sum(a.co2_sum) / nullif(sum(a.co2_n), 0) AS co2_ppm, sum(a.co2_n) AS co2_readings,
       sum(a.temp_sum) / nullif(sum(a.temp_n), 0) AS temp_c, sum(a.temp_n) AS temp_readings
FROM places p JOIN analytics_days a
  ON a.level = $6 AND a.place = p.place AND a.day >= $1::date AND a.day <= $2::date
GROUP BY 1, 2, 3
"""

# Quarter-hour and hour buckets above desks: the slot rollup of each place in scope.
_FROM_SLOTS = """
WITH places AS (SELECT place, count(*) AS desks FROM ({scope}) s GROUP BY place)
SELECT a.place, {bucket} AS bucket, p.desks,
       count(*) FILTER (WHERE a.desks_live > 0) AS slots_live,
       count(*) FILTER (WHERE a.desks_used > 0) AS slots_used,
       coalesce(sum(a.desks_used::float8 / a.desks_live) FILTER (WHERE a.desks_used > 0), 0)
           AS occ_sum,
       max(a.desks_used) AS peak, sum(a.live_s) AS live_s, sum(a.occupied_s) AS occupied_s,
       sum(a.booked_s) AS booked_s, sum(a.occupied_booked_s) AS occupied_booked_s,
       sum(a.co2_sum) / nullif(sum(a.co2_n), 0) AS co2_ppm, sum(a.co2_n) AS co2_readings,
       sum(a.temp_sum) / nullif(sum(a.temp_n), 0) AS temp_c, sum(a.temp_n) AS temp_readings
FROM places p JOIN analytics_slots a
  ON a.level = $6 AND a.place = p.place AND a.local_start >= $1::date::timestamp
 AND a.local_start < ($2::date + 1)::timestamp
GROUP BY 1, 2, 3
"""

_FROM_RAW_SLOTS = """
WITH slots AS ({desk_slots})
SELECT g.place, {bucket} AS bucket, 1 AS desks,
       count(*) FILTER (WHERE s.live_s > 0) AS slots_live,
       count(*) FILTER (WHERE s.occupied_s > 0) AS slots_used,
       count(*) FILTER (WHERE s.occupied_s > 0)::float8 AS occ_sum,
       max(CASE WHEN s.occupied_s > 0 THEN 1 ELSE 0 END) AS peak,
       sum(s.live_s) AS live_s, sum(s.occupied_s) AS occupied_s, sum(s.booked_s) AS booked_s,
       sum(s.occupied_booked_s) AS occupied_booked_s
FROM slots s JOIN _analytics_ranges g USING (desk_id)
GROUP BY 1, 2
"""

# The figures of each place and bucket from the sums of ``{rows}``, each row rendered
# as JSON by analytics_utilisation_row(), all in SQL (a month of desks
# is a hundred thousand rows).
_UTILISATION = """
WITH r AS ({rows}),
m AS (
    SELECT r.*,
           extract(epoch FROM least(r.bucket + interval '{step}', ($2::date + 1)::timestamp)
                              - greatest(r.bucket, $1::date::timestamp))::float8 AS secs
    FROM r
)
SELECT analytics_utilisation_row(
    nullif(place, ''), to_char(bucket, '{label}'), desks::bigint, secs, slots_live::bigint,
    slots_used::bigint, occ_sum::float8, peak::bigint, live_s::float8, occupied_s::float8,
    booked_s::float8, occupied_booked_s::float8) AS body
FROM m ORDER BY nullif(place, ''), bucket
"""

# Desks by local day: the rows the refresh rendered (``analytics_desk_rows``).
_DESK_DAY_ROWS = """
SELECT r.body FROM ({scope}) s
JOIN analytics_desk_rows r ON r.desk_id = s.desk_id AND r.day >= $1::date AND r.day <= $2::date
ORDER BY r.desk_id, r.day
"""
_INTERVAL = {
    Bucket.QUARTER: "15 minutes",
    Bucket.HOUR: "1 hour",
    Bucket.DAY: "1 day",
    Bucket.WEEK: "7 days",
}
_LABEL = {
    Bucket.QUARTER: 'YYYY-MM-DD"T"HH24:MI',
    Bucket.HOUR: 'YYYY-MM-DD"T"HH24:MI',
    Bucket.DAY: "YYYY-MM-DD",
    Bucket.WEEK: "YYYY-MM-DD",
}

_FUNNEL = """
WITH scope AS ({scope})
SELECT s.place, {bucket} AS bucket,
       count(*) AS booked,
       count(*) FILTER (WHERE u.checked_in) AS checked_in,
       count(*) FILTER (WHERE u.checked_in AND u.occupied_s > 0) AS occupied,
       count(*) FILTER (WHERE u.status = 'released') AS no_shows,
       count(*) FILTER (WHERE u.checked_in AND u.live_s > 0 AND u.occupied_s = 0) AS ghost
FROM scope s
JOIN analytics_booking_use u ON u.desk_id = s.desk_id
 AND u.local_start >= $1::date::timestamp AND u.local_start < ($2::date + 1)::timestamp
 AND u.status <> 'cancelled'
GROUP BY 1, 2 ORDER BY 1, 2
"""

_NO_SHOWS = """
SELECT p.id AS person, p.name, p.agency, p.unit, count(*) AS booked,
       count(*) FILTER (WHERE b.status = 'released') AS no_shows
FROM bookings b JOIN people p ON p.id = b.person_id
JOIN desks d ON d.id = b.desk_id JOIN zones z ON z.id = d.zone_id
JOIN floors f ON f.id = z.floor_id JOIN buildings b2 ON b2.id = f.building_id
WHERE b.status <> 'cancelled'
  AND lower(b.period) >= ($1::date::timestamp AT TIME ZONE b2.tz)
  AND lower(b.period) < (($2::date + 1)::timestamp AT TIME ZONE b2.tz)
  AND ($3::text IS NULL OR b2.id = $3)
GROUP BY p.id ORDER BY no_shows DESC, p.id
"""


# The bucket of a whole period: its first local day.
_WHOLE_PERIOD = "$1::date::timestamp"

# The distinct people behind a place's figures in the period: those who held a booking
# of one of its desks (not cancelled) overlapping the period, and those a desk of it is
# assigned to. ($6: the place's id at the query's level.)
_PEOPLE = """
WITH scope AS ({scope})
SELECT count(DISTINCT person) FROM (
    SELECT b.person_id AS person FROM scope s JOIN bookings b ON b.desk_id = s.desk_id
    WHERE s.place = $6 AND b.status <> 'cancelled' AND b.period && tstzrange(s.lo, s.hi)
    UNION
    SELECT d.assigned_to FROM scope s JOIN desks d ON d.id = s.desk_id
    WHERE s.place = $6 AND d.assigned_to IS NOT NULL
) p
"""


async def people_behind(conn: asyncpg.Connection, query: Query, place: str) -> int:
    """How many distinct people booked a desk of ``place`` (an id at ``query.level``;
    ``''``: the shared zones at level agency) in the period, or hold one assigned."""
    sql = _PEOPLE.format(scope=_SCOPE.format(place=_PLACE[query.level]))
    return int(await conn.fetchval(sql, *_args(query), place))


def _bucket(query: Query, local: str) -> str:
    return _TRUNC[query.bucket].format(t=local)


def _args(query: Query) -> tuple[Any, ...]:
    return (query.first, query.last, query.building, query.floor, query.zone)


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _place(place: str | None) -> str | None:
    return place or None  # '' is the agency of shared zones


def _label(query: Query, start: datetime) -> str:
    if query.bucket in (Bucket.DAY, Bucket.WEEK):
        return start.date().isoformat()
    return start.isoformat(timespec="minutes")


async def utilisation(conn: asyncpg.Connection, query: Query) -> list[dict[str, Any]]:
    """Occupancy and booked shares, peak and average concurrency, SMG utilisation."""
    return [orjson.loads(body) for body in await _utilisation_rows(conn, query)]


async def utilisation_json(conn: asyncpg.Connection, query: Query) -> bytes:
    """The rows of :func:`utilisation` as one JSON array, rendered by PostgreSQL."""
    return b"[" + ",".join(await _utilisation_rows(conn, query)).encode() + b"]"


async def _utilisation_rows(conn: asyncpg.Connection, query: Query) -> list[str]:
    """Each row as JSON text: desks by day from the rendered rows, the rest computed."""
    async with _utilisation_statement(conn, query) as (sql, args):
        return [r[0] for r in await conn.fetch(sql, *args)]


async def utilisation_chunks(
    conn: asyncpg.Connection, query: Query, size: int = 5_000
) -> AsyncGenerator[list[str], None]:
    """The rows of :func:`utilisation_json` as JSON texts, ``size`` at a time, from a
    cursor: a year of a large campus's desks by day (about 1.8 million rows) is never
    held whole in memory."""
    statement = _utilisation_statement(conn, query, cursor=True)
    async with conn.transaction(), statement as (sql, args):
        cursor = await conn.cursor(sql, *args)
        while rows := await cursor.fetch(size):
            yield [r[0] for r in rows]


async def utilisation_size(conn: asyncpg.Connection, query: Query) -> int:
    """How many rows :func:`utilisation` gives at most: places in scope times buckets."""
    sql = f"SELECT count(DISTINCT place) FROM ({_SCOPE.format(place=_PLACE[query.level])}) s"
    places = int(await conn.fetchval(sql, *_args(query)))
    per_day = {Bucket.QUARTER: 96, Bucket.HOUR: 24, Bucket.DAY: 1}
    buckets = query.days * per_day[query.bucket] if query.bucket in per_day else query.days // 7 + 2
    return places * buckets


@contextlib.asynccontextmanager
async def _utilisation_statement(
    conn: asyncpg.Connection, query: Query, *, cursor: bool = False
) -> AsyncIterator[tuple[str, tuple[Any, ...]]]:
    """The statement giving :func:`utilisation`'s rows as JSON texts, and its arguments
    (for desks below a day, with the temporary table it reads: kept to the end of the
    transaction when a ``cursor`` reads the statement)."""
    if query.level is Level.DESK and query.bucket is Bucket.DAY:
        yield _DESK_DAY_ROWS.format(scope=_SCOPE.format(place="d.id")), _args(query)
        return
    parts = {"step": _INTERVAL[query.bucket], "label": _LABEL[query.bucket]}
    inner = _rollup_sql(query)
    if inner is not None:
        yield _UTILISATION.format(rows=inner, **parts), (*_args(query), query.level.value)
        return
    raw = _FROM_RAW_SLOTS.format(
        desk_slots=DESK_SLOTS, bucket=_bucket(query, "(s.slot AT TIME ZONE g.tz)")
    )
    async with _raw_ranges(conn, query, drop=not cursor):
        yield _UTILISATION.format(rows=raw, **parts), (query.first, query.last)


async def utilisation_computed(conn: asyncpg.Connection, query: Query) -> list[dict[str, Any]]:
    """Desks by day computed from the day rollup like every other level, not read from
    the rendered rows (what those must equal; the tests compare them)."""
    parts = {"step": _INTERVAL[query.bucket], "label": _LABEL[query.bucket]}
    sql = _UTILISATION.format(rows=_rollup_sql(query), **parts)
    rows = await conn.fetch(sql, *_args(query), query.level.value)
    return [orjson.loads(r[0]) for r in rows]


def _campus_wide(query: Query) -> None:
    if query.level is Level.AGENCY and (query.building or query.floor or query.zone):
        raise ValueError("level=agency is campus-wide: it takes no building, floor or zone")


def _rollup_sql(query: Query) -> str | None:
    """The sums per place and bucket from the day or slot rollups; ``None`` for desks
    below a day (computed from the raw tables)."""
    _campus_wide(query)
    scope = _SCOPE.format(place=_PLACE[query.level])
    if query.bucket in (Bucket.DAY, Bucket.WEEK):
        return _FROM_DAYS.format(scope=scope, bucket=_bucket(query, "a.day::timestamp"))
    if query.level is not Level.DESK:
        return _FROM_SLOTS.format(scope=scope, bucket=_bucket(query, "a.local_start"))
    return None


@contextlib.asynccontextmanager
async def _raw_ranges(
    conn: asyncpg.Connection, query: Query, *, drop: bool = True
) -> AsyncIterator[None]:
    """The desks in scope as ``_analytics_ranges``, for DESK_SLOTS, in a transaction;
    ``drop=False`` leaves the table to the end of the caller's transaction (a cursor
    still reading it)."""
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE _analytics_ranges ON COMMIT DROP AS {_SCOPE.format(place='d.id')}",
            *_args(query),
        )
        yield
        if drop:
            await conn.execute("DROP TABLE _analytics_ranges")


async def desk_slots_raw(conn: asyncpg.Connection, query: Query) -> list[asyncpg.Record]:
    """Desk sums below a day, computed from the raw tables (the benchmark's ceiling)."""
    bucket = _bucket(query, "(s.slot AT TIME ZONE g.tz)")
    async with _raw_ranges(conn, query):
        return list(await conn.fetch(_FROM_RAW_SLOTS.format(desk_slots=DESK_SLOTS, bucket=bucket)))


async def utilisation_over_period(conn: asyncpg.Connection, query: Query) -> list[dict[str, Any]]:
    """One row per place for the whole period (``bucket``: its first day), from the day
    rollup and rendered by the same ``analytics_utilisation_row`` as every bucket's, so
    frequency, occupancy rate and peak are the period's, not an average of buckets."""
    _campus_wide(query)
    rows = _FROM_DAYS.format(scope=_SCOPE.format(place=_PLACE[query.level]), bucket=_WHOLE_PERIOD)
    sql = _UTILISATION.format(rows=rows, step=f"{query.days} days", label="YYYY-MM-DD")
    found = await conn.fetch(sql, *_args(query), query.level.value)
    return [orjson.loads(r[0]) for r in found]


async def funnel(
    conn: asyncpg.Connection, query: Query, *, whole_period: bool = False
) -> list[dict[str, Any]]:
    """Bookings by local start: booked → checked in → occupied, no-shows, ghosts;
    ``whole_period``: one row per place for the period (``bucket``: its first day)."""
    sql = _FUNNEL.format(
        scope=_SCOPE.format(place=_PLACE[query.level]),
        bucket=_WHOLE_PERIOD if whole_period else _bucket(query, "u.local_start"),
    )
    return [
        {
            "place": _place(r["place"]),
            "bucket": _label(query, r["bucket"]),
            "booked": r["booked"],
            "checked_in": r["checked_in"],
            "occupied": r["occupied"],
            "no_shows": r["no_shows"],
            "no_show_rate": _ratio(r["no_shows"], r["booked"]),
            "ghost_bookings": r["ghost"],
        }
        for r in await conn.fetch(sql, *_args(query))
    ]


async def environment(conn: asyncpg.Connection, query: Query) -> list[dict[str, Any]]:
    """Average CO2 and temperature where environment sensors report (zone and above)."""
    sql = None if query.level is Level.DESK else _rollup_sql(query)
    if sql is None:
        raise ValueError("environment sensors report per zone: use level zone or above")
    rows = await conn.fetch(sql, *_args(query), query.level.value)
    return [
        {
            "place": _place(r["place"]),
            "bucket": _label(query, r["bucket"]),
            "co2_ppm": None if r["co2_ppm"] is None else round(r["co2_ppm"], 1),
            "co2_readings": r["co2_readings"],
            "temp_c": None if r["temp_c"] is None else round(r["temp_c"], 2),
            "temp_readings": r["temp_readings"],
        }
        for r in rows
        if r["co2_readings"] or r["temp_readings"]
    ]


async def no_shows_by_person(
    conn: asyncpg.Connection, first: date, last: date, building: str | None = None
) -> list[dict[str, Any]]:
    """Each person's bookings starting in the period and how many were no-shows."""
    rows = await conn.fetch(_NO_SHOWS, first, last, building)
    return [
        {
            "person": r["person"],
            "name": r["name"],
            "agency": r["agency"],
            "unit": r["unit"],
            "booked": r["booked"],
            "no_shows": r["no_shows"],
            "no_show_rate": _ratio(r["no_shows"], r["booked"]),
        }
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class ScopePlace:
    """A place whose figures may be asked for: its level and id, its name, the zone of
    a desk (which the desk level's query is filtered by) and its building's time zone
    (an agency's: its first zone's building's)."""

    level: Level
    id: str
    name: str
    zone_id: str | None
    tz: str


_PLACES = """
SELECT * FROM (
    SELECT 'building' AS level, b.id, b.name, NULL AS zone_id, b.tz, 1 AS o,
           ARRAY[b.id] AS within
    FROM buildings b
    UNION ALL
    SELECT 'floor', f.id, f.name, NULL, b.tz, 2, ARRAY[b.id, f.id]
    FROM floors f JOIN buildings b ON b.id = f.building_id
    UNION ALL
    SELECT 'zone', z.id, z.name, NULL, b.tz, 3, ARRAY[b.id, f.id, z.id]
    FROM zones z JOIN floors f ON f.id = z.floor_id JOIN buildings b ON b.id = f.building_id
    UNION ALL
    SELECT 'desk', d.id, d.name, z.id, b.tz, 4, ARRAY[b.id, f.id, z.id, d.id]
    FROM desks d JOIN zones z ON z.id = d.zone_id JOIN floors f ON f.id = z.floor_id
    JOIN buildings b ON b.id = f.building_id
    UNION ALL
    SELECT 'agency', z.agency, z.agency, NULL, min(b.tz), 5, ARRAY[z.agency]
    FROM zones z JOIN floors f ON f.id = z.floor_id JOIN buildings b ON b.id = f.building_id
    WHERE z.agency IS NOT NULL GROUP BY z.agency
) p
WHERE ($1::text IS NULL OR p.level = $1) AND ($2::text IS NULL OR p.id = $2)
  AND ($3::text IS NULL OR $3 = ANY (p.within))
ORDER BY p.o, p.within
"""


async def scope_places(
    conn: asyncpg.Connection,
    level: Level | None = None,
    place: str | None = None,
    *,
    within: str | None = None,
) -> list[ScopePlace]:
    """Every building, floor, zone, desk and agency (those ``level`` and ``place`` keep;
    ``within``: those in that building, floor or zone, or that place itself)."""
    rows = await conn.fetch(_PLACES, level.value if level else None, place, within)
    return [ScopePlace(Level(r["level"]), r["id"], r["name"], r["zone_id"], r["tz"]) for r in rows]
