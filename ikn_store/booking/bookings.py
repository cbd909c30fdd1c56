"""Bookings in PostgreSQL.

The exclusion constraints ``bookings_desk_no_overlap`` and ``bookings_person_no_overlap``
are the single source of truth for "never twice": the insert either wins or fails,
atomically. Their violations are
translated here into the domain's ``DeskAlreadyBooked`` / ``PersonAlreadyBooked``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from ikn_core.booking import (
    BookDesk,
    BookingContended,
    BookingError,
    BookingNotActive,
    BookingNotFound,
    BookingStatus,
    CheckInSignal,
    DeskAlreadyBooked,
    IdempotencyKeyReused,
    NotCheckedIn,
    PersonAlreadyBooked,
    UnknownDesk,
    UnknownPerson,
)
from ikn_store.booking.places import DeskPlace, PlaceCache


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
    series_id: UUID | None = None


_SELECT = """
    SELECT k.id, k.desk_id, k.person_id, lower(k.period) AS start, upper(k.period) AS "end",
           k.status, k.checked_in_at, k.check_in_signal, k.created_by, k.created_at,
           k.idempotency_key, k.series_id, b.tz
    FROM bookings k
    JOIN desks d ON d.id = k.desk_id
    JOIN zones z ON z.id = d.zone_id
    JOIN floors f ON f.id = z.floor_id
    JOIN buildings b ON b.id = f.building_id
