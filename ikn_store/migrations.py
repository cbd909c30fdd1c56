"""The database schema: versioned migrations for tables, indexes and data, and SQL
source files for functions, triggers and views.

Versioned: ``migrations/NNNN_name.sql``, applied once each, in order, and recorded in
``schema_migrations`` with a checksum. An applied file that was edited later is
refused: write a new migration instead. The one exception is declared in
``migrations/previous_checksums.txt``: the texts the files had before their functions,
triggers and views moved to source; a database that applied such a text gets the
present checksum recorded. A migration left with comments only keeps its number.

Source (repeatable, as Flyway's repeatable migrations and sqitch's rework):
``sql/<feature>/<object>.sql``, one function, view or trigger (with the trigger function
it calls) per file, written to be run again (``CREATE OR REPLACE``). The current logic
is read in one place, not pieced together from history. After the versioned migrations,
each file whose checksum differs from the one recorded in ``schema_sources`` is applied,
and all of them whenever a versioned migration was applied in the same run: a migration
may change a table that a view or a SQL function is bound to, and applying every source
again re-creates what it dropped (a migration that changes a column a view reads drops
the view first; its source file creates it again). Re-applying all 30 files takes about
a second (on a loaded 2-core machine), simpler and safer than working out what a
migration touched. Order: by path, except that a file runs after those it names in
``-- requires: <feature>/<object>`` lines (stdlib ``graphlib``; only needed where PostgreSQL
checks a body at creation: views and ``LANGUAGE sql`` functions; PL/pgSQL bodies are
checked when called). Removing a source file leaves its object: drop it in a migration.

Each file runs in its own transaction. A session-level advisory lock serialises
concurrent runners (two services starting at once), so running twice, or from two
processes at once, applies each file once.

Hand-written rather than a migration library: plain SQL files, ~200 lines, and no
second database driver (yoyo and alembic bring psycopg or SQLAlchemy).
"""

from __future__ import annotations

import graphlib
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ikn_store.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SOURCES_DIR = Path(__file__).parent / "sql"
PREVIOUS_CHECKSUMS = "previous_checksums.txt"
LOCK_KEY = 0x494B4E4D49475254  # "IKNMIGRT"
_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_SOURCE = re.compile(r"[a-z0-9_]+/[a-z0-9_]+")
_REQUIRES = re.compile(r"^-- requires: (.+)$", re.MULTILINE)

_SCHEMA_MIGRATIONS = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""
_SCHEMA_SOURCES = """CREATE TABLE IF NOT EXISTS schema_sources (
    source text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return _sha256(self.sql)


@dataclass(frozen=True, slots=True)
class Source:
    """One repeatable file: ``name`` is ``<feature>/<object>``."""

    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return _sha256(self.sql)

    @property
    def requires(self) -> list[str]:
        return [r.strip() for line in _REQUIRES.findall(self.sql) for r in line.split(",")]


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


def previous_checksums(directory: Path = MIGRATIONS_DIR) -> dict[int, frozenset[str]]:
    """The accepted earlier checksums of each version (``NNNN <sha256> ...`` lines)."""
    path = directory / PREVIOUS_CHECKSUMS
    found: dict[int, frozenset[str]] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    for line in (x for x in lines if x.strip() and not x.startswith("#")):
        version, checksum = line.split()[:2]
        found[int(version)] = found.get(int(version), frozenset()) | {checksum}
    return found


def discover_sources(directory: Path = SOURCES_DIR) -> list[Source]:
    """The source files in the order they are applied: by name, each after those it
    requires."""
    found = {}
    for path in sorted(directory.glob("**/*.sql")):
        name = path.relative_to(directory).with_suffix("").as_posix()
        if not _SOURCE.fullmatch(name):
            raise MigrationError(f"{name}.sql: source files are named <feature>/<object>.sql")
        found[name] = Source(name, path.read_text())
    order: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for source in found.values():
        unknown = [r for r in source.requires if r not in found]
        if unknown:
            raise MigrationError(f"{source.name}.sql requires {unknown}, which do not exist")
        order.add(source.name, *source.requires)
    try:
        return [found[name] for name in order.static_order()]
    except graphlib.CycleError as exc:
        raise MigrationError(f"source files require each other in a circle: {exc.args[1]}") from exc


async def migrate(
    conn: asyncpg.Connection,
    directory: Path = MIGRATIONS_DIR,
    sources: Path | None = SOURCES_DIR,
) -> list[Migration]:
    """Apply the migrations not applied yet, then the source files that changed (all of
    them when a migration was applied; none when ``sources`` is None); return the
    migrations applied now."""
    pending = discover(directory)
    accepted = previous_checksums(directory)
    to_source = [] if sources is None else discover_sources(sources)
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await _create_if_missing(conn, "schema_migrations", _SCHEMA_MIGRATIONS)
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        done = []
        for migration in pending:
            if migration.version not in applied:
                await _apply(conn, migration)
                done.append(migration)
            elif applied[migration.version] != migration.checksum:
                await _accept_previous(conn, migration, applied[migration.version], accepted)
        if to_source:
            await _apply_sources(conn, to_source, everything=bool(done))
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def _create_if_missing(conn: asyncpg.Connection, table: str, ddl: str) -> None:
    # Only when missing: the application role (docs/configuration.md) may not
    # create tables, and CREATE TABLE IF NOT EXISTS asks for that right first.
    if await conn.fetchval("SELECT to_regclass($1) IS NULL", table):
        await conn.execute(ddl)


async def _accept_previous(
    conn: asyncpg.Connection,
    migration: Migration,
    checksum: str,
    accepted: dict[int, frozenset[str]],
) -> None:
    if checksum not in accepted.get(migration.version, frozenset()):
        raise MigrationError(
            f"migration {migration.version:04d}_{migration.name} was changed after it was "
            "applied; add a new migration instead"
        )
    log.info("migration %04d_%s: recording its present text", migration.version, migration.name)
    await conn.execute(
        "UPDATE schema_migrations SET checksum = $2 WHERE version = $1",
        migration.version,
        migration.checksum,
    )


def _has_statements(sql: str) -> bool:
    """False for a migration whose objects all moved to source: comments only."""
    return any(not line.strip().startswith("--") for line in sql.splitlines() if line.strip())


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    log.info("applying migration %04d_%s", migration.version, migration.name)
    async with conn.transaction():
        if _has_statements(migration.sql):  # asyncpg fails on a text of comments only
            await conn.execute(migration.sql)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.checksum,
        )


async def _apply_sources(conn: asyncpg.Connection, sources: list[Source], everything: bool) -> None:
    await _create_if_missing(conn, "schema_sources", _SCHEMA_SOURCES)
    rows = await conn.fetch("SELECT source, checksum FROM schema_sources")
    recorded = {r["source"]: r["checksum"] for r in rows}
    for source in sources:
        if everything or recorded.get(source.name) != source.checksum:
            log.info("applying source %s.sql", source.name)
            async with conn.transaction():
                await conn.execute(source.sql)
                await conn.execute(
                    """INSERT INTO schema_sources (source, checksum) VALUES ($1, $2)
                       ON CONFLICT (source) DO UPDATE
                       SET checksum = EXCLUDED.checksum, applied_at = now()""",
                    source.name,
                    source.checksum,
                )
