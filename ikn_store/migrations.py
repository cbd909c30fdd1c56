"""Versioned SQL migrations: ``migrations/NNNN_name.sql``, applied in order.

Each file runs in its own transaction and is recorded in ``schema_migrations``
with a checksum. A session-level advisory lock serialises concurrent runners
(two services starting at once), so running twice, or from two processes at
once, applies each file exactly once. An applied file that was edited later is
refused: write a new migration instead.

Hand-written rather than a migration library: plain SQL files, ~80 lines, and
no second database driver (yoyo and alembic bring psycopg or SQLAlchemy).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ikn_store.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_KEY = 0x494B4E4D49475254  # "IKNMIGRT"
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version in {directory}")
    return found


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply what is not applied yet; return what was applied now."""
    pending = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        # Only when missing: the application role (docs/configuration.md) may not
        # create tables, and CREATE TABLE IF NOT EXISTS asks for that right first.
        if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NULL"):
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        done = []
        for migration in pending:
            if migration.version in applied:
                _check_unchanged(migration, applied[migration.version])
                continue
            await _apply(conn, migration)
            done.append(migration)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


def _check_unchanged(migration: Migration, checksum: str) -> None:
    if checksum != migration.checksum:
        raise MigrationError(
            f"migration {migration.version:04d}_{migration.name} was changed after it was "
            "applied; add a new migration instead"
        )


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    log.info("applying migration %04d_%s", migration.version, migration.name)
    async with conn.transaction():
        await conn.execute(migration.sql)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.checksum,
        )