"""


def _booking(row: asyncpg.Record, tz: str | None = None) -> Booking:
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
        tz=tz or row["tz"],
        series_id=row["series_id"],
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


# Books only while the desk's place still has the fingerprint the caller checked its
# rules against (see ikn_store.booking.places), and only a desk that desk_bookable()
# allows (not disabled; assigned to nobody, to the person, or booked by a manager, $9);
# no row: the place changed or is gone, or the desk may not be booked (the caller
# re-reads and says why).
# An admin's disable committed after this statement's snapshot does not undo it: the
# booking made before the disable stays (cancel it if need be).
_INSERT = """
    WITH k AS (
        INSERT INTO bookings (desk_id, person_id, period, created_by, idempotency_key, series_id)
        SELECT p.desk_id, $2, tstzrange($3, $4, '[)'), $5, $6, $8
        FROM desk_booking_places p, LATERAL (SELECT booking_lock($1, $2)) AS queued
        WHERE p.desk_id = $1 AND p.fingerprint = $7  -- booking_lock: ikn_store/sql/booking/
          AND desk_bookable(p.disabled, p.assigned_to, $2, $9)
        RETURNING *)
    SELECT k.id, k.desk_id, k.person_id, lower(k.period) AS start, upper(k.period) AS "end",
           k.status, k.checked_in_at, k.check_in_signal, k.created_by, k.created_at,
           k.series_id
    FROM k"""

# booking_lock() queues conflicting bookers, so they cannot deadlock each other; a
# deadlock with some other writer (raw SQL) aborts one side, and its retry sees the
# winner committed and gets the plain exclusion violation.
DEADLOCK_RETRIES = 10


async def replayed(
    conn: asyncpg.Connection,
    created_by: str,
    key: str,
    want: tuple[str, str, datetime, datetime],
) -> Booking | None:
    """The booking made earlier with this key (``want``: desk, person, start, end must
    match, else ``IdempotencyKeyReused``); None when the key is new."""
    row = await _by_key(conn, created_by, key)
    return None if row is None else _replay(row, *want)


async def book(
    conn: asyncpg.Connection,
    *,
    place: DeskPlace,
    person_id: str,
    start: datetime,
    end: datetime,
    created_by: str,
    idempotency_key: str | None = None,
    series_id: UUID | None = None,
    manager: bool = False,
) -> tuple[Booking, bool] | None:
    """Book atomically; return the booking and whether it was created now (False: a
    replay), or None when ``place`` is no longer the desk's or forbids this booking
    (disabled, assigned to another and not ``manager``): read it again, re-check.

    Call it outside a transaction: each attempt is its own statement.
    """
    desk_id = place.desk_id
    args = (desk_id, person_id, start, end, created_by, idempotency_key)
    want = (desk_id, person_id, start, end)
    for _ in range(DEADLOCK_RETRIES):
        try:
            row = await conn.fetchrow(_INSERT, *args, place.fingerprint, series_id, manager)
        except asyncpg.DeadlockDetectedError:
            continue
        except (asyncpg.UniqueViolationError, asyncpg.ExclusionViolationError) as exc:
            # The same key, used before or by a concurrent request that won the race?
            if idempotency_key is not None:
                earlier = await replayed(conn, created_by, idempotency_key, want)
                if earlier is not None:
                    return earlier, False
            if isinstance(exc, asyncpg.UniqueViolationError):
                raise  # not a key's conflict: unexpected
            raise _conflict(exc, desk_id, person_id) from exc
        except asyncpg.ForeignKeyViolationError as exc:
            if exc.constraint_name == "bookings_desk_id_fkey":
                raise UnknownDesk(f"no desk {desk_id!r}") from exc
            raise UnknownPerson(f"no person {person_id!r} or {created_by!r}") from exc
        return None if row is None else (_booking(row, place.tz), True)
    raise BookingContended(f"desk {desk_id}: too many concurrent conflicting requests; retry")


def _conflict(
    exc: asyncpg.ExclusionViolationError, desk_id: str, person_id: str
) -> PersonAlreadyBooked | DeskAlreadyBooked:
    if exc.constraint_name == "bookings_person_no_overlap":
        return PersonAlreadyBooked(f"{person_id} already holds a booking overlapping this time")
    return DeskAlreadyBooked(f"desk {desk_id} is already booked for this time")


Booked = tuple[Booking, bool] | None  # see book(): None means "read the place again"


@dataclass(frozen=True, slots=True)
class OnConnection:
    """Book on one connection, one statement per booking (an
    ``ikn_service.booking.Booker``)."""

    conn: asyncpg.Connection

    async def fresh_place(self, places: PlaceCache, desk_id: str) -> DeskPlace:
        return await places.fresh(self.conn, desk_id)

    async def replayed(self, cmd: BookDesk) -> Booking | None:
        if cmd.idempotency_key is None:
            return None
        want = (cmd.desk_id, cmd.person_id, cmd.start, cmd.end)
        return await replayed(self.conn, cmd.created_by, cmd.idempotency_key, want)

    async def insert(self, place: DeskPlace, cmd: BookDesk) -> Booked:
        return await book(
            self.conn,
            place=place,
            person_id=cmd.person_id,
            start=cmd.start,
            end=cmd.end,
            created_by=cmd.created_by,
            idempotency_key=cmd.idempotency_key,
            series_id=cmd.series_id,
            manager=cmd.manager,
        )


_BOOK_BATCH = "SELECT * FROM book_batch($1, $2, $3, $4, $5, $6, $7) ORDER BY ord"
BATCH_MAX = 48  # a subtransaction each; PostgreSQL keeps 64 per backend in shared memory


async def book_batch(
    conn: asyncpg.Connection, items: Sequence[tuple[DeskPlace, BookDesk]]
) -> list[Booked | BookingError]:
    """Book many in one transaction (SQL ``book_batch()``): for each item its booking, None
    (its place changed: read it again), or the ``BookingError`` that refuses it alone.
    Items with an idempotency key or a series take ``book()`` (their replays need it).
    Should the batch fail as a whole, each item is booked on its own instead."""
    if any(cmd.idempotency_key is not None or cmd.series_id is not None for _, cmd in items):
        raise ValueError("book_batch takes no idempotency keys or series")
    if len(items) > BATCH_MAX:
        raise ValueError(f"book_batch takes at most {BATCH_MAX} bookings")
    columns = zip(
        *(
            (
                place.desk_id,
                cmd.person_id,
                cmd.start,
                cmd.end,
                cmd.created_by,
                place.fingerprint,
                cmd.manager,
            )
            for place, cmd in items
        ),
        strict=True,
    )
    try:
        rows = await conn.fetch(_BOOK_BATCH, *(list(c) for c in columns))
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DeadlockDetectedError):
        return [await _alone(conn, place, cmd) for place, cmd in items]
    return [_outcome(row, place, cmd) for row, (place, cmd) in zip(rows, items, strict=True)]


async def prepare_batches(conn: asyncpg.Connection) -> None:
    """Makes ``book_batch`` ready on this connection before a rush needs it: asyncpg
    prepares the statement and learns its types, PostgreSQL compiles the function and
    plans its statements. An empty batch books nothing."""
    await conn.fetch(_BOOK_BATCH, [], [], [], [], [], [], [])


def _outcome(row: asyncpg.Record, place: DeskPlace, cmd: BookDesk) -> Booked | BookingError:
    match row["outcome"]:
        case "booked":
            return _booking(row, place.tz), True
        case "place-changed":
            return None
        case "desk-taken":
            return DeskAlreadyBooked(f"desk {place.desk_id} is already booked for this time")
        case "person-taken":
            return PersonAlreadyBooked(
                f"{cmd.person_id} already holds a booking overlapping this time"
            )
    raise AssertionError(f"book_batch answered {row['outcome']!r}")


async def _alone(
    conn: asyncpg.Connection, place: DeskPlace, cmd: BookDesk
) -> Booked | BookingError:
    try:
        return await OnConnection(conn).insert(place, cmd)
    except BookingError as exc:
        return exc


async def get_booking(conn: asyncpg.Connection, booking_id: UUID) -> Booking:
    row = await conn.fetchrow(_SELECT + " WHERE k.id = $1", booking_id)
    if row is None:
        raise BookingNotFound(f"no booking {booking_id}")
    return _booking(row)


async def desk_next(conn: asyncpg.Connection, desk_id: str, at: datetime) -> Booking | None:
    """The desk's first active booking that ends after ``at`` (under way then, or the
    next one), whoever holds it; None: the desk is free from ``at`` on."""
    row = await conn.fetchrow(
        _SELECT
        + """ WHERE k.desk_id = $1 AND upper(k.period) > $2 AND booking_active(k.status)
             ORDER BY lower(k.period) LIMIT 1""",
        desk_id,
        at,
    )
    return None if row is None else _booking(row)


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
        + """ WHERE k.person_id = $1
               AND ($2::timestamptz IS NULL OR upper(k.period) > $2)
               AND ($3 OR booking_active(k.status))
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
        """UPDATE bookings SET status = 'cancelled', ended_at = now()
            WHERE id = $1 AND booking_active(status) RETURNING id""",
        booking_id,
    )
    booking = await get_booking(conn, booking_id)
    if row is None:
        raise BookingNotActive(f"booking {booking_id} is {booking.status}")
    return booking


