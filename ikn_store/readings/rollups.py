"""Incremental analytics rollups: recompute what was marked dirty.

Dirty spans come from the ingest's write transaction (``analytics_mark_readings()``,
a step of ``ingest_derive()``, for readings; :func:`mark_dirty` calls the same step)
and from the bookings triggers ``analytics_bookings_dirty`` and
``analytics_bookings_inserted`` (SQL sources in ``ikn_store/sql/analytics/``).

``refresh`` takes every dirty span out of ``analytics_dirty``, widens it to whole
local days of the zone's building (a day's figures are recomputed whole), and
recomputes ``analytics_slots`` and ``analytics_days`` of those zones and of the floors,
buildings and agencies above them, and ``analytics_booking_use``, for exactly those
days, from the raw readings and bookings, one local day at a time (bounded work per
statement). A late reading is
just another dirty span, so it corrects a bucket that was already rolled up.

The state a desk sensor reports holds until its next reading, but at most two
expected intervals (``devices.expected_interval_s``): after that the sensor counts
as dead and the time counts as not live.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import asyncpg

log = logging.getLogger(__name__)

LOCK_KEY = 0x494B4E524F4C4C55  # "IKNROLLU": one refresher at a time across API replicas
BACKFILL_DAYS = 7  # a refresh of this many days or more ends with ANALYZE

# The dirty zone-days: each dirty span widened to the local days of its building.
_TAKE_DIRTY = """
CREATE TEMP TABLE _analytics_days ON COMMIT DROP AS
WITH taken AS (DELETE FROM analytics_dirty RETURNING desk_id, zone_id, span),
spans AS (
    SELECT coalesce(t.zone_id, d.zone_id) AS zone_id, t.span
    FROM taken t LEFT JOIN desks d ON d.id = t.desk_id
)
SELECT DISTINCT s.zone_id, b.tz, day::date AS day
FROM spans s
JOIN zones z ON z.id = s.zone_id
JOIN floors f ON f.id = z.floor_id
JOIN buildings b ON b.id = f.building_id
CROSS JOIN LATERAL generate_series(
    date_trunc('day', lower(s.span) AT TIME ZONE b.tz),
    date_trunc('day', (upper(s.span) - interval '1 microsecond') AT TIME ZONE b.tz),
    interval '1 day') AS day
WHERE NOT isempty(s.span)
"""

# Per desk and 15-minute slot over the ranges in ``_analytics_ranges`` (desk_id, lo, hi):
# seconds with a live sensor, occupied, booked, and occupied while booked.
DESK_SLOTS = """
WITH readings_in AS (
    SELECT g.desk_id, g.lo, g.hi, x.ts, (x.body->>'occupied')::boolean AS occupied,
           make_interval(secs => 2 * d.expected_interval_s) AS gap
    FROM _analytics_ranges g
    JOIN devices d ON d.desk_id = g.desk_id AND d.kind = 'desk_sensor'
    JOIN readings x ON x.device_id = d.id AND x.kind = 'desk_occupancy'
     AND x.ts >= g.lo - make_interval(secs => 2 * d.expected_interval_s) AND x.ts < g.hi
),
iv AS (
    SELECT desk_id, occupied, greatest(ts, lo) AS t0,
           least(lead(ts) OVER (PARTITION BY desk_id, lo ORDER BY ts), ts + gap, hi) AS t1
    FROM readings_in
),
bk AS (
    SELECT g.desk_id, greatest(lower(b.period), g.lo) AS t0,
           least(upper(b.period), coalesce(b.ended_at, upper(b.period)), g.hi) AS t1
    FROM _analytics_ranges g
    JOIN bookings b ON b.desk_id = g.desk_id AND b.period && tstzrange(g.lo, g.hi)
),
parts AS (
    SELECT iv.desk_id, s.slot, s.secs AS live,
           CASE WHEN iv.occupied THEN s.secs ELSE 0 END AS occ, 0::float8 AS bkd, 0::float8 AS ob
    FROM iv CROSS JOIN LATERAL analytics_split(iv.t0, iv.t1) s
    UNION ALL
    SELECT bk.desk_id, s.slot, 0, 0, s.secs, 0
    FROM bk CROSS JOIN LATERAL analytics_split(bk.t0, bk.t1) s
    UNION ALL
    SELECT iv.desk_id, s.slot, 0, 0, 0, s.secs
    FROM iv JOIN bk ON bk.desk_id = iv.desk_id AND iv.occupied
    CROSS JOIN LATERAL analytics_split(greatest(iv.t0, bk.t0), least(iv.t1, bk.t1)) s
)
SELECT desk_id, slot, sum(live) AS live_s, sum(occ) AS occupied_s, sum(bkd) AS booked_s,
       sum(ob) AS occupied_booked_s
