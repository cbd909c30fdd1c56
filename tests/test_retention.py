"""The retention job (ikn_service/retention.py) on a real PostgreSQL: for every purpose
of ikn_core.retention, a row just past its period is deleted and one just inside it
(or exactly at the boundary) kept; the API runs it; one process at a time; counts only
in its log; and docs/privacy.md's table is the declaration's."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from ikn_core import retention
from ikn_core.attendance.versions import Policies
from ikn_core.settings import ApiSettings, RetentionSettings
from ikn_service.retention import LOCK_KEY, enforce
from ikn_store.fleet.dead_letters import DeadLetter
from ikn_store.readings.partitions import ensure_partitions
from ikn_store.readings.rows import write_dead_letters
from tests.helpers import fetch
from tests.web_site import seed_people

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC).replace(microsecond=0)
SECOND = timedelta(seconds=1)
IDLE = timedelta(minutes=30)
SETTINGS = RetentionSettings(
    readings_days=10,
    dead_letters_days=5,
    signals_days=20,
    attendance_days=30,
    audit_days=40,
    access_log_days=50,
    sessions_days=2,
)
POLICY = dataclasses.replace(Policies.default().versions[-1], location_retention_days=7)


def before(days: int) -> datetime:
    return NOW - timedelta(days=days)


async def _signal(conn: asyncpg.Connection, at: datetime, source: str, lat: float | None) -> None:
    await conn.execute(
        """INSERT INTO attendance_signals (person_id, kind, at, place_type, source, lat, lon,
                                           accuracy_m)
           VALUES ('ani', 'app_check_in', $1, 'home', $2, $3::float8, $3::float8, $3::float8)""",
        at,
        source,
        lat,
    )


async def _attendance(conn: asyncpg.Connection, day: date) -> None:
    await conn.execute(
        """INSERT INTO attendance_days (person_id, day, mode, record, policy_version)
           VALUES ('ani', $1, 'absent', '{}', 'v')""",
        day,
    )
    await conn.execute("INSERT INTO attendance_dirty (person_id, day) VALUES ('ani', $1)", day)
    await conn.execute(
        """INSERT INTO attendance_requests (person_id, kind, days, reason, requested_by)
           VALUES ('ani', 'cuti', daterange($1::date - 3, $1::date + 1), 'x', 'ani')""",
        day,  # its last day is ``day``
    )


async def _session(conn: asyncpg.Connection, name: str, expires: datetime, seen: datetime) -> None:
    await conn.execute(
        """INSERT INTO web_sessions (id_hash, person_id, csrf_token, created_at, seen_at,
                                     expires_at)
           VALUES (sha256($1::text::bytea), 'ani', repeat('c', 40),
                   $2::timestamptz - interval '1 day', $2, $3)""",
        name,
        seen,
        expires,
    )


async def _rows_on_both_sides(conn: asyncpg.Connection) -> None:
    """Per purpose: ``past`` one second beyond its period, ``kept`` one second inside and
    ``edge`` exactly at it."""
    for label, at in (("past", -SECOND), ("edge", timedelta()), ("kept", SECOND)):
        await _signal(conn, before(7) + at, f"api:coordinates-{label}", 1.0)  # 7: the policy
        await _signal(conn, before(20) + at, f"api:signal-{label}", None)
        await conn.execute(
            """INSERT INTO attendance_audit (at, actor, action, person_id)
               VALUES ($1, 'sari', $2, 'ani')""",
            before(40) + at,
            f"audit-{label}",
        )
        await conn.execute(
            """INSERT INTO attendance_access (at, subject_id, viewer_id, viewer_name,
                                              viewer_role, what, period, channel)
               VALUES ($1, 'ani', 'sari', 'Sari', 'supervisor', 'day', $2, 'api')""",
            before(50) + at,
            label,
        )
        await conn.execute(
            """INSERT INTO api_tokens (token_hash, name, role, person_id, expires_at)
               VALUES (sha256($1::text::bytea), $1, 'employee', 'ani', $2)""",
            f"token-{label}",
            before(2) + at,
        )
    await conn.execute("DELETE FROM attendance_dirty")  # the days those signals marked
    await write_dead_letters(
        conn,
        [
            DeadLetter(before(5) + at, "ikn/v1/dev/d1/up", "d1", "not_json", "", b"x")
            for at in (-SECOND, timedelta(), SECOND)
        ],
    )
    cut = before(30).date()
    await _attendance(conn, cut - timedelta(days=1))  # past
    await _attendance(conn, cut)  # kept: the day of the boundary
    # sessions: ended (absolutely or idle) more or less than 2 days ago
    await _session(conn, "expired-past", before(2) - SECOND, before(2) - SECOND)
    await _session(conn, "expired-kept", before(2) + SECOND, before(2) - SECOND)
    await _session(conn, "idle-past", NOW + IDLE, before(2) - IDLE - SECOND)
    await _session(conn, "idle-kept", NOW + IDLE, before(2) - IDLE + SECOND)
    await conn.execute(
        """INSERT INTO api_tokens (token_hash, name, role, expires_at)
           VALUES (sha256('service'::bytea), 'service', 'admin', $1)""",
        before(900),  # a service's token is no one's data: kept until revoked
    )
    today = NOW.date()
    await ensure_partitions(conn, [today - timedelta(days=11), today - timedelta(days=10)])


async def test_each_purpose_loses_exactly_what_is_past_its_period(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_people(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await _rows_on_both_sides(conn)
        with caplog.at_level(logging.INFO):
            counts = await enforce(conn, SETTINGS, POLICY, IDLE, NOW)
            again = await enforce(conn, SETTINGS, POLICY, IDLE, NOW)
    finally:
        await conn.close()
    assert counts == {
        "coordinates": 1,
        "readings": 1,
        "signals": 1,
        "attendance": 3,  # the day, the request that ended that day, its dirty mark
        "audit": 1,
        "access_log": 1,
        "dead_letters": 1,
        "sessions": 3,  # two sessions, one token
    }
    assert list(counts) == [p.name for p in retention.PURPOSES]  # a delete per purpose
    assert again == dict.fromkeys(counts, 0)
    url = database_url
    located = await fetch(url, "SELECT source FROM attendance_signals WHERE lat IS NOT NULL")
    assert sorted(r[0] for r in located) == ["api:coordinates-edge", "api:coordinates-kept"]
    signals = await fetch(url, "SELECT source FROM attendance_signals WHERE source ~ 'signal'")
    assert sorted(r[0] for r in signals) == ["api:signal-edge", "api:signal-kept"]
    audit = await fetch(url, "SELECT action FROM attendance_audit ORDER BY at")
    assert [r[0] for r in audit] == ["audit-edge", "audit-kept"]
    access = await fetch(url, "SELECT period FROM attendance_access ORDER BY at")
    assert [r[0] for r in access] == ["edge", "kept"]
    letters = await fetch(url, "SELECT received_at FROM dead_letters ORDER BY received_at")
    assert [r[0] for r in letters] == [before(5), before(5) + SECOND]
    days = await fetch(url, "SELECT day FROM attendance_days")
    assert [r[0] for r in days] == [before(30).date()]
    requests = await fetch(url, "SELECT upper(days) - 1 FROM attendance_requests")
    assert [r[0] for r in requests] == [before(30).date()]
    dirty = await fetch(url, "SELECT day FROM attendance_dirty")
    assert [r[0] for r in dirty] == [before(30).date()]
    sessions = await fetch(url, "SELECT id_hash FROM web_sessions")
    kept = await fetch(url, "SELECT sha256('expired-kept'), sha256('idle-kept')")
    assert sorted(r[0] for r in sessions) == sorted(kept[0])
    tokens = await fetch(url, "SELECT name FROM api_tokens WHERE expires_at < now() ORDER BY 1")
    assert [r[0] for r in tokens] == ["service", "token-edge", "token-kept"]
    parts = await fetch(url, "SELECT relname FROM pg_class WHERE relname ~ '^readings_[0-9]{8}$'")
    assert [r[0] for r in parts] == [f"readings_{NOW.date() - timedelta(days=10):%Y%m%d}"]
    assert "retention: deleted coordinates 1, readings 1, signals 1" in caplog.text
    assert "ani" not in caplog.text.lower() and "sari" not in caplog.text.lower()


async def test_one_process_at_a_time_does_a_round(database_url: str) -> None:
    holder, other = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        assert await enforce(other, SETTINGS, POLICY, IDLE, NOW) is None
        await holder.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        assert await enforce(other, SETTINGS, POLICY, IDLE, NOW) is not None
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)  # released
    finally:
        await holder.close()
        await other.close()


def test_the_policy_keeping_no_coordinates_purges_them_all() -> None:
    none = dataclasses.replace(POLICY, location_retention_days=None)
    assert retention.cutoffs(SETTINGS, none, NOW)["coordinates"] == NOW


def test_the_periods_are_settings_of_the_api() -> None:
    env = {
        "IKN_DATABASE_URL": "postgresql://u:p@h/db",
        "IKN_SIGNAL_RETENTION_DAYS": "21",
        "IKN_ACCESS_LOG_RETENTION_DAYS": "22",
        "IKN_SESSION_RETENTION_DAYS": "0",
        "IKN_RETENTION_INTERVAL_S": "0.5",
    }
    got = ApiSettings.from_env(env).retention
    assert (got.signals_days, got.access_log_days, got.sessions_days) == (21, 22, 0)
    assert (got.readings_days, got.interval_s) == (90, 0.5)
    assert {f.name for f in dataclasses.fields(RetentionSettings)} - {"interval_s"} == {
        p.field for p in retention.PURPOSES if p.field
    }


def test_docs_privacy_table_is_the_declaration() -> None:
    """docs/privacy.md's retention table is generated from ikn_core.retention with the
    shipped defaults (``python -m ikn_core.retention --write docs/privacy.md``)."""
    doc = (ROOT / "docs" / "privacy.md").read_text(encoding="utf-8")
    assert retention.with_table(doc) == doc
    for p in retention.PURPOSES:
        assert f"| `{p.name}` |" in retention.markdown()
    assert "| 400 days | `IKN_SIGNAL_RETENTION_DAYS` |" in doc
    assert "not stored (`none`) | policy `location.retention_days` |" in doc