async def cancel_following(conn: asyncpg.Connection, booking: Booking) -> list[Booking]:
    """Cancel ``booking`` and the active later occurrences of its series."""
    if booking.series_id is None:
        return [await cancel(conn, booking.id)]
    ids = await conn.fetch(
        """UPDATE bookings SET status = 'cancelled', ended_at = now()
            WHERE series_id = $1 AND lower(period) >= $2 AND booking_active(status)
            RETURNING id""",
        booking.series_id,
        booking.start,
    )
    rows = await conn.fetch(
        _SELECT + " WHERE k.id = ANY($1::uuid[]) ORDER BY lower(k.period)", [r["id"] for r in ids]
    )
    return [_booking(r) for r in rows]


async def check_in(
    conn: asyncpg.Connection,
    booking_id: UUID,
    signal: CheckInSignal,
    at: datetime,
    received: datetime | None = None,
) -> Booking:
    """Mark a booked booking checked in by ``signal`` at ``at`` (``received``: when a
    check-in queued offline arrived); checking in twice keeps the first."""
    await conn.execute(
        """UPDATE bookings SET status = 'checked_in', checked_in_at = $2, check_in_signal = $3,
                               check_in_received_at = $4
           WHERE id = $1 AND status = 'booked'""",
        booking_id,
        at,
        str(signal),
        received,
    )
    booking = await get_booking(conn, booking_id)
    if booking.status not in (BookingStatus.BOOKED, BookingStatus.CHECKED_IN):
        raise BookingNotActive(f"booking {booking_id} is {booking.status}")
    return booking


