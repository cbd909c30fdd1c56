"""The attendance signals ledger: capture from the ingest and the API.

Signals come from:

- badge taps, handed over by ``ikn_store.readings.write`` inside its transaction
  (``capture_from_staging``: one statement over the batch's ``staging_readings``);
  a tap also checks in the person's booking in that building that local day;
- a desk sensor showing occupied during its booking (one ``desk_occupied`` per booking);
- booking check-ins (app, sensor, badge): the ``bookings_attendance`` trigger;
- app check-in/check-out (``add_signal``).

Each signal is stored once (``UNIQUE (source, kind)``); inserting one marks its
person's local day dirty (trigger ``attendance_signals_dirty``), for
``ikn_store.attendance_days.recompute_dirty``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:  # the ingest imports this module: it needs no policy to capture
    from ikn_core.attendance.policy import Policy

_CAPTURE = """
WITH taps AS (
    SELECT s.device_id, s.stream, s.seq, s.ts, s.body->>'badge' AS token,
           coalesce(s.body->>'direction', 'in') AS direction, d.building_id
    FROM staging_readings s JOIN devices d ON d.id = s.device_id
    WHERE s.kind = 'badge_tap'
), known AS (
    SELECT t.*, b.person_id
    FROM taps t JOIN badges b ON b.token = t.token AND (b.revoked_at IS NULL OR t.ts < b.revoked_at)
), unknown_counted AS (
    INSERT INTO badge_unknown_taps AS u (device_id, day, taps)
    SELECT t.device_id, (t.ts AT TIME ZONE bd.tz)::date, count(*)
    FROM taps t JOIN buildings bd ON bd.id = t.building_id
    WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.device_id = t.device_id
                      AND k.stream = t.stream AND k.seq = t.seq)
    GROUP BY 1, 2
    ON CONFLICT (device_id, day) DO UPDATE SET taps = u.taps + EXCLUDED.taps
), badge_signals AS (
    INSERT INTO attendance_signals (person_id, kind, at, place_type, building_id, source)
    SELECT person_id, CASE WHEN direction = 'out' THEN 'badge_out' ELSE 'badge_in' END,
           ts, 'office', building_id, 'reading:' || device_id || '/' || stream || '/' || seq
    FROM known
    ON CONFLICT ON CONSTRAINT attendance_signals_once DO NOTHING
    RETURNING 1
), badge_check_in AS (
    UPDATE bookings bk
    SET status = 'checked_in', checked_in_at = hit.ts, check_in_signal = 'badge'
    FROM (SELECT b.id, min(k.ts) AS ts
          FROM known k
          JOIN buildings bd ON bd.id = k.building_id
          JOIN bookings b ON b.person_id = k.person_id AND b.status = 'booked'
               AND b.period && tstzrange(k.ts - interval '1 day', k.ts + interval '1 day')
               AND k.ts < upper(b.period)
               AND (k.ts AT TIME ZONE bd.tz)::date = (lower(b.period) AT TIME ZONE bd.tz)::date
          JOIN desks d ON d.id = b.desk_id
          JOIN zones z ON z.id = d.zone_id
          JOIN floors f ON f.id = z.floor_id AND f.building_id = k.building_id
          WHERE k.direction = 'in'
          GROUP BY b.id) hit
    WHERE bk.id = hit.id AND bk.status = 'booked'
    RETURNING 1
), occupied AS (
    INSERT INTO attendance_signals (person_id, kind, at, place_type, building_id, source)
    SELECT DISTINCT ON (b.id) b.person_id, 'desk_occupied', s.ts, 'office', f.building_id,
           'booking:' || b.id
    FROM staging_readings s
    JOIN devices d ON d.id = s.device_id AND d.desk_id IS NOT NULL
    JOIN bookings b ON b.desk_id = d.desk_id AND b.status IN ('booked', 'checked_in')
         AND s.ts >= lower(b.period) AND s.ts < upper(b.period)
    JOIN zones z ON z.id = d.zone_id
    JOIN floors f ON f.id = z.floor_id
    WHERE s.kind = 'desk_occupancy' AND (s.body->>'occupied')::boolean
    ORDER BY b.id, s.ts
    ON CONFLICT ON CONSTRAINT attendance_signals_once DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM taps) - (SELECT count(*) FROM known) AS unknown,
       (SELECT count(*) FROM badge_signals) AS badge,
       (SELECT count(*) FROM badge_check_in) AS checked_in,
       (SELECT count(*) FROM occupied) AS occupied
