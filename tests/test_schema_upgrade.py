"""A database upgraded from the migrations of release 0.1.0 (main at 95513af, kept
as ``fixtures/migrations-0.1.0.tar.gz``: the files as they were before functions,
triggers and views moved to ``ikn_store/sql/``) ends with the same schema as a new
one; and the source files are applied again exactly when they change."""

from __future__ import annotations

import tarfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from ikn_store.errors import MigrationError
from ikn_store.migrations import PREVIOUS_CHECKSUMS, discover, discover_sources, migrate
from ikn_store.roles import Roles, migrate_with_roles

RELEASE_0_1_0 = Path(__file__).parent / "fixtures" / "migrations-0.1.0.tar.gz"

# The schema, one sorted list of text per kind of object, as PostgreSQL describes it.
SCHEMA = {
    "columns": """
        SELECT format('%s.%s #%s %s null=%s default=%s', c.relname, a.attname, a.attnum,
                      format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
                      pg_get_expr(d.adbin, d.adrelid))
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0
          AND NOT a.attisdropped""",
    "relations": """
        SELECT format('%s kind=%s owner=%s acl=%s', relname, relkind, relowner::regrole,
                      relacl)
        FROM pg_class WHERE relnamespace = 'public'::regnamespace""",
    "constraints": """
        SELECT format('%s on %s: %s', conname, conrelid::regclass,
                      pg_get_constraintdef(oid))
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
    "indexes": """
        SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'""",
    "functions": """
        SELECT format('%s owner=%s acl=%s %s', oid::regprocedure, proowner::regrole, proacl,
                      pg_get_functiondef(oid))
        FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND prokind <> 'a'""",
    "triggers": """
        SELECT pg_get_triggerdef(oid) FROM pg_trigger
        WHERE NOT tgisinternal AND tgrelid::regclass::text NOT LIKE 'pg_%'""",
    "views": """
        SELECT format('%s: %s', viewname, definition) FROM pg_views
        WHERE schemaname = 'public'""",
    "sequences": """
        SELECT format('%s %s start=%s inc=%s min=%s max=%s', sequencename, data_type,
                      start_value, increment_by, min_value, max_value)
        FROM pg_sequences WHERE schemaname = 'public'""",
    "types": """
        SELECT format('%s %s', typname, typtype) FROM pg_type
        WHERE typnamespace = 'public'::regnamespace""",
    "extensions": "SELECT extname FROM pg_extension",
    "migrations": "SELECT format('%s %s %s', version, name, checksum) FROM schema_migrations",
}


async def schema(conn: asyncpg.Connection) -> dict[str, list[str]]:
    return {kind: sorted(r[0] for r in await conn.fetch(sql)) for kind, sql in SCHEMA.items()}


def release_0_1_0(tmp_path: Path, upto: int = 28) -> Path:
    """Release 0.1.0's migrations (up to version ``upto``: an older install yet)."""
    with tarfile.open(RELEASE_0_1_0) as tar:
        tar.extractall(tmp_path, filter="data")
    found = tmp_path / "migrations-0.1.0"
    for path in found.glob("*.sql"):
        if int(path.name[:4]) > upto:
            path.unlink()
    return found


@pytest.mark.parametrize("upto", [28, 10])
async def test_an_upgraded_database_ends_as_a_new_one(
    empty_database_url: str, database_url: str, tmp_path: Path, upto: int
) -> None:
    """From release 0.1.0 (28), and from a database older than it (10: before the view
    desk_booking_places gained columns and the readings trigger was dropped)."""
    old = release_0_1_0(tmp_path, upto)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, old, sources=None)  # as release 0.1.0 left it
        before = await schema(conn)
        applied = await migrate(conn)
        upgraded = await schema(conn)
    finally:
        await conn.close()
    conn = await asyncpg.connect(database_url)
    try:
        fresh = await schema(conn)
    finally:
        await conn.close()
    assert [m.version for m in applied] == [m.version for m in discover() if m.version > upto]
    dead = "ingest_staged" if upto >= 14 else "analytics_readings_dirty"
    assert any(dead in f for f in before["functions"])  # the dead ones went
    assert before["triggers"] and before["views"]
    assert before["functions"] != fresh["functions"]  # the comparison sees a difference
    for kind in SCHEMA:
        assert upgraded[kind] == fresh[kind], kind