FROM parts GROUP BY desk_id, slot
"""

_RANGES_OF_DAY = """
CREATE TEMP TABLE _analytics_ranges ON COMMIT DROP AS
SELECT d.id AS desk_id, a.zone_id, a.tz, a.day,
       (a.day::timestamp AT TIME ZONE a.tz) AS lo,
       ((a.day + 1)::timestamp AT TIME ZONE a.tz) AS hi
FROM _analytics_days a JOIN desks d ON d.zone_id = a.zone_id
WHERE a.day = $1
"""

_SLOTS_OF_DAY = f"""
CREATE TEMP TABLE _analytics_slots ON COMMIT DROP AS {DESK_SLOTS}
"""

# The places whose day is recomputed: the dirty zones and every place above them, with
# all the zones of each (``_analytics_members``).
_PLACES_OF_DAY = """
CREATE TEMP TABLE _analytics_places ON COMMIT DROP AS
SELECT DISTINCT p.level, p.place
FROM analytics_zone_places p JOIN _analytics_days a ON a.zone_id = p.zone_id AND a.day = $1
"""

_MEMBERS_OF_DAY = """
CREATE TEMP TABLE _analytics_members ON COMMIT DROP AS
SELECT m.level, m.place, m.zone_id
FROM analytics_zone_places m JOIN _analytics_places p ON p.level = m.level AND p.place = m.place
WHERE m.level <> 'zone'
"""

_SLOTS_GONE = """
DELETE FROM analytics_slots s USING _analytics_places p
WHERE s.level = p.level AND s.place = p.place
  AND s.local_start >= $1::date::timestamp AND s.local_start < ($1::date + 1)::timestamp
"""

_ZONE_SLOTS = """
WITH desk_part AS (
    SELECT g.zone_id AS place, s.slot AT TIME ZONE g.tz AS local_start,
           count(*) FILTER (WHERE s.live_s > 0) AS desks_live,
           count(*) FILTER (WHERE s.occupied_s > 0) AS desks_used,
           sum(s.live_s) AS live_s, sum(s.occupied_s) AS occupied_s, sum(s.booked_s) AS booked_s,
           sum(s.occupied_booked_s) AS occupied_booked_s
    FROM _analytics_slots s JOIN _analytics_ranges g USING (desk_id)
    GROUP BY 1, 2
),
env_part AS (
    SELECT a.zone_id AS place,
           date_bin('15 minutes', x.ts, timestamptz '2000-01-01 00:00Z') AT TIME ZONE a.tz
               AS local_start,
           sum((x.body->>'co2_ppm')::float8) AS co2_sum, count(x.body->>'co2_ppm') AS co2_n,
           sum((x.body->>'temp_c')::float8) AS temp_sum, count(x.body->>'temp_c') AS temp_n
    FROM _analytics_days a
    JOIN devices d ON d.zone_id = a.zone_id AND d.kind = 'environment'
    JOIN readings x ON x.device_id = d.id AND x.kind = 'environment'
     AND x.ts >= (a.day::timestamp AT TIME ZONE a.tz)
     AND x.ts < ((a.day + 1)::timestamp AT TIME ZONE a.tz)
    WHERE a.day = $1
    GROUP BY 1, 2
)
INSERT INTO analytics_slots
SELECT 'zone', place, local_start, coalesce(p.desks_live, 0), coalesce(p.desks_used, 0),
       coalesce(p.live_s, 0), coalesce(p.occupied_s, 0), coalesce(p.booked_s, 0),
       coalesce(p.occupied_booked_s, 0), coalesce(e.co2_sum, 0), coalesce(e.co2_n, 0),
       coalesce(e.temp_sum, 0), coalesce(e.temp_n, 0)
