"""``ikn bench booking`` runs end to end and its figures are consistent (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from ikn.benchmarks.booking import DOUBLE_BOOKINGS
from ikn_core.domain import Role
from ikn_store.people import Person, upsert_people
from tests.helpers import seed


@pytest.mark.parametrize("rate", [None, "120"])
def test_bench_booking_prints_one_json_line_of_figures(rate: str | None) -> None:
    """Closed loop, and open loop at a rate (60 requests at 120/s: about half a second)."""
    command = [
        sys.executable,
        "-m",
        "ikn",
        "bench",
        "booking",
        "--clients",
        "8",
        "--bookings",
        "60",
    ]
    done = subprocess.run(
        [*command, *(["--rate", rate] if rate else [])],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    figures = orjson.loads(lines[0])
    for key in ("bookings_per_s", "p50_ms", "p99_ms", "ceiling_bookings_per_s", "ratio"):
        assert figures[key] > 0, figures
    # 60 requests, 6 of them for a slot someone else wants: 54 win, 6 get 409, none 500.
    assert (figures["created"], figures["conflicts_409"], figures["errors_5xx"]) == (54, 6, 0)
    assert figures["double_bookings"] == 0
    assert figures["other_statuses"] == {}
    assert figures["rate"] == (float(rate) if rate else None)
    if rate:  # the requests were due over 0.5 s, so they cannot have taken much less
        assert figures["requests_per_s"] <= 130, figures


@pytest.mark.parametrize("rate", ["0", "-5", "fast"])
def test_a_bad_rate_is_refused_at_once(rate: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ikn", "bench", "booking", "--rate", rate],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--rate" in done.stderr


async def test_the_double_booking_check_finds_every_overlap(database_url: str) -> None:
    """Without the exclusion constraints, overlaps of a desk or a person are counted;
    bookings that only touch, or that are cancelled, are not."""
    await seed(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await upsert_people(
            conn, [Person(p, p, "kemenpan", "sdm", Role.EMPLOYEE) for p in ("ani", "budi")]
        )
        await conn.execute(
            """ALTER TABLE bookings DROP CONSTRAINT bookings_desk_no_overlap,
                                    DROP CONSTRAINT bookings_person_no_overlap"""
        )
        rows = [  # desk, person, hours, status
            ("d1", "ani", (8, 10), "booked"),
            ("d1", "budi", (10, 12), "booked"),  # touches: fine
            ("d2", "ani", (13, 15), "booked"),
            ("d2", "budi", (14, 16), "cancelled"),  # overlaps, but cancelled: fine
        ]
        day = datetime(2026, 12, 1, tzinfo=UTC)

        async def insert(desk: str, person: str, hours: tuple[int, int], status: str) -> None:
            await conn.execute(
                """INSERT INTO bookings (desk_id, person_id, period, created_by, status)
                   VALUES ($1, $2, tstzrange($3, $4), $2, $5)""",
                desk,
                person,
                day + timedelta(hours=hours[0]),
                day + timedelta(hours=hours[1]),
                status,
            )

        for row in rows:
            await insert(*row)
        assert await conn.fetchval(DOUBLE_BOOKINGS) == 0
        await insert("d3", "ani", (9, 11), "booked")  # ani twice at once
        assert await conn.fetchval(DOUBLE_BOOKINGS) == 1
        await insert("d1", "budi", (7, 9), "booked")  # d1 twice at once (after the start)
        assert await conn.fetchval(DOUBLE_BOOKINGS) == 2
    finally:
        await conn.close()
