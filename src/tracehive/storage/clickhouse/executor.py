"""The executor seam: the only code that talks to a ClickHouse engine.

Everything above this module writes ClickHouse SQL with ``{name:Type}`` query parameters and
hands the values over separately; an executor runs it on chDB (the engine inside this process,
here) or on a server through clickhouse-connect (``http_executor.py``), and nothing else knows which.

Parameters are never formatted into SQL. ClickHouse parses each parameter value from text on its
own (the same way for chDB and for the HTTP interface's ``param_<name>``), so the one thing to get
right is that text: ``render_param`` is the single, audited function that produces it. Rows to
insert go through the input format parser (``JSONCompactEachRow``), never through the SQL parser.

chDB notes:
- One ``Session`` per data directory, and every call on one dedicated thread: chDB's engine state
  is global to the process and its Python binding is not safe to drive from the event loop's
  threads at once; a single-thread executor serialises calls and keeps the event loop free.
- Memory is bounded at start-up (``max_server_memory_usage``, per-query ``max_memory_usage``,
  spilling group-by/sort to disk past a threshold, capped mark cache): a server must shed a
  heavy query with an error, never be killed by the OOM killer.
- ``async_insert=0``: chDB enables asynchronous inserts by default, which would let an insert
  return before its rows are in a part. Every insert here is synchronous: a return means the rows
  are in a committed part (fsynced, see ``schema.py``) and visible to the next query.
- ``input_format_parallel_parsing=0``: with parallel parsing, one insert's data may be cut into
  several blocks, hence several parts; a write batch must land as one part (atomic).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import orjson

from tracehive.model.errors import StoreUnavailable

Params = dict[str, Any]


class Executor(Protocol):
    """Runs SQL on one ClickHouse database; async so that a network server fits the same seam."""

    async def command(self, sql: str, params: Params | None = None) -> None:
        """A statement without a result (DDL, ``DELETE``, ``SET``)."""

    async def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Rows of a ``SELECT`` as tuples of Python values (strings, numbers, None, lists)."""

    async def query_raw(self, sql: str, params: Params | None, fmt: str) -> bytes:
        """The result of a ``SELECT`` as the engine wrote it in output format ``fmt`` (ours)."""

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        """Insert rows synchronously, as one block: when this returns they are stored and readable."""

    async def close(self) -> None: ...

    def describe(self) -> str: ...


# Parameter values -------------------------------------------------------------------------------

# ClickHouse reads a top-level parameter value in the "escaped" (TSV) text format: a backslash
# starts an escape and a raw tab or newline ends the value early. These are the characters that
# must be escaped there; everything else (quotes included) is taken literally.
_ESCAPED = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\b": "\\b", "\f": "\\f",
                          "\x00": "\\0"})
# Inside an array (or tuple) a value is a quoted literal: the same escapes plus the quote itself.
_QUOTED = str.maketrans({"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\b": "\\b",
                         "\f": "\\f", "\x00": "\\0"})


