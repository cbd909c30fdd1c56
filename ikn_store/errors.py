"""Errors of the storage adapter.

StoreError
├── MigrationError     a migration file is malformed or was changed after it was applied
└── DatabaseUnreachable  a service could not open its database at start
"""

import asyncpg

from ikn_core.errors import IknError

# A connection to PostgreSQL that is gone or broke mid-operation: retry on a new one.
# InternalClientError is asyncpg's word for a connection that broke while a query ran
# ("another operation is in progress" when the server went away under it).
CONNECTION_LOST = (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError)

# The database cannot serve now, whatever was asked: the connection is lost (a pool's
# acquire deadline raises TimeoutError, an OSError), or the server refuses connections
# (class 08, or 57P03 while it starts or stops) or ended the session (57P01 shutdown).
DATABASE_UNAVAILABLE = (
    *CONNECTION_LOST,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)

# What opening a connection raises when it cannot: the above, its timeout, or the
# server's refusal (a database, role or password it does not know).
OPENING_FAILED = (*DATABASE_UNAVAILABLE, TimeoutError, asyncpg.PostgresError)


class StoreError(IknError):
    """Base of the storage adapter's errors."""


class MigrationError(StoreError):
    """The migrations on disk and in the database disagree, or a file is malformed."""


class DatabaseUnreachable(StoreError):
    """A service's first connection to its database failed: no server there, refused,
    a wrong name or password. Its message names the address (no password) and why."""
