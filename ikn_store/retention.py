"""The deletes of the retention job (``ikn_service.retention``) that no feature's module
already holds: each removes what is older than ``before`` and answers how many rows.
The readings' partitions, dead letters, coordinates and sessions have theirs beside
the rest of their feature (``readings.partitions``, ``fleet.dead_letters``,
``attendance.signals``, ``web_sessions``)."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def signals(conn: asyncpg.Connection, before: datetime) -> int:
    """Attendance signals taken before ``before``; the days computed from them stay."""
    return _count(await conn.execute("DELETE FROM attendance_signals WHERE at < $1", before))


async def attendance(conn: asyncpg.Connection, before: date) -> int:
    """Attendance days before ``before``, requests whose every day is, and days of theirs
    waiting to be computed again."""
    deleted = 0
    for query in (
        "DELETE FROM attendance_days WHERE day < $1",
        "DELETE FROM attendance_requests WHERE upper(days) <= $1",
        "DELETE FROM attendance_dirty WHERE day < $1",
    ):
        deleted += _count(await conn.execute(query, before))
    return deleted


async def audit(conn: asyncpg.Connection, before: datetime) -> int:
    return _count(await conn.execute("DELETE FROM attendance_audit WHERE at < $1", before))


async def access_log(conn: asyncpg.Connection, before: datetime) -> int:
    return _count(await conn.execute("DELETE FROM attendance_access WHERE at < $1", before))


async def person_tokens(conn: asyncpg.Connection, before: datetime) -> int:
    """A person's API tokens that expired before ``before`` (a service's stay: they are
    no one's data, and ``ikn token list`` shows them until revoked)."""
    status = await conn.execute(
        "DELETE FROM api_tokens WHERE person_id IS NOT NULL AND expires_at < $1", before
    )
    return _count(status)
