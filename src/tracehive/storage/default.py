"""The store ``tracehive serve`` and the CLI open: SQLite under the data dir, as the settings say.

Kept apart from ``tracehive.app`` so that ``tracehive export`` and ``import`` open exactly the same
store (size cap and write timeout included) without importing the web app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracehive.settings import Settings
from tracehive.storage.base import Store

if TYPE_CHECKING:
    from tracehive.storage.sqlite.store import StoreObserver


def default_store(settings: Settings, observer: StoreObserver | None = None) -> Store:
    from tracehive.storage.sqlite import SQLiteStore

    return SQLiteStore(
        settings.database_path,
        readers=settings.reader_threads,
        writer_queue=settings.writer_queue,
        synchronous=settings.sqlite_synchronous,
        observer=observer,
        write_timeout=settings.write_timeout_seconds if settings.write_timeout_seconds > 0 else None,
        max_db_bytes=settings.max_db_bytes,
    )
