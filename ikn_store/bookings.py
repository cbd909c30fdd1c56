"""Bookings in PostgreSQL.

The exclusion constraints of migration 0003 are the single source of truth for
"never twice": the insert either wins or fails, atomically. Their violations are
translated here into the domain's ``DeskAlreadyBooked`` / ``PersonAlreadyBooked``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from ikn_core.booking import (
    BookingContended,
    BookingNotActive,
    BookingNotFound,
    BookingRules,
    BookingStatus,
    CheckInSignal,
    DeskAlreadyBooked,
    IdempotencyKeyReused,
    PersonAlreadyBooked,
    UnknownDesk,
    UnknownPerson,
)

ACTIVE_SQL = "('booked', 'checked_in')"


@dataclass(frozen=True, slots=True)
class Booking:
    id: UUID
    desk_id: str
    person_id: str
    start: datetime
    end: datetime
    status: BookingStatus
    checked_in_at: datetime | None
    check_in_signal: CheckInSignal | None
    created_by: str
    created_at: datetime
    tz: str  # the desk's building's zone


@dataclass(frozen=True, slots=True)
class DeskPlace:
    """A desk with its building's zone and booking rules."""

    desk_id: str
    building_id: str
    tz: str
    rules: BookingRules


_SELECT = """
    SELECT k.id, k.desk_id, k.person_id, lower(k.period) AS start, upper(k.period) AS "end",
           k.status, k.checked_in_at, k.check_in_signal, k.created_by, k.created_at,
           k.idempotency_key, b.tz
    FROM bookings k
    JOIN desks d ON d.id = k.desk_id
    JOIN zones z ON z.id = d.zone_id
    JOIN floors f ON f.id = z.floor_id
    JOIN buildings b ON b.id = f.building_id
"""


def _booking(row: asyncpg.Record) -> Booking:
    signal = row["check_in_signal"]
    return Booking(
        id=row["id"],
        desk_id=row["desk_id"],
        person_id=row["person_id"],
        start=row["start"],
        end=row["end"],
        status=BookingStatus(row["status"]),
        checked_in_at=row["checked_in_at"],
        check_in_signal=CheckInSignal(signal) if signal else None,
        created_by=row["created_by"],
        created_at=row["created_at"],
        tz=row["tz"],
    )


async def desk_place(conn: asyncpg.Connection, desk_id: str) -> DeskPlace:
    row = await conn.fetchrow(
        """SELECT d.id, b.id AS building_id, b.tz, r.max_days_ahead, r.min_minutes,
                  r.max_minutes, r.opens_minute, r.closes_minute
           FROM desks d
           JOIN zones z ON z.id = d.zone_id
           JOIN floors f ON f.id = z.floor_id
           JOIN buildings b ON b.id = f.building_id
           LEFT JOIN booking_rules r ON r.building_id = b.id
           WHERE d.id = $1""",
        desk_id,
    )
    if row is None:
        raise UnknownDesk(f"no desk {desk_id!r}")
    names = ("max_days_ahead", "min_minutes", "max_minutes", "opens_minute", "closes_minute")
    overrides = {n: row[n] for n in names if row[n] is not None}
    return DeskPlace(row["id"], row["building_id"], row["tz"], BookingRules(**overrides))


async def set_rules(conn: asyncpg.Connection, building_id: str, rules: BookingRules) -> None:
    await conn.execute(
        """INSERT INTO booking_rules (building_id, max_days_ahead, min_minutes, max_minutes,
                                      opens_minute, closes_minute)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (building_id) DO UPDATE SET max_days_ahead = EXCLUDED.max_days_ahead,
               min_minutes = EXCLUDED.min_minutes, max_minutes = EXCLUDED.max_minutes,
               opens_minute = EXCLUDED.opens_minute, closes_minute = EXCLUDED.closes_minute""",
        building_id,
        rules.max_days_ahead,
        rules.min_minutes,
        rules.max_minutes,
        rules.opens_minute,
        rules.closes_minute,
    )


async def _by_key(conn: asyncpg.Connection, created_by: str, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        _SELECT + " WHERE k.created_by = $1 AND k.idempotency_key = $2", created_by, key
    )


def _replay(
    row: asyncpg.Record, desk_id: str, person_id: str, start: datetime, end: datetime
) -> Booking:
    same = (row["desk_id"], row["person_id"], row["start"], row["end"]) == (
        desk_id,
        person_id,
        start,
        end,
    )
    if not same:
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different booking")
    return _booking(row)


_INSERT = """
    WITH k AS (
        INSERT INTO bookings (desk_id, person_id, period, created_by, idempotency_key)
        SELECT $1, $2, tstzrange($3, $4, '[)'), $5, $6
        FROM (SELECT booking_lock($1, $2)) AS queued  -- see migration 0003
        RETURNING *)
    SELECT k.id, k.desk_id, k.person_id, lower(k.period) AS start,
           upper(k.period) AS "end", k.status, k.checked_in_at, k.check_in_signal,
           k.created_by, k.created_at, b.tz
    FROM k
    JOIN desks d ON d.id = k.desk_id
    JOIN zones z ON z.id = d.zone_id
    JOIN floors f ON f.id = z.floor_id
    JOIN buildings b ON b.id = f.building_id"""

# booking_lock() queues conflicting bookers, so they cannot deadlock each other; a
# deadlock with some other writer (raw SQL) aborts one side, and its retry sees the
# winner committed and gets the plain exclusion violation.
DEADLOCK_RETRIES = 10


