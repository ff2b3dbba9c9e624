"""The embedded SQLite backend: WAL, one group-committing writer, pooled readers."""

from tracehive.storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
