"""Signals captured inside the ingest's transaction (ikn_store.readings.rows.write): badge
taps of enrolled tokens, the booking check-in a tap makes, desk occupancy during a
booking; unknown tokens counted; every redelivery a no-op."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from edge_agent.badge import badge_token
from ikn_core.attendance import Policies
from ikn_core.attendance.requests import UnknownEvidence
from ikn_service import attendance as service
from ikn_store.attendance import requests as requests_store
from ikn_store.attendance.badges import enrol, revoke
from ikn_store.attendance.days import mark_dirty, pending_evidence, recompute_dirty
from ikn_store.attendance.requests import NewRequest
from ikn_store.people import get_person, upsert_people
from ikn_store.pool import create_pool
from ikn_store.readings.partitions import ensure_partitions
from ikn_store.readings.rows import ReadingRow, UpMessage, write
from tests.helpers import seed
from tests.test_attendance_e2e import KEY, PEOPLE, SITE

WITA = ZoneInfo("Asia/Makassar")
ANI = badge_token(KEY, "0004829001")
STRANGER = badge_token(KEY, "9999")
START = datetime(2026, 10, 1, 9, 0, tzinfo=WITA)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await seed(database_url, SITE)
    pool = await create_pool(database_url, 2)
    async with pool.acquire() as conn:
        await upsert_people(conn, PEOPLE)
        await enrol(conn, ANI, "ani")
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by)
               VALUES ('d1', 'ani', tstzrange($1, $2), 'ani')""",
            START,
            START + timedelta(hours=8),
        )
    yield pool
    await pool.close()


def _message(
    device: str,
    stream: str,
    *readings: tuple[datetime, str, dict[str, Any]],
    received: datetime | None = None,
) -> UpMessage:
    """An up message received a second after its newest reading (unless ``received``)."""
    now = received or max(ts for ts, _, _ in readings) + timedelta(seconds=1)
    rows = tuple(
        ReadingRow(device, stream, seq, ts, now, kind, body)
        for seq, (ts, kind, body) in enumerate(readings)
    )
    return UpMessage(f"ikn/v1/dev/{device}/up", device, b"{}", now, rows)


async def _write(pool: asyncpg.Pool, *messages: UpMessage) -> None:
    async with pool.acquire() as conn:
        days = {r.ts.astimezone(UTC).date() for m in messages for r in m.rows}
        await ensure_partitions(conn, days)
        await write(conn, messages)


