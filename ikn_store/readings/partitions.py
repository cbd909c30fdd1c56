"""Daily partitions of ``readings`` (UTC days), created ahead and dropped after retention."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)

LOCK_KEY = 0x494B4E5041525453  # "IKNPARTS"


async def ensure_partitions(conn: asyncpg.Connection, days: Iterable[date]) -> None:
    """Create the partitions of these days if missing (safe from several ingests at once)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        for day in sorted(set(days)):
            # as the migration role: the application role owns no table (SECURITY DEFINER)
            await conn.execute("SELECT readings_partition_create($1)", day)


async def drop_expired(conn: asyncpg.Connection, retention_days: int, today: date) -> list[str]:
    """Drop the partitions whose whole day is older than the retention."""
    horizon = today - timedelta(days=retention_days)
    names = await conn.fetch(
        """SELECT c.relname FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid
           JOIN pg_class p ON p.oid = i.inhparent
           WHERE p.relname = 'readings' AND c.relname ~ '^readings_[0-9]{8}$'"""
    )
    dropped = []
    for (name,) in names:
        if _day_of(name) < horizon:
            await conn.execute("SELECT readings_partition_drop($1)", _day_of(name))
            dropped.append(name)
    if dropped:
        log.info("retention: dropped %d partition(s) older than %s", len(dropped), horizon)
    return dropped


def _day_of(name: str) -> date:
    return datetime.strptime(name[-8:], "%Y%m%d").replace(tzinfo=UTC).date()