FROM desk_part p FULL JOIN env_part e USING (place, local_start)
"""

# Floors, buildings and agencies: the sum of their zones' slots (all of them, not only
# the dirty ones) over the local day.
_UPPER_SLOTS = """
INSERT INTO analytics_slots
SELECT p.level, p.place, s.local_start, sum(s.desks_live), sum(s.desks_used), sum(s.live_s),
       sum(s.occupied_s), sum(s.booked_s), sum(s.occupied_booked_s), sum(s.co2_sum),
       sum(s.co2_n), sum(s.temp_sum), sum(s.temp_n)
FROM _analytics_members p
JOIN analytics_slots s ON s.level = 'zone' AND s.place = p.zone_id
 AND s.local_start >= $1::date::timestamp AND s.local_start < ($1::date + 1)::timestamp
GROUP BY p.level, p.place, s.local_start
"""

_DAYS_GONE = """
DELETE FROM analytics_days a
USING (SELECT level, place FROM _analytics_places
       UNION ALL SELECT DISTINCT 'desk', desk_id FROM _analytics_ranges) p
WHERE a.level = p.level AND a.place = p.place AND a.day = $1
"""

_PLACE_DAYS = """
INSERT INTO analytics_days
SELECT s.level, s.place, $1::date, count(*) FILTER (WHERE s.desks_live > 0),
       count(*) FILTER (WHERE s.desks_used > 0),
       coalesce(sum(s.desks_used::float8 / s.desks_live) FILTER (WHERE s.desks_used > 0), 0),
       max(s.desks_used), sum(s.live_s), sum(s.occupied_s), sum(s.booked_s),
       sum(s.occupied_booked_s), sum(s.co2_sum), sum(s.co2_n), sum(s.temp_sum), sum(s.temp_n)
FROM _analytics_places p
JOIN analytics_slots s ON s.level = p.level AND s.place = p.place
 AND s.local_start >= $1::date::timestamp AND s.local_start < ($1::date + 1)::timestamp
GROUP BY s.level, s.place
"""

_DESK_DAYS = """
INSERT INTO analytics_days
SELECT 'desk', s.desk_id, $1::date, count(*) FILTER (WHERE s.live_s > 0),
       count(*) FILTER (WHERE s.occupied_s > 0), count(*) FILTER (WHERE s.occupied_s > 0),
       max(CASE WHEN s.occupied_s > 0 THEN 1 ELSE 0 END), sum(s.live_s), sum(s.occupied_s),
       sum(s.booked_s), sum(s.occupied_booked_s), 0, 0, 0, 0
FROM _analytics_slots s
GROUP BY s.desk_id
"""

# What each booking touching the dirty days saw: live and occupied seconds while booked.
_BOOKING_USE = """
WITH bk AS (
    SELECT DISTINCT b.id, b.desk_id, lower(b.period) AT TIME ZONE g.tz AS local_start, b.status,
           b.checked_in_at IS NOT NULL AS checked_in, lower(b.period) AS t0,
           least(upper(b.period), coalesce(b.ended_at, upper(b.period))) AS t1
    FROM bookings b JOIN _analytics_ranges g
      ON g.desk_id = b.desk_id AND b.period && tstzrange(g.lo, g.hi)
),
seen AS (
    SELECT bk.id, bk.t0, bk.t1, x.ts, (x.body->>'occupied')::boolean AS occupied,
           lead(x.ts) OVER (PARTITION BY bk.id ORDER BY x.ts) AS next_ts,
           make_interval(secs => 2 * d.expected_interval_s) AS gap
    FROM bk
    JOIN devices d ON d.desk_id = bk.desk_id AND d.kind = 'desk_sensor'
    JOIN readings x ON x.device_id = d.id AND x.kind = 'desk_occupancy'
     AND x.ts >= bk.t0 - make_interval(secs => 2 * d.expected_interval_s) AND x.ts < bk.t1
),
spans AS (
    SELECT id, occupied,
           greatest(extract(epoch FROM least(coalesce(next_ts, ts + gap), ts + gap, t1)
                                       - greatest(ts, t0)), 0)::float8 AS secs
    FROM seen
)
INSERT INTO analytics_booking_use
SELECT bk.id, bk.desk_id, bk.local_start, bk.status, bk.checked_in, coalesce(sum(s.secs), 0),
       coalesce(sum(s.secs) FILTER (WHERE s.occupied), 0)
