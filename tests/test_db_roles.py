"""Least privilege in PostgreSQL, on the real server: ``ikn migrate`` with
``IKN_DATABASE_MIGRATE_URL`` makes a migration role that owns the schema and an
application role (IKN_DATABASE_URL's user) that does the ingest's and the API's work
and nothing more: no ``COPY ... PROGRAM``, no server files, no roles, no DDL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlsplit

import asyncpg
import pytest

from ikn.brokers import BrokerProcess
from ikn_core.contract import encode_batch
from tests.helpers import eventually, fetch, publish
from tests.test_booking_api import open_world, tomorrow
from tests.test_ingest import _batch, _settings, _start


def _as(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}").geturl()


def run_migrate(admin_url: str, app_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IKN_")}
    env |= {"IKN_DATABASE_URL": app_url, "IKN_DATABASE_MIGRATE_URL": admin_url}
    command = [sys.executable, "-m", "ikn", "migrate"]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(params=["new", "older install"])
async def app_url(
    request: pytest.FixtureRequest, empty_database_url: str, database_url: str
) -> AsyncIterator[str]:
    """A database migrated with the two roles: a new one, or one an administrator had
    migrated before (its objects are the administrator's until then); returns the
    application role's URL."""
    admin_url = empty_database_url if request.param == "new" else database_url
    app = f"app_{uuid.uuid4().hex[:10]}"  # roles belong to the whole server
    url = _as(admin_url, app, "Rahasia" + uuid.uuid4().hex)
    done = run_migrate(admin_url, url)
    assert done.returncode == 0, done.stderr
    assert f"application role {app}" in done.stdout
    assert run_migrate(admin_url, url).returncode == 0  # again: nothing to do, no error
    yield url
    owner = urlsplit(admin_url).path.lstrip("/") + "_migrate"
    conn = await asyncpg.connect(admin_url)
    try:  # roles outlive their database: drop them (the database goes with its fixture)
        await conn.execute(f"DROP OWNED BY {app}, {owner} CASCADE")
        await conn.execute(f"DROP ROLE {app}, {owner}")
    finally:
        await conn.close()


REFUSED = (
    "COPY (SELECT 1) TO PROGRAM 'true'",
    "COPY readings FROM PROGRAM 'true'",
    "SELECT pg_read_file('postgresql.conf')",
    "CREATE ROLE intruder",
    "CREATE DATABASE intruder",
    "ALTER TABLE bookings ADD COLUMN x integer",
    "DROP TABLE dead_letters",
    "CREATE TABLE public.intruder (x integer)",
    "TRUNCATE readings",
    "DELETE FROM schema_migrations",
    "ALTER ROLE CURRENT_USER SUPERUSER",
)


async def test_the_application_role_cannot(app_url: str) -> None:
    conn = await asyncpg.connect(app_url)
    try:
        for statement in REFUSED:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
                pytest.fail(f"the application role may {statement}")
    finally:
        await conn.close()


async def test_the_application_role_owns_nothing_and_holds_no_role(app_url: str) -> None:
    [me] = await fetch(
        app_url,
        """SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
                  (SELECT count(*) FROM pg_auth_members WHERE member = r.oid) AS memberships,
                  (SELECT count(*) FROM pg_class WHERE relowner = r.oid) AS relations,
                  (SELECT count(*) FROM pg_proc WHERE proowner = r.oid) AS functions
           FROM pg_roles r WHERE rolname = current_user""",
    )
    assert dict(me) == {
        "rolsuper": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolreplication": False,
        "rolbypassrls": False,
        "memberships": 0,
        "relations": 0,
        "functions": 0,
    }
    owners = await fetch(
        app_url,
        """SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class
           WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')""",
    )
    database = urlsplit(app_url).path.lstrip("/")
    assert [r["owner"] for r in owners] == [f"{database}_migrate"]


async def test_the_application_role_ingests_and_books(
    app_url: str, mosquitto: BrokerProcess
) -> None:
    """The ingest (its partitions, COPY FROM STDIN, derived state) and an API booking,
    each connected as the application role."""
    async with open_world(app_url) as world:  # seeds the site and people through it
        start = tomorrow(9)
        booked = await world.book("ani", "d1", start, start + timedelta(hours=8))
        assert booked.status == 201, await booked.text()
    running = await _start(_settings(app_url, mosquitto, f"ingest-{uuid.uuid4().hex[:6]}"))
    try:
        publish(mosquitto.port, "ikn/v1/dev/desk-d1/up", encode_batch(_batch(False, True)))
        rows = await eventually(
            lambda: fetch(app_url, "SELECT count(*) AS n FROM readings"), lambda r: r[0]["n"] == 2
        )
        assert rows[0]["n"] == 2
    finally:
        await running.close()
    [state] = await fetch(app_url, "SELECT occupied FROM desk_state WHERE desk_id = 'd1'")
    assert state["occupied"] is True
