"""The PostgreSQL backend: many stateless tracehive nodes over one database."""

from tracehive.storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