FROM bk LEFT JOIN spans s ON s.id = bk.id
GROUP BY bk.id, bk.desk_id, bk.local_start, bk.status, bk.checked_in
ON CONFLICT (booking_id) DO UPDATE
SET desk_id = EXCLUDED.desk_id, local_start = EXCLUDED.local_start, status = EXCLUDED.status,
    checked_in = EXCLUDED.checked_in, live_s = EXCLUDED.live_s, occupied_s = EXCLUDED.occupied_s
"""

# Each desk's rendered utilisation row of the day (analytics_desk_row), from its day rollup.
_DESK_ROWS_GONE = """
DELETE FROM analytics_desk_rows r USING (SELECT DISTINCT desk_id FROM _analytics_ranges) g
WHERE r.desk_id = g.desk_id AND r.day = $1
"""

_DESK_ROWS = """
INSERT INTO analytics_desk_rows
SELECT a.place, a.day, analytics_desk_row(a)
FROM analytics_days a JOIN (SELECT DISTINCT desk_id FROM _analytics_ranges) g
  ON a.level = 'desk' AND a.place = g.desk_id AND a.day = $1
"""

# Bookings deleted since (their desk's day was marked dirty by the delete).
_BOOKINGS_GONE = """
DELETE FROM analytics_booking_use u USING (SELECT DISTINCT desk_id, day FROM _analytics_ranges) g
WHERE u.desk_id = g.desk_id AND u.local_start >= g.day::timestamp
  AND u.local_start < (g.day + 1)::timestamp
  AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.id = u.booking_id)
"""


@dataclass(frozen=True, slots=True)
class Refreshed:
    zone_days: int
    days: int


async def refresh(conn: asyncpg.Connection) -> Refreshed | None:
    """Recompute what is dirty, in one transaction; ``None`` when another refresher runs."""
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
            return None
        await conn.execute("SET LOCAL jit = off")  # compiling costs more than these queries
        await conn.execute(_TAKE_DIRTY)
        zone_days = await conn.fetchval("SELECT count(*) FROM _analytics_days")
        days = [r["day"] for r in await conn.fetch("SELECT DISTINCT day FROM _analytics_days")]
        for day in sorted(days):
            await _refresh_day(conn, day)
        await conn.execute("DROP TABLE _analytics_days")
    if len(days) >= BACKFILL_DAYS:  # fresh statistics, so the planner sees the new rows
        await conn.execute(
            "ANALYZE analytics_slots, analytics_days, analytics_desk_rows, analytics_booking_use"
        )
    return Refreshed(zone_days=int(zone_days), days=len(days))


async def mark_dirty(conn: asyncpg.Connection, summary_json: str) -> None:
    """Mark what a batch of readings changes, in the caller's transaction, from its
    summary (``ikn_store.readings.rows.summarise``): the ingest's own step,
    ``analytics_mark_readings()``, which ``ingest_derive()`` calls for every batch."""
    await conn.execute("SELECT analytics_mark_readings($1::json)", summary_json)


async def _refresh_day(conn: asyncpg.Connection, day: date) -> None:
    await conn.execute(_RANGES_OF_DAY, day)
    await conn.execute(_SLOTS_OF_DAY)
    await conn.execute(_PLACES_OF_DAY, day)
    await conn.execute(_MEMBERS_OF_DAY)
    await conn.execute("ANALYZE _analytics_ranges, _analytics_slots, _analytics_members")
    await conn.execute(_SLOTS_GONE, day)
    await conn.execute(_ZONE_SLOTS, day)
    await conn.execute(_UPPER_SLOTS, day)
    await conn.execute(_DAYS_GONE, day)
    await conn.execute(_PLACE_DAYS, day)
    await conn.execute(_DESK_DAYS, day)
    await conn.execute(_DESK_ROWS_GONE, day)
    await conn.execute(_DESK_ROWS, day)
    await conn.execute(_BOOKINGS_GONE)
    await conn.execute(_BOOKING_USE)
    await conn.execute(
        "DROP TABLE _analytics_slots, _analytics_ranges, _analytics_places, _analytics_members"
    )
