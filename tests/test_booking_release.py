"""Auto-release: a booking nobody checked in to 15 minutes after its start frees its desk
and counts as the person's no-show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn_core.booking import RELEASE_AFTER
from ikn_store.booking.bookings import no_shows, release_no_shows
from tests.helpers import api_settings, eventually, fetch, seed

BOOK = """INSERT INTO bookings (desk_id, person_id, created_by, period, status, checked_in_at,
                               check_in_signal)
          VALUES ($1, $2, $2, tstzrange($3, $4), $5, $6, $7) RETURNING id"""


async def _setup(url: str, now: datetime) -> tuple[object, object, object]:
    await seed(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO people (id, name, agency, unit) VALUES "
            "('p1', 'Siti', 'k', 'u'), ('p2', 'Budi', 'k', 'u'), "
            "('p3', 'Ani', 'k', 'u'), ('p4', 'Dewi', 'k', 'u')"
        )
        hour = timedelta(hours=1)
        no_show = await conn.fetchval(
            BOOK, "d1", "p1", now - timedelta(minutes=20), now + hour, "booked", None, None
        )
        in_grace = await conn.fetchval(
            BOOK, "d2", "p2", now - timedelta(minutes=5), now + hour, "booked", None, None
        )
        present = await conn.fetchval(
            BOOK, "d3", "p3", now - hour, now + hour, "checked_in", now - hour, "badge"
        )
        return no_show, in_grace, present
    finally:
        await conn.close()


async def test_only_bookings_past_the_grace_without_check_in_are_released(
    database_url: str,
) -> None:
    now = datetime.now(UTC)
    no_show, in_grace, present = await _setup(database_url, now)
    conn = await asyncpg.connect(database_url)
    try:
        assert await release_no_shows(conn, now, RELEASE_AFTER) == 1
        assert await release_no_shows(conn, now, RELEASE_AFTER) == 0  # idempotent
        rows = await conn.fetch("SELECT id, status, ended_at FROM bookings")
        status = {r["id"]: r["status"] for r in rows}
        assert status == {no_show: "released", in_grace: "booked", present: "checked_in"}
        assert (
            await no_shows(conn, "p1", now - timedelta(days=1)) == 1
            and await no_shows(conn, "p2", now - timedelta(days=1)) == 0
        )
        # the desk is free again: the exclusion constraint admits a new booking over it
        await conn.fetchval(BOOK, "d1", "p4", now, now + timedelta(hours=2), "booked", None, None)
    finally:
        await conn.close()


async def test_the_api_process_releases_no_shows_by_itself(database_url: str) -> None:
    no_show, _, _ = await _setup(database_url, datetime.now(UTC))
    app = make_app(
        api_settings({"IKN_DATABASE_URL": database_url, "IKN_BOOKING_RELEASE_INTERVAL_S": "1"})
    )
    async with TestClient(TestServer(app)):
        await eventually(
            lambda: fetch(database_url, "SELECT status FROM bookings WHERE id = $1", no_show),
            lambda rows: rows[0]["status"] == "released",
        )
