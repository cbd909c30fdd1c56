"""Least privilege in PostgreSQL: a migration role that owns the schema, and an
application role that only reads and writes rows.

``ikn migrate`` with ``IKN_DATABASE_MIGRATE_URL`` (an administrator: the superuser the
postgres image creates) calls :func:`migrate_with_roles`, which

- creates or updates the **migration role** ``<database>_migrate`` (NOLOGIN, no
  superuser, cannot create roles or databases) and gives it every object of the
  schema (those of an older install, owned by the administrator, too), and the right
  to create in the database and its ``public`` schema;
- applies the migrations as that role (``SET ROLE``), so that it owns what they make;
- creates or updates the **application role** named by ``IKN_DATABASE_URL`` with that
  URL's password (sent as a SCRAM verifier, so no statement log holds the password):
  LOGIN, no superuser, cannot create roles or databases, no replication, no RLS
  bypass, member of no role (so neither ``pg_execute_server_program``, which ``COPY ...
  PROGRAM`` needs, nor ``pg_read_server_files``), owner of nothing; it gets SELECT,
  INSERT, UPDATE, DELETE on the tables (SELECT only on ``schema_migrations`` and
  ``schema_sources``), the
  sequences, EXECUTE on the functions, now and for what later migrations create.

The ingest's COPY FROM STDIN needs INSERT only; its daily partitions are made and
dropped through the SECURITY DEFINER functions readings_partition_create and
readings_partition_drop (ikn_store/sql/ingest/).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import asyncpg

from ikn_store.errors import MigrationError
from ikn_store.migrations import Migration, migrate

_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)
# Objects of an install migrated before the roles (by the administrator) become the
# migration role's, so that later migrations may alter them. Sequences of columns
# ('a', 'i') follow their table, an extension's objects ('e') its extension; a
# partition (also 'a', on its parent) is changed on its own.
ADOPT = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace
               AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relowner <> '{owner}'::regrole
               AND NOT EXISTS (
                   SELECT 1 FROM pg_depend d WHERE d.objid = c.oid
                   AND (d.deptype = 'e' OR c.relkind = 'S' AND d.deptype IN ('a', 'i'))) LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO {owner}', r.name);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> '{owner}'::regrole
               AND NOT EXISTS (SELECT 1 FROM pg_depend d
                               WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO {owner}', r.name);
    END LOOP;
END
$$
"""


@dataclass(frozen=True, slots=True)
class Roles:
    database: str
    app: str
    app_password: str = field(repr=False)

    @classmethod
    def from_url(cls, app_url: str) -> Roles:
        """The roles for the database and application role of ``IKN_DATABASE_URL``."""
        parts = urlsplit(app_url)
        database = unquote(parts.path.lstrip("/"))
        app = unquote(parts.username or "")
        for what, name in (("database", database), ("user", app)):
            if not _ROLE.fullmatch(name):
                raise MigrationError(
                    f"IKN_DATABASE_URL: the {what} name {name!r} must match {_ROLE.pattern}"
                )
        if not parts.password:
            raise MigrationError("IKN_DATABASE_URL: the application role needs a password")
        return cls(database, app, unquote(parts.password))

    @property
    def owner(self) -> str:
        return f"{self.database}_migrate"


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5803)."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    b64 = [base64.b64encode(x).decode() for x in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64[0]}${b64[1]}:{b64[2]}"


async def migrate_with_roles(admin: asyncpg.Connection, roles: Roles) -> list[Migration]:
    """Roles, ownership, migrations as the migration role, then the grants."""
    me = await admin.fetchval("SELECT current_user")
    if me == roles.app:
        raise MigrationError(
            f"IKN_DATABASE_URL's user {roles.app} is IKN_DATABASE_MIGRATE_URL's: the "
            "application role must be another one"
        )
    await _owner_role(admin, roles)
    await admin.execute(f"SET ROLE {roles.owner}")
    try:
        applied = await migrate(admin)
    finally:
        await admin.execute("RESET ROLE")
    await _app_role(admin, roles)
    return applied


async def _ensure_role(conn: asyncpg.Connection, name: str, attributes: str) -> None:
    exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", name)
    await conn.execute(f"{'ALTER' if exists else 'CREATE'} ROLE {name} {attributes}")


async def _owner_role(admin: asyncpg.Connection, roles: Roles) -> None:
    owner = roles.owner
    await _ensure_role(admin, owner, "NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
    await admin.execute(f"GRANT {owner} TO current_user")  # to SET ROLE (a superuser may anyway)
    await admin.execute(f"GRANT CREATE, CONNECT, TEMPORARY ON DATABASE {roles.database} TO {owner}")
    await admin.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {owner}")
    await admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # PostgreSQL < 15
    await admin.execute(ADOPT.format(owner=owner))


async def _app_role(admin: asyncpg.Connection, roles: Roles) -> None:
    app, owner = roles.app, roles.owner
    verifier = scram_verifier(roles.app_password)
    attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    await _ensure_role(admin, app, f"{attributes} PASSWORD '{verifier}'")
    granted = await admin.fetch(
        """SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
           WHERE m.member = $1::regrole""",
        app,
    )
    for (role,) in granted:  # a member of no role: no inherited rights
        await admin.execute(f'REVOKE "{role}" FROM {app}')
    rights = {
        "TABLES": "SELECT, INSERT, UPDATE, DELETE",
        "SEQUENCES": "USAGE, SELECT, UPDATE",
        "FUNCTIONS": "EXECUTE",
    }
    await admin.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {roles.database} TO {app}")
    await admin.execute(f"GRANT USAGE ON SCHEMA public TO {app}")
    for kind, what in rights.items():
        await admin.execute(f"GRANT {what} ON ALL {kind} IN SCHEMA public TO {app}")
        await admin.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
            f"GRANT {what} ON {kind} TO {app}"
        )
    for table in ("schema_migrations", "schema_sources"):
        await admin.execute(f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM {app}")
