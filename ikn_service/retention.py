"""The retention job: one round deletes, per purpose of ``ikn_core.retention.PURPOSES``,
what is past its period, and answers how many rows (partitions for the readings) each
lost. The API runs it every ``IKN_RETENTION_INTERVAL_S`` in each process; a session
advisory lock lets one process at a time do a round (the others skip theirs). Its log
line holds counts only, never a person's data.

Boundaries: a row is past its period when its time is before ``now - period`` (strictly);
attendance days by their date, before the UTC date of that moment; readings go by daily
partition, once the whole UTC day is before ``today - period`` (so up to a day late,
never early); a session or token counts from when it could no longer be used.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from ikn_core import retention
from ikn_core.attendance.policy import Policy
from ikn_core.settings import RetentionSettings
from ikn_store import retention as store
from ikn_store import web_sessions
from ikn_store.attendance.signals import purge_coordinates
from ikn_store.fleet.dead_letters import delete_expired
from ikn_store.readings.partitions import drop_expired

log = logging.getLogger(__name__)

LOCK_KEY = 0x494B4E5245544E  # "IKNRETN"


async def enforce(
    conn: asyncpg.Connection,
    settings: RetentionSettings,
    policy: Policy,
    session_idle: timedelta,
    now: datetime,
) -> dict[str, int] | None:
    """One round at ``now`` with ``policy`` in force (its coordinates' period) and the
    pages' idle limit; the counts per purpose, or None when another process holds the
    round."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        return None
    try:
        counts = await _round(conn, settings, policy, session_idle, now)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    if any(counts.values()):
        log.info("retention: deleted %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def _days(n: int) -> timedelta:
    return timedelta(days=n)


async def _round(
    conn: asyncpg.Connection,
    settings: RetentionSettings,
    policy: Policy,
    session_idle: timedelta,
    now: datetime,
) -> dict[str, int]:
    cut = retention.cutoffs(settings, policy, now)
    sessions = await web_sessions.purge(conn, cut["sessions"], session_idle)
    counts = {
        "coordinates": await purge_coordinates(conn, cut["coordinates"]),
        "readings": len(
            await drop_expired(conn, settings.readings_days, now.astimezone(UTC).date())
        ),
        "signals": await store.signals(conn, cut["signals"]),
        "attendance": await store.attendance(conn, cut["attendance"].date()),
        "audit": await store.audit(conn, cut["audit"]),
        "access_log": await store.access_log(conn, cut["access_log"]),
        "dead_letters": await delete_expired(conn, _days(settings.dead_letters_days), now),
        "sessions": sessions + await store.person_tokens(conn, cut["sessions"]),
    }
    return counts
