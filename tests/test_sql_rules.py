"""Rules that SQL applies where Python also needs them have one SQL definition, a
function named after the rule (ikn_store/sql/booking/), held here to give Python's
answers: "desk bookable", "active booking" and the check-in window."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ikn_core.booking import (
    ACTIVE,
    CHECK_IN_OPENS_BEFORE,
    BookingError,
    BookingRules,
    BookingStatus,
    check_in_window,
)
from ikn_store.booking.places import DeskPlace, check_desk


def _python_bookable(disabled: bool, assigned_to: str | None, manager: bool) -> bool:
    place = DeskPlace("d1", "z1", "b1", "UTC", BookingRules(), None, "fp", disabled, assigned_to)
    try:
        check_desk(place, "ani", manager)
    except BookingError:
        return False
    return True


async def test_desk_bookable_answers_as_check_desk(database_url: str) -> None:
    cases = list(itertools.product([False, True], [None, "ani", "budi"], [False, True]))
    conn = await asyncpg.connect(database_url)
    try:
        sql = [
            await conn.fetchval("SELECT desk_bookable($1, $2, 'ani', $3)", *case) for case in cases
        ]
    finally:
        await conn.close()
    assert sql == [_python_bookable(*case) for case in cases]
    assert True in sql and False in sql


async def test_active_statuses_agree_with_booking_active_and_the_constraints(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        predicates = await conn.fetch(
            """SELECT c.conname, pg_get_expr(i.indpred, i.indrelid) AS predicate
               FROM pg_constraint c JOIN pg_index i ON i.indexrelid = c.conindid
               WHERE c.conrelid = 'bookings'::regclass AND c.contype = 'x'
               ORDER BY c.conname"""
        )
        answers = {}
        for status in BookingStatus:
            row = [await conn.fetchval("SELECT booking_active($1)", status.value)]
            for p in predicates:
                query = f"SELECT {p['predicate']} FROM (SELECT $1::text AS status) bookings"
                row.append(await conn.fetchval(query, status.value))
            answers[status] = row
    finally:
        await conn.close()
    assert [p["conname"] for p in predicates] == [
        "bookings_desk_no_overlap",
        "bookings_person_no_overlap",
    ]
    assert answers == {s: [s in ACTIVE] * 3 for s in BookingStatus}


@pytest.mark.parametrize(
    "offset",
    [timedelta(minutes=m) for m in (-16, -15, -1, 0, 30, 59)]
    + [timedelta(minutes=60) - timedelta(microseconds=1), timedelta(minutes=60)],
)
async def test_the_check_in_window_is_the_apps(database_url: str, offset: timedelta) -> None:
    start = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    end = start + timedelta(hours=1)
    now = start + offset
    try:
        check_in_window(start, end, now)
        app = True
    except BookingError:
        app = False
    conn = await asyncpg.connect(database_url)
    try:
        sql = await conn.fetchval(
            "SELECT $3::timestamptz <@ booking_check_in_window(tstzrange($1, $2, '[)'), $4)",
            start,
            end,
            now,
            CHECK_IN_OPENS_BEFORE,
        )
    finally:
        await conn.close()
    assert sql is app
