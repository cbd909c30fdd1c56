"""Errors of the storage adapter.

StoreError
└── MigrationError     a migration file is malformed or was changed after it was applied
"""

from ikn_core.errors import IknError


class StoreError(IknError):
    """Base of the storage adapter's errors."""


class MigrationError(StoreError):
    """The migrations on disk and in the database disagree, or a file is malformed."""
