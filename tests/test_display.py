"""Desk displays: a desk sensor's change goes through the real ingest and PostgreSQL
(trigger, NOTIFY) and comes back down through the real Mosquitto to the edge agent,
which hands the display state to the simulated driver; times in the building's zone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from edge_agent import EdgeAgent
from ikn.brokers import BrokerProcess
from ikn_core.booking import CheckInSignal
from ikn_core.contract import DisplayCommand, Observation
from ikn_store.booking.bookings import cancel, check_in, check_out
from ikn_store.fleet.devices import DeskEvent
from ingest.display import DisplayFeed, display_for
from tests.helpers import eventually
from tests.test_downlink_edge import CONFIG, QueueDriver
from tests.test_edge_agent import DEADLINE_S, mqtt_settings
from tests.test_ingest import Running

DEVICE, DESK = "desk-d1", "d1"
WITA = ZoneInfo("Asia/Makassar")


def _event(occupied: bool) -> DeskEvent:
    at = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    return DeskEvent(1, DESK, DEVICE, occupied, at, "z", "f", "b1", "Asia/Makassar")


@pytest.mark.parametrize(
    ("occupied", "current_end", "next_start", "state", "until"),
    [
        (True, None, None, "occupied", None),
        (True, datetime(2026, 11, 23, 4, 0, tzinfo=UTC), None, "occupied", "12:00"),
        (False, datetime(2026, 11, 23, 15, 30, tzinfo=UTC), None, "booked", "23:30"),
        (False, None, datetime(2026, 11, 23, 6, 15, tzinfo=UTC), "free", "14:15"),
        (False, None, None, "free", None),
    ],
)
def test_the_display_shows_local_time(
    occupied: bool,
    current_end: datetime | None,
    next_start: datetime | None,
    state: str,
    until: str | None,
) -> None:
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    shown = display_for(_event(occupied), now, current_end, next_start)
    assert (shown.state, shown.until) == (state, until)
    assert shown.ts == int(now.timestamp() * 1000)


@pytest.fixture
async def desk(mosquitto: BrokerProcess) -> AsyncIterator[QueueDriver]:
    driver = QueueDriver(device_id=DEVICE)
    async with EdgeAgent(DEVICE, mqtt_settings(mosquitto), config=CONFIG) as agent:
        pump = asyncio.create_task(agent.pump(driver))
        async with asyncio.timeout(DEADLINE_S):
            await agent.wait_listening()
        yield driver
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


async def _shown(driver: QueueDriver, count: int) -> DisplayCommand:
    """The newest display state once the driver has been shown ``count`` of them."""
    await eventually(
        lambda: asyncio.sleep(0, len(driver.displays)), lambda n: n >= count, DEADLINE_S
    )
    return driver.displays[-1]


def _sit(driver: QueueDriver, occupied: bool) -> None:
    ts = int(datetime.now(UTC).timestamp() * 1000)
    driver.queue.put_nowait(Observation("desk_occupancy", ts, {"occupied": occupied}))


async def test_a_sensor_change_updates_the_desk_display(
    ingest: Running,
    desk: QueueDriver,
    database_url: str,
) -> None:
    _sit(desk, True)
    first = await _shown(desk, 1)
    assert first.state == "occupied" and first.until is None

    end = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO people (id, name, agency, unit) VALUES ('p1', 'Ayu', 'A', 'U')"
        )
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by)
               VALUES ($1, 'p1', tstzrange(now() - interval '1 hour', $2), 'p1')""",
            DESK,
            end,
        )
    finally:
        await conn.close()
    booked = await _shown(desk, 2)  # the booking's NOTIFY: in use until its end
    assert (booked.state, booked.until) == ("occupied", end.astimezone(WITA).strftime("%H:%M"))
    _sit(desk, False)
    second = await _shown(desk, 3)
    assert second.state == "booked"
    assert second.until == end.astimezone(WITA).strftime("%H:%M")
    assert ingest.service.stats.counts["dead_letter.unknown_kind"] == 0


async def _shown_after(driver: QueueDriver, count: int) -> DisplayCommand:
    """The newest display state once more than ``count`` have been shown."""
    return await _shown(driver, count + 1)


async def _comes_to(driver: QueueDriver, count: int, state: str, until: str | None) -> None:
    """Wait until, after the first ``count`` displays, the newest shows ``state`` and
    ``until``: on a busy machine the display of an earlier change may come first."""
    await eventually(
        lambda: asyncio.sleep(0, driver.displays[-1]),
        lambda d: len(driver.displays) > count and (d.state, d.until) == (state, until),
        DEADLINE_S,
    )


async def test_booking_changes_update_the_desk_display(
    ingest: Running,
    desk: QueueDriver,
    database_url: str,
) -> None:
    """No sensor change: booking, checking in and out and cancelling a booking of the
    desk reach its display through the bookings triggers' NOTIFY (bookings_display_notify)."""
    _sit(desk, False)
    assert (await _shown(desk, 1)).state == "free"
    end = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO people (id, name, agency, unit) VALUES ('p1', 'A', 'A', 'U')"
        )
        booking = await conn.fetchval(
            """INSERT INTO bookings (desk_id, person_id, period, created_by)
               VALUES ($1, 'p1', tstzrange(now() - interval '1 minute', $2), 'p1') RETURNING id""",
            DESK,
            end,
        )
        booked = await _shown_after(desk, 1)
        assert (booked.state, booked.until) == ("booked", end.astimezone(WITA).strftime("%H:%M"))

        shown = len(desk.displays)
        await check_in(conn, booking, CheckInSignal.APP, datetime.now(UTC))
        await check_out(conn, booking, datetime.now(UTC))
        await eventually(
            lambda: asyncio.sleep(0, desk.displays[-1]),
            lambda d: len(desk.displays) > shown and d.state == "free",
            DEADLINE_S,
        )

        soon = datetime.now(UTC) + timedelta(minutes=30)
        shown = len(desk.displays)
        second = await conn.fetchval(
            """INSERT INTO bookings (desk_id, person_id, period, created_by)
               VALUES ($1, 'p1', tstzrange($2, $3), 'p1') RETURNING id""",
            DESK,
            soon,
            soon + timedelta(hours=1),
        )
        await _comes_to(desk, shown, "free", _today_or_none(soon))

        shown = len(desk.displays)
        await cancel(conn, second)
        await _comes_to(desk, shown, "free", None)
    finally:
        await conn.close()


def _today_or_none(start: datetime) -> str | None:
    """A free display names the next booking's start only when it is today (local)."""
    local = start.astimezone(WITA)
    return local.strftime("%H:%M") if local.date() == datetime.now(WITA).date() else None


async def test_the_feed_outlives_a_connection_broken_mid_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL going away under a query makes asyncpg raise InternalClientError ("another
    operation is in progress"); the feed retries, it does not end the ingest (it did, in a
    PostgreSQL restart test)."""
    monkeypatch.setattr("ingest.display.RETRY_S", 0.01)
    feed = DisplayFeed("postgresql://unused@127.0.0.1:1/x", cast(asyncpg.Pool, None), print)
    stop = asyncio.Event()
    attempts = 0

    async def broken(_stop: asyncio.Event) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            stop.set()
        raise asyncpg.InternalClientError("cannot switch to state 11")

    monkeypatch.setattr(feed, "_listen_once", broken)
    await asyncio.wait_for(feed.run(stop), 5)
    assert attempts == 3