async def check_in_at_door(
    conn: asyncpg.Connection, person_id: str, building_id: str, at: datetime
) -> list[Booking]:
    """Check in the person's bookings that being at the building's door at ``at`` checks
    in, as a badge tap there does (``attendance_door_bookings``), with the signal
    ``door``; the bookings checked in now (none: none held, or checked in before)."""
    ids = await conn.fetch(
        """UPDATE bookings SET status = 'checked_in', checked_in_at = $3,
                               check_in_signal = 'door'
           WHERE id IN (SELECT booking_id FROM attendance_door_bookings($1, $2, $3, $3))
             AND status = 'booked'
           RETURNING id""",
        person_id,
        building_id,
        at,
    )
    rows = await conn.fetch(
        _SELECT + " WHERE k.id = ANY($1::uuid[]) ORDER BY lower(k.period)", [r["id"] for r in ids]
    )
    return [_booking(r) for r in rows]


async def checked_in_at(
    conn: asyncpg.Connection, person_id: str, building_id: str, since: datetime, until: datetime
) -> list[tuple[str, str]]:
    """The desks (id, name) of the building where the person's bookings starting in
    [``since``, ``until``) are checked in."""
    rows = await conn.fetch(
        """SELECT d.id, d.name FROM bookings k
           JOIN desks d ON d.id = k.desk_id
           JOIN zones z ON z.id = d.zone_id
           JOIN floors f ON f.id = z.floor_id
           WHERE k.person_id = $1 AND f.building_id = $2 AND k.status = 'checked_in'
             AND lower(k.period) >= $3 AND lower(k.period) < $4
           ORDER BY lower(k.period), d.id""",
        person_id,
        building_id,
        since,
        until,
    )
    return [(r["id"], r["name"]) for r in rows]


async def check_out(conn: asyncpg.Connection, booking_id: UUID, at: datetime) -> Booking:
    """End a checked-in booking at ``at``: the desk is free again; the booking stays
    as ``checked_out`` (``ended_at``: when)."""
    row = await conn.fetchrow(
        """UPDATE bookings SET status = 'checked_out', ended_at = $2
           WHERE id = $1 AND status = 'checked_in' RETURNING id""",
        booking_id,
        at,
    )
    booking = await get_booking(conn, booking_id)
    if row is None and booking.status is BookingStatus.BOOKED:
        raise NotCheckedIn(f"booking {booking_id} is not checked in; cancel it instead")
    if row is None:
        raise BookingNotActive(f"booking {booking_id} is {booking.status}")
    return booking


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


async def no_show_counts(
    conn: asyncpg.Connection, since: datetime, limit: int = 1000
) -> list[tuple[str, int]]:
    """(person, no-shows) of bookings starting since ``since``, most no-shows first."""
    rows = await conn.fetch(
        """SELECT person_id, count(*) AS n FROM bookings
           WHERE status = 'released' AND lower(period) >= $1
           GROUP BY person_id ORDER BY n DESC, person_id LIMIT $2""",
        since,
        limit,
    )
    return [(r["person_id"], int(r["n"])) for r in rows]


async def no_shows(conn: asyncpg.Connection, person_id: str, since: datetime) -> int:
    """The person's bookings starting since ``since`` that were released unused."""
    return int(
        await conn.fetchval(
            """SELECT count(*) FROM bookings
               WHERE person_id = $1 AND status = 'released' AND lower(period) >= $2""",
            person_id,
            since,
        )
    )