def render_param(value: Any) -> str:
    """``value`` as the text ClickHouse parses a ``{name:Type}`` parameter from. The only place a
    user-supplied value becomes text for the engine; tested against hostile strings
    (tests/storage/test_clickhouse_executor.py). Supports str, bool, int, float, None (for a
    ``Nullable`` type) and lists/tuples of those (for ``Array``)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPED)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_render_element(v) for v in value) + "]"
    return _render_scalar(value)


def _render_element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.translate(_QUOTED) + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_render_element(v) for v in value) + "]"
    return _render_scalar(value)


def _render_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    raise TypeError(f"unsupported query parameter type {type(value).__name__}")


# chDB --------------------------------------------------------------------------------------------

# Defaults for a server process that shares its machine with the app: the engine may take at most
# this much memory in total, and one query this much before it fails (the app answers 503).
# Not 2 GiB: at a 2 GiB cap (measured with chDB 26.9 at 10^7 events) every scan ran at half speed
# (a 7-day count by day 190-210 ms, against 104-120 ms at 2.5, 3 and 4 GiB) though the engine's
# tracked memory stayed under 20 MB; the cap bounds what a query may take, not what the engine holds.
DEFAULT_MAX_SERVER_MEMORY = 4 * 1024**3
DEFAULT_MAX_QUERY_MEMORY = 1024**3


def query_settings(max_query_memory: int) -> dict[str, str]:
    """Settings of every statement, on chDB and on a server: the per-query memory budget, and
    what the store's SQL relies on."""
    spill = max_query_memory // 2
    return {
        "max_memory_usage": str(max_query_memory),
        # Past half the per-query budget, big GROUP BYs and sorts spill to disk instead of failing.
        "max_bytes_before_external_group_by": str(spill),
        "max_bytes_before_external_sort": str(spill),
        "async_insert": "0",
        "input_format_parallel_parsing": "0",
        # Deletes return once rows are hidden from every query (see schema.py).
        "lightweight_deletes_sync": "2",
        "output_format_json_quote_64bit_integers": "0",
        "output_format_json_quote_64bit_floats": "0",
        # FINAL resolves each day's partition alone, and skips the ones that are a single part.
        "do_not_merge_across_partitions_select_final": "1",
        # Under FINAL, conditions on the sorting key (project, time range) go to PREWHERE: the
        # engine only ever moves those there with FINAL (a condition on another column could drop
        # a row's newest version before FINAL saw it), so the result is the same, and rows outside
        # the range are dropped before the other columns are read.
        "optimize_move_to_prewhere_if_final": "1",
        # An insert is merged as a merge would (one version per key) before its part is written:
        # a day that is one part reads the same without FINAL (settled.py). This is the default;
        # set here because that read relies on it.
        "optimize_on_insert": "1",
        # A batch spanning many days writes a part per day rather than failing (days are bounded).
        "max_partitions_per_insert_block": "0",
    }


