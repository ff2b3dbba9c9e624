"""PostgreSQL for the tests: a fresh database per test, dropped after it.

The server is ``TRACEHIVE_TEST_POSTGRES`` (a URL of a database to connect to for CREATE/DROP
DATABASE), by default the machine's PostgreSQL 15 at 127.0.0.1:5432, user postgres. Where none
answers, tests that need it skip with one line saying so; with ``TRACEHIVE_REQUIRE_POSTGRES=1``
(``.ci/run`` sets it) they fail instead, so CI never passes by skipping them.

Each test's database is a copy of a template migrated once per test process, so a test pays for
CREATE DATABASE (tens of ms), not for the migrations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import uuid
from collections.abc import Iterator
from functools import cache
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

ADMIN_URL = os.environ.get("TRACEHIVE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRED = os.environ.get("TRACEHIVE_REQUIRE_POSTGRES", "") not in ("", "0", "false")


def url_of(dbname: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + dbname))


@cache
def _unavailable() -> str | None:
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL at {ADMIN_URL} ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc})"
    return None


def require_postgres() -> None:
    """Skip (or, where PostgreSQL is required, fail) when no PostgreSQL answers."""
    reason = _unavailable()
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"{reason}, and TRACEHIVE_REQUIRE_POSTGRES is set")
    pytest.skip(reason)


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


@cache
def _template() -> str:
    """A database migrated to the latest schema, copied by every test (one per process)."""
    from tracehive.storage.postgres import PostgresStore

    name = f"th_tmpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    # In a thread of its own: callers may be inside a running event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, PostgresStore(url_of(name)).migrate()).result()
    import atexit

    atexit.register(lambda: _drop(name))
    return name


def _drop(name: str) -> None:
    with contextlib.suppress(psycopg.Error):
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(*, migrated: bool = True) -> str:
    """A new database (a copy of the migrated template, or empty); returns its URL."""
    require_postgres()
    name = f"th_test_{uuid.uuid4().hex[:16]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{_template()}"' if migrated else f'CREATE DATABASE "{name}"')
    return url_of(name)


def drop_database(url: str) -> None:
    _drop(urlsplit(url).path.lstrip("/"))


@contextlib.contextmanager
def fresh_database(*, migrated: bool = True) -> Iterator[str]:
    url = create_database(migrated=migrated)
    try:
        yield url
    finally:
        drop_database(url)