async def _with_roles(url: str, old: Path | None) -> dict[str, list[str]]:
    """``ikn migrate`` with a migration and an application role (after release 0.1.0's
    migrations applied by the administrator, as an older install had them, when
    ``old``); the schema with the roles' names made the same for every database."""
    roles = Roles(urlsplit(url).path.lstrip("/"), f"app_{uuid.uuid4().hex[:10]}", "Rahasia")
    conn = await asyncpg.connect(url)
    try:
        if old is not None:
            await migrate(conn, old, sources=None)
        await migrate_with_roles(conn, roles)
        found = await schema(conn)
        await conn.execute(f"DROP OWNED BY {roles.app}, {roles.owner} CASCADE")
        await conn.execute(f"DROP ROLE {roles.app}, {roles.owner}")
    finally:
        await conn.close()

    def same_names(row: str) -> str:
        return row.replace(roles.owner, "OWNER").replace(roles.app, "APP")

    return {kind: sorted(map(same_names, rows)) for kind, rows in found.items()}


async def test_with_roles_an_upgraded_database_ends_as_a_new_one(
    pg_server: str, empty_database_url: str, tmp_path: Path
) -> None:
    """Owners and grants too: the migration role owns everything, the application role
    has the same rights on both."""
    upgraded = await _with_roles(empty_database_url, release_0_1_0(tmp_path))
    other = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f"CREATE DATABASE {other} TEMPLATE template0")
        try:
            fresh = await _with_roles(empty_database_url.rsplit("/", 1)[0] + "/" + other, None)
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {other} WITH (FORCE)")
    finally:
        await admin.close()
    assert any("owner=OWNER" in r and "APP=arwd/OWNER" in r for r in fresh["relations"])
    for kind in SCHEMA:
        assert upgraded[kind] == fresh[kind], kind


async def test_a_migration_changed_otherwise_is_still_refused(
    empty_database_url: str, tmp_path: Path
) -> None:
    old = release_0_1_0(tmp_path)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, old, sources=None)
        path = old / "0010_ingest.sql"
        path.write_text(path.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match="0010_ingest was changed after it was applied"):
            await migrate(conn, old, sources=None)
    finally:
        await conn.close()


async def test_a_previous_checksum_is_accepted_and_replaced(
    empty_database_url: str, tmp_path: Path
) -> None:
    first = "CREATE TABLE a (x int); CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';"
    (tmp_path / "0001_a.sql").write_text(first)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, tmp_path, sources=None)
        (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x int);")
        with pytest.raises(MigrationError, match="was changed after it was applied"):
            await migrate(conn, tmp_path, sources=None)
        listed = discover(tmp_path)[0]
        (tmp_path / "0001_a.sql").write_text(first)
        old_sum = discover(tmp_path)[0].checksum
        (tmp_path / "0001_a.sql").write_text(listed.sql)
        (tmp_path / PREVIOUS_CHECKSUMS).write_text(f"# before\n0001 {old_sum} a.sql\n")
        assert await migrate(conn, tmp_path, sources=None) == []
        recorded = await conn.fetchval("SELECT checksum FROM schema_migrations")
        (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x bigint);")
        with pytest.raises(MigrationError, match="was changed after it was applied"):
            await migrate(conn, tmp_path, sources=None)
    finally:
        await conn.close()
    assert recorded == listed.checksum


async def _applied_at(conn: asyncpg.Connection) -> dict[str, object]:
    rows = await conn.fetch("SELECT source, applied_at FROM schema_sources")
    return {r["source"]: r["applied_at"] for r in rows}


