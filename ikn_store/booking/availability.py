"""Desk availability for a time window: every desk under some places, whether an
active booking overlaps the window, and what its sensor says now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ikn_store.spaces import DeskOnPlan


@dataclass(frozen=True, slots=True)
class DeskAvailability(DeskOnPlan):
    booked: bool
    occupied: bool | None
    sensor_online: bool | None
    disabled: bool = False  # nobody may book it
    assigned_to: str | None = None  # only this person may book it


async def availability(
    conn: asyncpg.Connection,
    start: datetime,
    end: datetime,
    *,
    building: str | None = None,
    floor: str | None = None,
    zone: str | None = None,
    equipment: tuple[str, ...] = (),
) -> list[DeskAvailability]:
    """Every desk under the given places with all of ``equipment``, and whether an
    active booking overlaps [start, end)."""
    rows = await conn.fetch(
        """SELECT d.id AS desk_id, d.name, b.id AS building_id, f.id AS floor_id,
                   z.id AS zone_id, d.x, d.y, d.equipment, b.tz,
                   EXISTS (SELECT 1 FROM bookings k
                           WHERE k.desk_id = d.id AND booking_active(k.status)
                             AND k.period && tstzrange($1, $2, '[)')) AS booked,
                   s.occupied, ds.online AS sensor_online, d.disabled, d.assigned_to
            FROM desks d
            JOIN zones z ON z.id = d.zone_id
            JOIN floors f ON f.id = z.floor_id
            JOIN buildings b ON b.id = f.building_id
            LEFT JOIN desk_state s ON s.desk_id = d.id
            LEFT JOIN devices dev ON dev.desk_id = d.id AND dev.kind = 'desk_sensor'
            LEFT JOIN device_status ds ON ds.device_id = dev.id
            WHERE ($3::text IS NULL OR b.id = $3)
              AND ($4::text IS NULL OR f.id = $4)
              AND ($5::text IS NULL OR z.id = $5)
              AND d.equipment @> $6::text[]
            ORDER BY f.level, z.id, d.id""",
        start,
        end,
        building,
        floor,
        zone,
        list(equipment),
    )
    return [DeskAvailability(**{**dict(r), "equipment": tuple(r["equipment"])}) for r in rows]