"""


@dataclass(frozen=True, slots=True)
class Captured:
    """What one ingest batch added to the ledger; ``unknown_badges`` counts taps of
    tokens nobody is enrolled with (counted, never an error)."""

    unknown_badges: int
    badge_signals: int
    bookings_checked_in: int
    desk_signals: int


async def capture_from_staging(conn: asyncpg.Connection) -> Captured:
    """Signals from the batch in ``staging_readings`` (call inside the ingest's transaction).

    Taps of tokens nobody is enrolled with are counted per reader and local day in
    ``badge_unknown_taps`` (as received: a redelivered tap counts again)."""
    row = await conn.fetchrow(_CAPTURE)
    assert row is not None
    return Captured(row["unknown"], row["badge"], row["checked_in"], row["occupied"])


@dataclass(frozen=True, slots=True)
class NewSignal:
    person_id: str
    kind: str
    at: datetime
    place_type: str
    source: str
    building_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    accuracy_m: float | None = None


async def add_signal(conn: asyncpg.Connection, signal: NewSignal, policy: Policy) -> int | None:
    """Store one signal (coordinates only when ``policy`` keeps them); its id, or None
    when the same (source, kind) was stored before."""
    keep = policy.stores_coordinates
    signal_id = await conn.fetchval(
        """INSERT INTO attendance_signals
               (person_id, kind, at, place_type, building_id, source, lat, lon, accuracy_m)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT ON CONSTRAINT attendance_signals_once DO NOTHING RETURNING id""",
        signal.person_id,
        signal.kind,
        signal.at,
        signal.place_type,
        signal.building_id,
        signal.source,
        signal.lat if keep else None,
        signal.lon if keep else None,
        signal.accuracy_m if keep else None,
    )
    return None if signal_id is None else int(signal_id)


@dataclass(frozen=True, slots=True)
class BuildingSite:
    id: str
    lat: float
    lon: float
    agency: str | None


async def located_buildings(conn: asyncpg.Connection) -> list[BuildingSite]:
    rows = await conn.fetch(
        "SELECT id, lat, lon, agency FROM buildings WHERE lat IS NOT NULL AND lon IS NOT NULL"
    )
    return [BuildingSite(r["id"], r["lat"], r["lon"], r["agency"]) for r in rows]


async def set_building_site(
    conn: asyncpg.Connection, building_id: str, lat: float, lon: float, agency: str | None
) -> None:
    await conn.execute(
        "UPDATE buildings SET lat = $2, lon = $3, agency = $4 WHERE id = $1",
        building_id,
        lat,
        lon,
        agency,
    )


async def purge_coordinates(conn: asyncpg.Connection, before: datetime) -> int:
    """Forget the coordinates of signals older than ``before`` (location retention)."""
    status = await conn.execute(
        """UPDATE attendance_signals SET lat = NULL, lon = NULL, accuracy_m = NULL
           WHERE lat IS NOT NULL AND at < $1""",
        before,
    )
    return int(status.rsplit(" ", 1)[-1])


def retention_cutoff(now: datetime, policy: Policy) -> datetime:
    """Coordinates taken before this are purged (all of them when none are kept)."""
    days = policy.location_retention_days
    return now if days is None else now - timedelta(days=days)


async def signal_details(conn: asyncpg.Connection, ids: list[str]) -> list[dict[str, object]]:
    """The ledger rows behind a record's signal ids (``s17``): what, when, where, from what."""
    numbers = [int(i[1:]) for i in ids if i.startswith("s") and i[1:].isdigit()]
    rows = await conn.fetch(
        """SELECT id, kind, at, place_type, building_id, source, received_at
           FROM attendance_signals WHERE id = ANY($1::bigint[]) ORDER BY at, id""",
        numbers,
    )
    return [
        {
            "id": f"s{r['id']}",
            "kind": r["kind"],
            "at": r["at"].isoformat(),
            "place_type": r["place_type"],
            "building": r["building_id"],
            "source": r["source"],
            "received_at": r["received_at"].isoformat(),
        }
        for r in rows
    ]