async def book(
    conn: asyncpg.Connection,
    *,
    desk_id: str,
    person_id: str,
    start: datetime,
    end: datetime,
    created_by: str,
    idempotency_key: str | None = None,
) -> tuple[Booking, bool]:
    """Book atomically; return the booking and whether it was created now (False: a replay).

    Call it outside a transaction: each attempt is its own statement.
    """
    if idempotency_key is not None:
        existing = await _by_key(conn, created_by, idempotency_key)
        if existing is not None:
            return _replay(existing, desk_id, person_id, start, end), False
    args = (desk_id, person_id, start, end, created_by, idempotency_key)
    for _ in range(DEADLOCK_RETRIES):
        try:
            row = await conn.fetchrow(_INSERT, *args)
        except asyncpg.DeadlockDetectedError:
            continue
        except asyncpg.UniqueViolationError as exc:  # the same key, committed meanwhile
            assert idempotency_key is not None, exc
            existing = await _by_key(conn, created_by, idempotency_key)
            if existing is None:
                raise
            return _replay(existing, desk_id, person_id, start, end), False
        except asyncpg.ExclusionViolationError as exc:
            if idempotency_key is not None:
                # A concurrent request with the same key may have won the race.
                existing = await _by_key(conn, created_by, idempotency_key)
                if existing is not None:
                    return _replay(existing, desk_id, person_id, start, end), False
            if exc.constraint_name == "bookings_person_no_overlap":
                raise PersonAlreadyBooked(
                    f"{person_id} already holds a booking overlapping this time"
                ) from exc
            raise DeskAlreadyBooked(f"desk {desk_id} is already booked for this time") from exc
        except asyncpg.ForeignKeyViolationError as exc:
            if exc.constraint_name == "bookings_desk_id_fkey":
                raise UnknownDesk(f"no desk {desk_id!r}") from exc
            raise UnknownPerson(f"no person {person_id!r} or {created_by!r}") from exc
        assert row is not None
        return _booking(row), True
    raise BookingContended(f"desk {desk_id}: too many concurrent conflicting requests; retry")


async def get_booking(conn: asyncpg.Connection, booking_id: UUID) -> Booking:
    row = await conn.fetchrow(_SELECT + " WHERE k.id = $1", booking_id)
    if row is None:
        raise BookingNotFound(f"no booking {booking_id}")
    return _booking(row)


async def list_bookings(
    conn: asyncpg.Connection,
    person_id: str,
    *,
    since: datetime | None = None,
    include_ended: bool = False,
    limit: int = 500,
) -> list[Booking]:
    """A person's bookings that end after ``since`` (all when None), oldest first."""
    rows = await conn.fetch(
        _SELECT
        + f""" WHERE k.person_id = $1
               AND ($2::timestamptz IS NULL OR upper(k.period) > $2)
               AND ($3 OR k.status IN {ACTIVE_SQL})
             ORDER BY lower(k.period), k.id LIMIT $4""",
        person_id,
        since,
        include_ended,
        limit,
    )
    return [_booking(r) for r in rows]


async def cancel(conn: asyncpg.Connection, booking_id: UUID) -> Booking:
    """Cancel an active booking; its desk and person are free again at once."""
    row = await conn.fetchrow(
        f"""UPDATE bookings SET status = 'cancelled', ended_at = now()
            WHERE id = $1 AND status IN {ACTIVE_SQL} RETURNING id""",
        booking_id,
    )
    booking = await get_booking(conn, booking_id)
    if row is None:
        raise BookingNotActive(f"booking {booking_id} is {booking.status}")
    return booking


async def check_in(
    conn: asyncpg.Connection, booking_id: UUID, signal: CheckInSignal, at: datetime
) -> Booking:
    """Mark a booked booking checked in by ``signal``; checking in twice keeps the first."""
    await conn.execute(
        """UPDATE bookings SET status = 'checked_in', checked_in_at = $2, check_in_signal = $3
           WHERE id = $1 AND status = 'booked'""",
        booking_id,
        at,
        str(signal),
    )
    booking = await get_booking(conn, booking_id)
    if booking.status not in (BookingStatus.BOOKED, BookingStatus.CHECKED_IN):
        raise BookingNotActive(f"booking {booking_id} is {booking.status}")
    return booking


@dataclass(frozen=True, slots=True)
class DeskAvailability:
    desk_id: str
    name: str
    building_id: str
    floor_id: str
    zone_id: str
    x: float
    y: float
    equipment: tuple[str, ...]
    tz: str
    booked: bool
    occupied: bool | None
    sensor_online: bool | None


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
        f"""SELECT d.id AS desk_id, d.name, b.id AS building_id, f.id AS floor_id,
                   z.id AS zone_id, d.x, d.y, d.equipment, b.tz,
                   EXISTS (SELECT 1 FROM bookings k
                           WHERE k.desk_id = d.id AND k.status IN {ACTIVE_SQL}
                             AND k.period && tstzrange($1, $2, '[)')) AS booked,
                   s.occupied, ds.online AS sensor_online
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


async def release_no_shows(conn: asyncpg.Connection, now: datetime, after: timedelta) -> int:
    """Release every booking not checked in ``after`` its start: the desk is free again,
    and the booking stays as ``released``, which is how no-shows are counted."""
    status = await conn.execute(
        """UPDATE bookings SET status = 'released', ended_at = $1
           WHERE status = 'booked' AND lower(period) + $2::interval <= $1""",
        now,
        after,
    )
    return int(status.rsplit(" ", 1)[-1])


async def no_shows(conn: asyncpg.Connection, person_id: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM bookings WHERE person_id = $1 AND status = 'released'", person_id
        )
    )
