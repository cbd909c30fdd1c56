"""Migrations: in order, recorded, idempotent, safe from two processes at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from ikn_store.errors import MigrationError
from ikn_store.migrations import discover, migrate


async def test_applies_every_file_once_and_records_it(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        first = await migrate(conn)
        second = await migrate(conn)
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [m.version for m in first] == [m.version for m in discover()]
    assert second == []
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in discover()]


def test_two_processes_at_once_apply_each_migration_once(empty_database_url: str) -> None:
    env = {**os.environ, "IKN_DATABASE_URL": empty_database_url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ikn", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    applied = sorted(out.splitlines()[0] for out, _ in outputs)
    assert applied == ["applied 0 migration(s)", f"applied {len(discover())} migration(s)"]

    async def count() -> int:
        conn = await asyncpg.connect(empty_database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM schema_migrations"))
        finally:
            await conn.close()

    assert asyncio.run(count()) == len(discover())


async def test_an_applied_file_that_changed_is_refused(
    empty_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (x int);")
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, tmp_path, sources=None)
        (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (x bigint);")
        with pytest.raises(MigrationError, match="was changed after it was applied"):
            await migrate(conn, tmp_path, sources=None)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_done(
    empty_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE b (x int); SELECT no_such_column FROM a;")
    conn = await asyncpg.connect(empty_database_url)
    try:
        with pytest.raises(asyncpg.UndefinedColumnError):
            await migrate(conn, tmp_path, sources=None)
        versions = await conn.fetch("SELECT version FROM schema_migrations")
        has_b = await conn.fetchval("SELECT to_regclass('b') IS NOT NULL")
    finally:
        await conn.close()
    assert [r["version"] for r in versions] == [1]
    assert has_b is False


def test_misnamed_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover(tmp_path)