async def _signals(pool: asyncpg.Pool) -> list[tuple[str, str, datetime]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT person_id, kind, at FROM attendance_signals ORDER BY id")
    return [(r["person_id"], r["kind"], r["at"]) for r in rows]


async def test_a_tap_is_a_signal_and_checks_in_the_booking_of_that_day(pool: asyncpg.Pool) -> None:
    at = START - timedelta(hours=1, minutes=20)  # 07:40, before the booking starts
    taps = _message(
        "door-b1",
        str(uuid.uuid4()),
        (at, "badge_tap", {"badge": ANI, "direction": "in"}),
        (at, "badge_tap", {"badge": STRANGER, "direction": "in"}),
    )
    await _write(pool, taps)
    await _write(pool, taps)  # redelivered
    assert await _signals(pool) == [("ani", "badge_in", at), ("ani", "booking_check_in", at)]
    async with pool.acquire() as conn:
        booking = await conn.fetchrow("SELECT status, check_in_signal FROM bookings")
        unknown = await conn.fetchval(
            "SELECT taps FROM badge_unknown_taps WHERE device_id = 'door-b1'"
        )
        dirty = await conn.fetch("SELECT person_id, day FROM attendance_dirty")
    assert tuple(booking) == ("checked_in", "badge")
    assert unknown == 2  # as received: the redelivery counts again
    assert [tuple(r) for r in dirty] == [("ani", START.date())]


async def test_desk_occupancy_during_the_booking_is_one_signal(pool: asyncpg.Pool) -> None:
    stream = str(uuid.uuid4())
    before = START - timedelta(hours=2)  # long before the booking: not a signal
    first, later = START + timedelta(minutes=5), START + timedelta(hours=2)
    await _write(
        pool,
        _message(
            "desk-d1",
            stream,
            (before, "desk_occupancy", {"occupied": True}),
            (first, "desk_occupancy", {"occupied": True}),
            (later, "desk_occupancy", {"occupied": True}),
        ),
    )
    kinds = [(kind, at) for _, kind, at in await _signals(pool)]
    assert ("desk_occupied", first) in kinds
    assert sum(kind == "desk_occupied" for kind, _ in kinds) == 1
    assert ("booking_check_in", first) in kinds  # the sensor checked the booking in


async def test_a_revoked_badge_is_unknown_from_then_on(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await revoke(conn, ANI)
    now = datetime.now(UTC)
    await _write(
        pool,
        _message(
            "door-b1", str(uuid.uuid4()), (now, "badge_tap", {"badge": ANI, "direction": "in"})
        ),
    )
    assert await _signals(pool) == []


async def test_recompute_marks_and_computes_every_day_of_a_period(pool: asyncpg.Pool) -> None:
    days = [START.date() + timedelta(n) for n in range(3)]  # Thursday to Saturday
    async with pool.acquire() as conn:
        assert await mark_dirty(conn, ["ani"], days) == 3
        assert await recompute_dirty(conn, Policies.default()) == 3
        rows = await conn.fetch("SELECT day, mode FROM attendance_days ORDER BY day")
        assert await conn.fetchval("SELECT count(*) FROM attendance_dirty") == 0
    assert [r["mode"] for r in rows] == ["absent", "absent", "non_working_day"]


async def test_taps_count_only_from_a_badge_reader_at_a_door(pool: asyncpg.Pool) -> None:
    """A desk sensor's or an environment sensor's tap, or one from a reader placed at a
    desk, is a dead letter: no signal, no check-in, counted by reason."""
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO devices (id, kind, building_id, zone_id, desk_id) VALUES
               ('reader-d2', 'badge_reader', 'b1', 'b1-f1-a', 'd2'),
               ('env-b1', 'environment', 'b1', 'b1-f1-a', NULL)"""
        )
    at = START - timedelta(hours=1, minutes=20)
    tap = (at, "badge_tap", {"badge": ANI, "direction": "in"})
    for device in ("desk-d1", "env-b1", "reader-d2"):
        await _write(pool, _message(device, str(uuid.uuid4()), tap))
    assert await _signals(pool) == []
    async with pool.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM bookings")
        letters = await conn.fetch(
            "SELECT device_id, reason, detail FROM dead_letters ORDER BY device_id"
        )
    assert status == "booked"
    assert [(r["device_id"], r["reason"]) for r in letters] == [
        ("desk-d1", "wrong_kind"),
        ("env-b1", "wrong_kind"),
        ("reader-d2", "not_at_door"),
    ]
    assert (
        letters[2]["detail"] == "readings[0].kind: a badge_tap from a badge reader placed at a desk"
    )
    assert ANI not in str([tuple(r) for r in letters])


async def test_a_late_tap_is_evidence_that_counts_only_through_an_approved_correction(
    pool: asyncpg.Pool,
) -> None:
    """A tap received more than the policy's 24 h after its time checks in nothing and
    changes no day, until a supervisor approves a correction that cites it."""
    async with pool.acquire() as conn:  # live at b1, and knowing Ani, since September
        await conn.execute("UPDATE buildings SET live_from = '2026-09-01'")
        await conn.execute("UPDATE people SET known_since = '2026-09-01T00:00+08:00'")
    at = START - timedelta(hours=1, minutes=20)  # 07:40 WITA on Thursday 1 October
    tap = (at, "badge_tap", {"badge": ANI, "direction": "in"})
    received = at + timedelta(hours=24, minutes=1)
    await _write(pool, _message("door-b1", str(uuid.uuid4()), tap, received=received))
    policies = Policies.default()
    day = START.date()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM bookings") == "booked"
        signal = await conn.fetchval("SELECT id FROM attendance_signals WHERE kind = 'badge_in'")
        assert await recompute_dirty(conn, policies) == 1
        record = await conn.fetchval(
            "SELECT record FROM attendance_days WHERE person_id = 'ani' AND day = $1", day
        )
        assert record["mode"] == "absent" and record["clock_in"] is None
        assert record["signals"] == []
        assert record["reasons"][-1] == (
            f"pending evidence: badge_in s{signal} at 07:40 WITA received late "
            "(2026-10-02 07:41 WITA): counts only through an approved correction citing it"
        )
        assert await pending_evidence(conn, policies, "ani", day, WITA) == [f"s{signal}"]
        with pytest.raises(UnknownEvidence):  # not a signal of Ani's day
            await service.file_request(
                conn, NewRequest("ani", "correction", day, day, "x", evidence=(signal + 9,)), "ani"
            )
        asked = await service.file_request(
            conn,
            NewRequest("ani", "correction", day, day, "reader was offline", evidence=(signal,)),
            "ani",
        )
        budi = await get_person(conn, "budi")
        assert budi is not None
        now = datetime(2026, 10, 2, 9, 0, tzinfo=WITA)
        await service.decide(conn, service.DecideRequest(asked.id, budi, True), policies, now=now)
        record = await conn.fetchval(
            "SELECT record FROM attendance_days WHERE person_id = 'ani' AND day = $1", day
        )
        audit = await conn.fetchrow(
            "SELECT actor, before, after FROM attendance_audit WHERE action = 'recomputed'"
        )
        assert await pending_evidence(conn, policies, "ani", day, WITA) == []
    assert record["clock_in"] == "2026-10-01T07:40:00+08:00"
    assert record["signals"] == [f"s{signal}"]
    assert audit["actor"] == "budi"
    assert (audit["before"]["mode"], audit["after"]["mode"]) == ("absent", "wfo")


async def test_the_job_audits_every_record_it_changes_and_no_first_record(
    pool: asyncpg.Pool,
) -> None:
    """The dirty-day job writes one audit row per record whose content changed (actor
    job:recompute, before, after, the new signals); a day's first record is no change,
    and recomputing a day to the same record audits nothing."""
    at = START - timedelta(hours=1, minutes=20)  # 07:40
    await _write(
        pool,
        _message(
            "door-b1", str(uuid.uuid4()), (at, "badge_tap", {"badge": ANI, "direction": "in"})
        ),
    )
    policies = Policies.default()
    day = START.date()
    async with pool.acquire() as conn:
        assert await recompute_dirty(conn, policies) == 1  # the first record
        assert await conn.fetchval("SELECT count(*) FROM attendance_audit") == 0
        await mark_dirty(conn, ["ani"], [day])
        assert await recompute_dirty(conn, policies) == 1  # the same record again
        assert await conn.fetchval("SELECT count(*) FROM attendance_audit") == 0
    out = START + timedelta(hours=7, minutes=10)  # 16:10
    await _write(
        pool,
        _message(
            "door-b1", str(uuid.uuid4()), (out, "badge_tap", {"badge": ANI, "direction": "out"})
        ),
    )
    async with pool.acquire() as conn:
        assert await recompute_dirty(conn, policies) == 1
        rows = await conn.fetch("SELECT * FROM attendance_audit")
        out_id = await conn.fetchval("SELECT id FROM attendance_signals WHERE kind = 'badge_out'")
    assert len(rows) == 1
    row = rows[0]
    assert (row["actor"], row["action"], row["person_id"], row["day"]) == (
        "job:recompute",
        "recomputed",
        "ani",
        day,
    )
    assert row["request_id"] is None
    assert row["signals"] == [f"s{out_id}"]
    assert row["before"]["clock_out"] is None
    assert row["after"]["clock_out"] == "2026-10-01T16:10:00+08:00"
    async with pool.acquire() as conn:  # what GET /api/v1/attendance/day shows of it
        (shown,) = await requests_store.audit_trail(conn, "ani", day, WITA)
    assert (shown["actor"], shown["signals"]) == ("job:recompute", [f"s{out_id}"])


async def test_a_desk_reading_received_after_the_booking_ended_checks_nothing_in(
    pool: asyncpg.Pool,
) -> None:
    """Its time inside the booking, but received the next day: the booking stays booked;
    its desk_occupied signal is late evidence like a late tap."""
    during = START + timedelta(hours=1)
    await _write(
        pool,
        _message(
            "desk-d1",
            str(uuid.uuid4()),
            (during, "desk_occupancy", {"occupied": True}),
            received=START + timedelta(days=1),
        ),
    )
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM bookings") == "booked"
    assert [kind for _, kind, _ in await _signals(pool)] == ["desk_occupied"]
