"""The attendance signals ledger: capture from the ingest and the API.

Signals come from:

- badge taps, handed over by ``ikn_store.readings.rows.write`` inside its transaction
  (one statement over the batch's taps in ``staging_readings``: the step
  ``attendance_badge_taps()`` of the ingest's ``ingest_derive()``), only from a badge
  reader at a door (placed at no desk); a tap received before its booking ended also
  checks in the person's booking in that building that local day;
- a desk sensor showing occupied during its booking (one ``desk_occupied`` per booking,
  ``attendance_desk_occupied()``);
- booking check-ins (app, sensor, badge): the ``bookings_attendance`` trigger;
- app check-in/check-out (``add_app_signal``: one a minute per person, kind and place);
- a door's rotating code scanned (``door_qr``, ``ikn_service.attendance.door_check_in``:
  one per person and code).

Each signal is stored once (``UNIQUE (source, kind)``); inserting one marks its
person's local day dirty (trigger ``attendance_signals_dirty``), for
``ikn_store.attendance.days.recompute_dirty``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import asyncpg

if TYPE_CHECKING:  # the ingest imports this module: it needs no policy to capture
    from ikn_core.attendance.policy import Policy


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
    also_within: tuple[str, ...] = ()  # other buildings whose geofence held it
    received_at: datetime | None = None  # None: now (one queued offline: its receipt)


async def add_signal(conn: asyncpg.Connection, signal: NewSignal, policy: Policy) -> int | None:
    """Store one signal (coordinates only when ``policy`` keeps them); its id, or None
    when the same (source, kind) was stored before."""
    keep = policy.stores_coordinates
    signal_id = await conn.fetchval(
        """INSERT INTO attendance_signals
               (person_id, kind, at, place_type, building_id, source, lat, lon, accuracy_m,
                also_within, received_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, coalesce($11, now()))
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
        list(signal.also_within),
        signal.received_at,
    )
    return None if signal_id is None else int(signal_id)


async def signal_at(conn: asyncpg.Connection, source: str, kind: str) -> datetime | None:
    """When the signal of ``source`` and ``kind`` happened (None: there is none)."""
    at: datetime | None = await conn.fetchval(
        "SELECT at FROM attendance_signals WHERE source = $1 AND kind = $2", source, kind
    )
    return at


async def first_signal(
    conn: asyncpg.Connection, person_id: str, kind: str, building_id: str, since: datetime
) -> datetime | None:
    """When the person's first signal of ``kind`` at the building since ``since`` was."""
    at: datetime | None = await conn.fetchval(
        """SELECT min(at) FROM attendance_signals
           WHERE person_id = $1 AND kind = $2 AND building_id = $3 AND at >= $4""",
        person_id,
        kind,
        building_id,
        since,
    )
    return at


APP_REPEAT = timedelta(minutes=1)  # an app signal repeated within it is the same signal


@dataclass(frozen=True, slots=True)
class StoredSignal:
    id: int
    at: datetime
    building_id: str | None
    also_within: tuple[str, ...]
    coordinates_stored: bool
    new: bool  # False: the same person, kind and place had one within APP_REPEAT


async def add_app_signal(
    conn: asyncpg.Connection, signal: NewSignal, policy: Policy
) -> StoredSignal:
    """An app check-in or check-out, idempotent: when the person sent the same kind for
    the same place (place type and building) within ``APP_REPEAT`` before
    ``signal.at``, that signal, and nothing is stored (so no day is recomputed)."""
    async with conn.transaction():
        # one person's app signals one at a time, so two quick taps cannot both be new
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            "attendance-app-signal:" + signal.person_id,
        )
        row = await conn.fetchrow(
            """SELECT id, at, building_id, also_within, lat IS NOT NULL AS coordinates
               FROM attendance_signals
               WHERE person_id = $1 AND kind = $2 AND place_type = $3
                 AND building_id IS NOT DISTINCT FROM $4 AND at > $5 AND at <= $6
               ORDER BY at DESC LIMIT 1""",
            signal.person_id,
            signal.kind,
            signal.place_type,
            signal.building_id,
            signal.at - APP_REPEAT,
            signal.at,
        )
        if row is not None:
            also = tuple(row["also_within"])
            return StoredSignal(
                row["id"], row["at"], row["building_id"], also, row["coordinates"], False
            )
        signal_id = await add_signal(conn, signal, policy)
    assert signal_id is not None  # a new uuid source: never stored before
    coordinates = policy.stores_coordinates and signal.lat is not None
    return StoredSignal(
        signal_id, signal.at, signal.building_id, signal.also_within, coordinates, True
    )


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


async def signal_details(
    conn: asyncpg.Connection, ids: list[str], zone: ZoneInfo
) -> list[dict[str, object]]:
    """The ledger rows behind a record's signal ids (``s17``): what, when, where, from
    what; times in ``zone`` (the person's)."""
    numbers = [int(i[1:]) for i in ids if i.startswith("s") and i[1:].isdigit()]
    rows = await conn.fetch(
        """SELECT id, kind, at, place_type, building_id, also_within, source, received_at
           FROM attendance_signals WHERE id = ANY($1::bigint[]) ORDER BY at, id""",
        numbers,
    )
    return [
        {
            "id": f"s{r['id']}",
            "kind": r["kind"],
            "at": r["at"].astimezone(zone).isoformat(),
            "place_type": r["place_type"],
            "building": r["building_id"],
            "also_within": list(r["also_within"]),
            "source": r["source"],
            "received_at": r["received_at"].astimezone(zone).isoformat(),
        }
        for r in rows
    ]
