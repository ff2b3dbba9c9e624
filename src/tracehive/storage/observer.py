"""The one interface a store reports through (metrics hooks), whatever the backend.

``tracehive.observability.instruments.ServerMetrics`` implements it; so does the journal applier
process's reporter. A store calls it after its writes commit, never before.
"""

from __future__ import annotations

from typing import Protocol


class StoreObserver(Protocol):
    def events_stored(self, count: int) -> None:
        """On the event loop, once a write of ``count`` events has committed."""

    def group_committed(self, jobs: int, transaction_seconds: float, commit_seconds: float) -> None:
        """After a commit holding ``jobs`` write jobs (SQLite groups many; PostgreSQL commits one
        transaction per job). May be called from a store's own thread: quick and thread-safe."""

    def group_failed(self, jobs: int) -> None:
        """After a commit that failed as a whole (none of its jobs is stored)."""