def chdb_settings(max_server_memory: int, max_query_memory: int, threads: int) -> dict[str, str]:
    """Start-up arguments for the embedded engine (server and default query settings)."""
    return {
        "max_server_memory_usage": str(max_server_memory),
        # Caches are sized for a server, not a laptop: bound them to a slice of the budget.
        "mark_cache_size": str(max_server_memory // 8),
        "index_mark_cache_size": str(max_server_memory // 16),
        "max_threads": str(threads),
        **query_settings(max_query_memory),
    }


_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class _Engine:
    """This process's chDB engine on one directory: its session and the one thread that drives
    it, shared by every executor open on that directory (chDB's engine is global to a process,
    and a session opened again leaks some of the last one's files: so it is opened once and
    closed with its last user)."""

    def __init__(self, path: Path, conn: str) -> None:
        from chdb import session as chdb_session  # optional dependency: tracehive[clickhouse]

        self.path = path
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracehive-chdb")
        self.session: Any = self.pool.submit(chdb_session.Session, conn).result()
        self.users = 0
        self.database = "default"  # the session's current database (``USE``), on the pool's thread


_ENGINES: dict[Path, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


class ThreadedExecutor:
    """The four calls of ``Executor`` over a blocking client: each runs its ``_*_sync`` method
    through ``_run`` (off the event loop, engine errors as ``StoreUnavailable``)."""

    async def _run(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def _query_sync(self, sql: str, params: Params | None) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _raw_sync(self, sql: str, params: Params | None, fmt: str) -> bytes:
        raise NotImplementedError

    def _command_sync(self, sql: str, params: Params | None) -> None:
        raise NotImplementedError

    def _insert_sync(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        raise NotImplementedError

    async def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return await self._run(self._query_sync, sql, params)  # type: ignore[no-any-return]

    async def query_raw(self, sql: str, params: Params | None, fmt: str) -> bytes:
        return await self._run(self._raw_sync, sql, params, fmt)  # type: ignore[no-any-return]

    async def command(self, sql: str, params: Params | None = None) -> None:
        await self._run(self._command_sync, sql, params)

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        return await self._run(self._insert_sync, table, columns, rows)  # type: ignore[no-any-return]


class ChdbExecutor(ThreadedExecutor):
    """Statements on one database of the chDB engine over a directory (``default`` unless
    named), driven from the engine's one thread. Executors on one directory share its engine
    (the first one's memory settings apply); each switches the session to its database before
    its statements."""

    def __init__(self, path: str | os.PathLike[str], *, database: str = "default",
                 max_server_memory: int = DEFAULT_MAX_SERVER_MEMORY, max_query_memory: int = DEFAULT_MAX_QUERY_MEMORY,
                 threads: int | None = None) -> None:
        if not _DATABASE.fullmatch(database):
            raise ValueError(f"not a plain database name: {database!r}")
        self.path = Path(path).resolve()
        self.database = database
        self.path.mkdir(parents=True, exist_ok=True)
        settings = chdb_settings(max_server_memory, max_query_memory, threads or min(os.cpu_count() or 2, 8))
        # The connection string carries start-up arguments; the path is ours (not user input) and
        # the values are numbers or fixed words, so no escaping is needed here.
        conn = f"{self.path}?" + "&".join(f"{k}={v}" for k, v in settings.items())
        with _ENGINES_LOCK:
            engine = _ENGINES.get(self.path)
            if engine is None:
                engine = _ENGINES[self.path] = _Engine(self.path, conn)
            engine.users += 1
        self._engine: _Engine | None = engine
        self._pool = engine.pool
        self._session: Any = engine.session
        if database != "default":
            try:
                self._pool.submit(self._session.query, f"CREATE DATABASE IF NOT EXISTS {database}", "JSONCompact").result()
            except BaseException:
                self._release()
                raise

    def describe(self) -> str:
        return f"chdb://{self.path}" + (f"?database={self.database}" if self.database != "default" else "")

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._session is None:
            raise StoreUnavailable("the ClickHouse event store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._guarded, fn, *args)
        except StoreUnavailable:
            raise
        except Exception as exc:  # chDB raises RuntimeError subclasses carrying the server's text
            raise engine_error(exc) from exc

    def _guarded(self, fn: Any, *args: Any) -> Any:
        engine = self._engine
        if engine is not None and engine.database != self.database:
            self._session.query(f"USE {self.database}", "JSONCompact")  # a checked name
            engine.database = self.database
        try:
            return fn(*args)
        except Exception:
            # chDB 4.4 keeps the output a failed query had begun (e.g. past its memory limit)
            # and prepends it to the next query's result: a throwaway query takes it, so no
            # later read ever sees another query's rows.
            # If even that fails the session is broken; the original error says why.
            with contextlib.suppress(Exception):
                self._session.query("SELECT 1", "JSONCompact")
            raise

    def _query_sync(self, sql: str, params: Params | None) -> list[tuple[Any, ...]]:
        rendered = {k: render_param(v) for k, v in params.items()} if params else None
        data = self._session.query(sql, "JSONCompact", params=rendered).bytes()
        if not data:
            return []
        # One document, or an error: never rows of two queries mixed (see ``_guarded``).
        return [tuple(row) for row in orjson.loads(data)["data"]]

    def _raw_sync(self, sql: str, params: Params | None, fmt: str) -> bytes:
        rendered = {k: render_param(v) for k, v in params.items()} if params else None
        return bytes(self._session.query(sql, fmt, params=rendered).bytes())

    def _command_sync(self, sql: str, params: Params | None) -> None:
        rendered = {k: render_param(v) for k, v in params.items()} if params else None
        self._session.query(sql, "JSONCompact", params=rendered)

    def _insert_sync(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        with self._session.send_insert(f"INSERT INTO {table} ({', '.join(columns)})", "JSONCompactEachRow") as ins:
            ins.append(insert_body(rows))
            result = ins.finish()
        return int(getattr(result, "rows_written", len(rows)))

    def _release(self) -> _Engine | None:
        """Drop this executor's use of the engine; the engine when this was its last user."""
        engine, self._engine, self._session = self._engine, None, None
        if engine is None:
            return None
        with _ENGINES_LOCK:
            engine.users -= 1
            if engine.users > 0:
                return None
            del _ENGINES[engine.path]
        return engine

    async def close(self) -> None:
        engine = self._release()
        if engine is not None:
            await asyncio.get_running_loop().run_in_executor(engine.pool, engine.session.close)
            engine.pool.shutdown(wait=True)


def insert_body(rows: Sequence[Sequence[Any]]) -> bytes:
    """Rows to insert as ``JSONCompactEachRow`` (one JSON array a line): data goes through the
    engine's input format parser, never through the SQL parser; the table's and the columns'
    names in the INSERT come from ``schema.py``, never from a request."""
    dumps = orjson.dumps
    return b"".join(dumps(list(row)) + b"\n" for row in rows)


def engine_error(exc: BaseException) -> StoreUnavailable:
    """A failure of the engine (memory limit, disk, a bug in our SQL) as the retryable API error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "MEMORY_LIMIT_EXCEEDED" in text:
        return StoreUnavailable("the event store ran out of its memory budget for this request; narrow it or retry")
    return StoreUnavailable(f"the event store could not complete the request: {text[:500]}")
