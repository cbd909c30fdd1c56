"""The database itself refuses double bookings; the store translates its refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ikn_core.booking import DeskAlreadyBooked, PersonAlreadyBooked
from ikn_core.domain import Role
from ikn_store.booking import bookings as store
from ikn_store.booking.places import RuleOverrides, desk_place, set_zone_rules
from ikn_store.people import Person, upsert_people
from tests.helpers import seed

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    await seed(database_url)
    connection = await asyncpg.connect(database_url)
    await upsert_people(
        connection,
        [
            Person("ani", "Ani", "kemenpan", "sdm", Role.EMPLOYEE),
            Person("budi", "Budi", "kemenpan", "sdm", Role.EMPLOYEE),
        ],
    )
    yield connection
    await connection.close()


async def _book(
    conn: asyncpg.Connection, person: str, desk: str, hours: tuple[int, int]
) -> tuple[store.Booking, bool]:
    done = await store.book(
        conn,
        place=await desk_place(conn, desk),
        person_id=person,
        start=T0 + timedelta(hours=hours[0]),
        end=T0 + timedelta(hours=hours[1]),
        created_by=person,
    )
    assert done is not None
    return done


async def test_overlaps_become_domain_errors(conn: asyncpg.Connection) -> None:
    await _book(conn, "ani", "d1", (1, 3))
    with pytest.raises(DeskAlreadyBooked) as desk_taken:
        await _book(conn, "budi", "d1", (2, 4))
    assert isinstance(desk_taken.value.__cause__, asyncpg.ExclusionViolationError)
    with pytest.raises(PersonAlreadyBooked):
        await _book(conn, "ani", "d2", (0, 2))
    await _book(conn, "budi", "d1", (3, 4))  # [1,3) and [3,4) touch, do not overlap


async def test_raw_sql_cannot_double_book_either(conn: asyncpg.Connection) -> None:
    insert = """INSERT INTO bookings (desk_id, person_id, period, created_by, status)
                VALUES ($1, $2, tstzrange($3, $4), $2, $5)"""
    await conn.execute(insert, "d1", "ani", T0, T0 + timedelta(hours=2), "booked")
    with pytest.raises(asyncpg.ExclusionViolationError):
        await conn.execute(insert, "d1", "budi", T0, T0 + timedelta(hours=1), "booked")
    # Cancelled and released bookings hold nothing.
    for status in ("cancelled", "released"):
        await conn.execute(insert, "d1", "budi", T0, T0 + timedelta(hours=1), status)
    with pytest.raises(asyncpg.CheckViolationError):  # an empty period
        await conn.execute(insert, "d2", "budi", T0, T0, "booked")


async def test_cancelling_frees_the_slot(conn: asyncpg.Connection) -> None:
    booking, created = await _book(conn, "ani", "d1", (0, 1))
    assert created
    cancelled = await store.cancel(conn, booking.id)
    assert cancelled.status == "cancelled"
    await _book(conn, "budi", "d1", (0, 1))


async def test_a_place_whose_rules_changed_books_nothing(conn: asyncpg.Connection) -> None:
    place = await desk_place(conn, "d1")
    await set_zone_rules(conn, place.zone_id, RuleOverrides(max_days_ahead=3))
    stale = await store.book(
        conn, place=place, person_id="ani", start=T0, end=T0 + timedelta(hours=1), created_by="ani"
    )
    assert stale is None
    assert await conn.fetchval("SELECT count(*) FROM bookings") == 0
    fresh = await desk_place(conn, "d1")
    assert fresh.fingerprint != place.fingerprint and fresh.rules.max_days_ahead == 3
    await _book(conn, "ani", "d1", (0, 1))
