"""Daily partitions of ``readings`` (UTC days), created ahead and dropped after retention."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)

LOCK_KEY = 0x494B4E5041525453  # "IKNPARTS"


def partition_name(day: date) -> str:
    return f"readings_{day:%Y%m%d}"


async def ensure_partitions(conn: asyncpg.Connection, days: Iterable[date]) -> None:
    """Create the partitions of these days if missing (safe from several ingests at once)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        for day in sorted(set(days)):
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF readings "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )


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
        if datetime.strptime(name[-8:], "%Y%m%d").date() < horizon:
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
            dropped.append(name)
    if dropped:
        log.info("retention: dropped %d partition(s) older than %s", len(dropped), horizon)
    return dropped
