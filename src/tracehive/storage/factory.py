"""The store the settings name: the one place that maps a store URL to a backend.

``tracehive serve``, every CLI command and the journal's applier process open their store here, so
they all open the same one (size cap, timeouts and pool included) without importing the web app.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from tracehive.model.errors import ValidationFailed
from tracehive.settings import Settings
from tracehive.storage.base import EventStore, Store, WriteLeases
from tracehive.storage.observer import StoreObserver

POSTGRES_SCHEMES = ("postgresql", "postgres")


CHDB_SCHEME = "chdb"
CLICKHOUSE_HTTP_SCHEMES = ("clickhouse", "clickhouses")


def store_from_settings(settings: Settings, observer: StoreObserver | None = None) -> Store:
    control = _control_store(settings, observer)
    events_url = settings.events_store.strip()
    if not events_url:
        return control
    from tracehive.storage.clickhouse import CombinedStore

    return CombinedStore(control, _events_store(events_url, settings, control.write_leases()))


def _events_store(url: str, settings: Settings, leases: WriteLeases | None) -> EventStore:
    """``chdb:///abs/dir[?database=name]``: ClickHouse in-process on that directory (one engine per
    directory and process; databases in it are separate stores); ``clickhouse://user:pw@host:8123/db``
    (``clickhouses://`` for HTTPS): a ClickHouse server over HTTP, which the nodes of one control
    store share when it hands out write ``leases`` (PostgreSQL does)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    read_timeout = settings.clickhouse_read_timeout_seconds or None
    if scheme == CHDB_SCHEME and not parts.netloc and parts.path.startswith("/"):
        try:
            from tracehive.storage.clickhouse import ClickHouseEventStore
            from tracehive.storage.clickhouse.executor import ChdbExecutor  # noqa: F401 - needs chdb
        except ImportError as exc:
            raise ValidationFailed(
                f"--events-store {redact_url(url)!r} needs chDB: pip install 'tracehive[clickhouse]' ({exc})"
            ) from None
        options = parse_qs(parts.query, keep_blank_values=True)
        database = options.pop("database", ["default"])[-1]
        if options or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", database):
            raise ValidationFailed(f"--events-store {redact_url(url)!r}: the only option of chdb:// is "
                                   "?database=<name> (letters, digits, _)")
        return ClickHouseEventStore.chdb(Path(parts.path), database=database, read_timeout=read_timeout)
    if scheme in CLICKHOUSE_HTTP_SCHEMES:
        try:
            import clickhouse_connect  # noqa: F401 - the HTTP client

            from tracehive.storage.clickhouse import ClickHouseEventStore
        except ImportError as exc:
            raise ValidationFailed(
                f"--events-store {redact_url(url)!r} needs clickhouse-connect: "
                f"pip install 'tracehive[clickhouse]' ({exc})"
            ) from None
        try:
            return ClickHouseEventStore.http(url, read_timeout=read_timeout, leases=leases)
        except ValueError as exc:
            raise ValidationFailed(f"--events-store {redact_url(url)!r}: {exc}") from None
    raise ValidationFailed(
        f"unsupported events store URL {redact_url(url)!r}: use chdb:///absolute/dir (ClickHouse "
        "in-process) or clickhouse://user:password@host:8123/db (a ClickHouse server over HTTP)"
    )


def _control_store(settings: Settings, observer: StoreObserver | None) -> Store:
    url = settings.store.strip()
    if not url:
        from tracehive.storage.sqlite import SQLiteStore

        return SQLiteStore(
            settings.database_path,
            readers=settings.reader_threads,
            read_timeout=settings.sqlite_read_timeout_seconds or None,
            writer_queue=settings.writer_queue,
            synchronous=settings.sqlite_synchronous,
            observer=observer,
            write_timeout=settings.write_timeout_seconds if settings.write_timeout_seconds > 0 else None,
            max_db_bytes=settings.max_db_bytes,
        )
    scheme = urlsplit(url).scheme.lower()
    if scheme in POSTGRES_SCHEMES:
        from tracehive.storage.postgres import PostgresStore

        return PostgresStore(
            url,
            pool_size=settings.postgres_pool_size,
            statement_timeout=settings.postgres_statement_timeout_seconds,
            max_pending_writes=settings.postgres_max_pending_writes,
            write_timeout=settings.write_timeout_seconds if settings.write_timeout_seconds > 0 else None,
            observer=observer,
        )
    raise ValidationFailed(
        f"unsupported store URL {redact_url(url)!r}: use postgresql://user@host:port/dbname, "
        "or no --store for SQLite in the data dir"
    )


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by ***, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))