async def test_a_changed_source_is_applied_again_and_an_unchanged_one_is_not(
    empty_database_url: str, tmp_path: Path
) -> None:
    versioned, sources = tmp_path / "migrations", tmp_path / "sql"
    versioned.mkdir()
    (sources / "demo").mkdir(parents=True)
    (versioned / "0001_t.sql").write_text("CREATE TABLE t (x int);")
    one = sources / "demo" / "one.sql"
    one.write_text("CREATE OR REPLACE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1';")
    (sources / "demo" / "two.sql").write_text(
        "CREATE OR REPLACE FUNCTION two() RETURNS int LANGUAGE sql AS 'SELECT 2';"
    )
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, versioned, sources)
        first = await _applied_at(conn)
        await migrate(conn, versioned, sources)
        unchanged = await _applied_at(conn)
        one.write_text("CREATE OR REPLACE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 11';")
        await migrate(conn, versioned, sources)
        changed = await _applied_at(conn)
        answer = await conn.fetchval("SELECT one()")
    finally:
        await conn.close()
    assert set(first) == {"demo/one", "demo/two"}
    assert unchanged == first
    assert changed["demo/two"] == first["demo/two"]
    assert changed["demo/one"] != first["demo/one"]
    assert answer == 11


async def test_every_source_is_applied_again_after_a_migration(
    empty_database_url: str, tmp_path: Path
) -> None:
    """A migration that must change a column a view reads drops the view; the view's
    unchanged source file makes it again, on the new column."""
    versioned, sources = tmp_path / "migrations", tmp_path / "sql"
    versioned.mkdir()
    (sources / "demo").mkdir(parents=True)
    (versioned / "0001_t.sql").write_text("CREATE TABLE t (x int); INSERT INTO t VALUES (7);")
    # z/.. before a/..: by name a/ would come first, but it requires z/.
    (sources / "z").mkdir()
    (sources / "z" / "t_view.sql").write_text("CREATE OR REPLACE VIEW t_view AS SELECT x FROM t;")
    (sources / "demo" / "t_doubled.sql").write_text(
        "-- requires: z/t_view\n"
        "CREATE OR REPLACE FUNCTION t_doubled() RETURNS bigint LANGUAGE sql"
        " AS 'SELECT x * 2 FROM t_view';"
    )
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, versioned, sources)
        (versioned / "0002_wider.sql").write_text(
            "DROP VIEW t_view CASCADE; ALTER TABLE t ALTER COLUMN x TYPE bigint;"
        )
        await migrate(conn, versioned, sources)
        answer = await conn.fetchval("SELECT t_doubled()")
        column = await conn.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 't_view'::regclass AND attname = 'x'"
        )
    finally:
        await conn.close()
    assert (answer, column) == (14, "bigint")


def test_source_files_in_a_circle_or_requiring_nothing_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.sql").write_text("-- requires: a/y\nSELECT 1;")
    (tmp_path / "a" / "y.sql").write_text("-- requires: a/x\nSELECT 1;")
    with pytest.raises(MigrationError, match="in a circle"):
        discover_sources(tmp_path)
    (tmp_path / "a" / "y.sql").write_text("-- requires: a/nothing\nSELECT 1;")
    with pytest.raises(MigrationError, match="which do not exist"):
        discover_sources(tmp_path)


def test_the_project_sources_are_each_one_object_in_a_feature() -> None:
    """Every source names its object, and no migration defines a function, trigger or
    view any more (those live in ikn_store/sql/)."""
    sources = discover_sources()
    for source in sources:
        obj = source.name.split("/")[1]
        assert f" {obj}(" in source.sql or f" {obj} AS" in source.sql, source.name
    for migration in discover():
        sql = migration.sql.upper()
        for word in ("CREATE FUNCTION", "CREATE OR REPLACE", "CREATE TRIGGER", "CREATE VIEW"):
            assert word not in sql, (migration.name, word)
