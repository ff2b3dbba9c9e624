"""The executor seam over a ClickHouse server's HTTP interface, through clickhouse-connect.

``clickhouse://user:password@host:8123/db`` (``clickhouses://`` for HTTPS, port 8443 by default).
It keeps the contract of ``executor.py``, so the store above cannot tell it from chDB:

- Parameters: the SQL keeps its ``{name:Type}`` placeholders and each value travels as the URL
  (or form) field ``param_<name>``, whose text is ``render_param``'s, byte for byte. We do not let
  clickhouse-connect render values: its escaping differs (``True`` becomes ``"True"``, which a
  ``UInt8`` parameter refuses; a NUL byte is sent raw). Each value is wrapped in ``_Rendered``,
  which clickhouse-connect's ``format_bind_value`` passes through ``str()`` unchanged (its
  fallback for types it does not know); tests/storage/test_clickhouse_http.py checks that.
- Results: ``FORMAT JSONCompact`` parsed by orjson, the same bytes-to-values path as chDB's, so
  both executors return the same Python values.
- Inserts: ``INSERT ... FORMAT JSONCompactEachRow`` with the rows in the request body, synchronous
  (``async_insert=0``: the response comes after the part is written) and parsed as one stream
  (``input_format_parallel_parsing=0``), hence one block and one part for a batch below
  ``max_insert_block_size`` rows (about a million; write batches are far smaller).
- On a replicated cluster, ``?quorum=auto`` adds ``insert_quorum='auto'`` (a returned insert is on
  a majority of replicas), ``select_sequential_consistency=1`` (a read sees every insert that
  returned) and ``distributed_foreground_insert=1`` (an insert into the Distributed table of
  ``cluster.py`` returns once forwarded to the shards). Not needed, and not tested here, on a single server.
- Every request carries the per-query limits (``max_memory_usage``, spilling past half of it) and
  the output settings the parser relies on; query reads add ``max_execution_time`` themselves.

clickhouse-connect is synchronous: its calls run on a small thread pool so the event loop stays
free. Its client is shared by those threads, which is safe without an HTTP session (we turn the
automatic ``session_id`` off: a session allows one query at a time). The client connects (and
asks the server for its version and settings) on first use, in the pool, so opening never blocks
the loop and an unreachable server is a ``StoreUnavailable`` that the next call retries.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from tracehive.model.errors import StoreUnavailable
from tracehive.storage.clickhouse.executor import (
    DEFAULT_MAX_QUERY_MEMORY,
    Params,
    ThreadedExecutor,
    engine_error,
    insert_body,
    query_settings,
    render_param,
)

HTTP_SCHEMES = {"clickhouse": ("http", 8123), "clickhouses": ("https", 8443)}
# Few threads: each holds one HTTP connection; the store has one writer and reads are bounded by
# the server's own limits, so more threads would only queue work on the server.
DEFAULT_THREADS = 4


@dataclass(frozen=True)
class HttpTarget:
    """Where a ``clickhouse://`` URL points. The password is kept out of ``repr`` and messages."""

    interface: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    database: str
    quorum: str = ""

    @classmethod
    def from_url(cls, url: str) -> HttpTarget:
        """Parse ``clickhouse[s]://user:password@host:port/db[?quorum=auto]``; ValueError if malformed."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in HTTP_SCHEMES:
            raise ValueError(f"not a ClickHouse HTTP URL (scheme {scheme!r}): use clickhouse://host:8123/db")
        if not parts.hostname:
            raise ValueError("the URL names no host: use clickhouse://user:password@host:8123/db")
        interface, default_port = HTTP_SCHEMES[scheme]
        try:
            port = parts.port or default_port
        except ValueError:
            raise ValueError("the URL's port is not a number") from None
        database = unquote(parts.path.strip("/")) or "default"
        if "/" in database:
            raise ValueError("the URL's path must be one database name: clickhouse://host:8123/db")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        quorum = options.pop("quorum", "")
        if options:
            raise ValueError(f"unknown URL options {sorted(options)}: the only one is quorum=auto (or a number)")
        if quorum and quorum != "auto" and not quorum.isdigit():
            raise ValueError("quorum must be 'auto' or a number of replicas")
        return cls(interface, parts.hostname, port, unquote(parts.username or "default"),
                   unquote(parts.password or ""), database, quorum)

    def describe(self) -> str:
        """The URL without its password, for logs, messages and ``describe()``."""
        scheme = "clickhouses" if self.interface == "https" else "clickhouse"
        host = f"[{self.host}]" if ":" in self.host else self.host
        quorum = f"?quorum={self.quorum}" if self.quorum else ""
        return f"{scheme}://{self.username}@{host}:{self.port}/{self.database}{quorum}"


def http_settings(max_query_memory: int, quorum: str = "") -> dict[str, str]:
    """Settings sent with every request: the per-query part of ``chdb_settings`` (a server's own
    memory and caches are its operator's), plus the quorum on a replicated cluster."""
    settings = query_settings(max_query_memory)
    if quorum:
        settings["insert_quorum"] = quorum
        settings["select_sequential_consistency"] = "1"
        # Through a Distributed table (cluster.py), an insert returns once the shards have it.
        settings["distributed_foreground_insert"] = "1"
    return settings


class _Rendered:
    """A parameter value already rendered by ``render_param``. Not a ``str`` on purpose:
    clickhouse-connect escapes strings itself but sends ``str(value)`` for unknown types."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def bind(params: Params | None) -> dict[str, _Rendered] | None:
    """``params`` as clickhouse-connect parameters whose ``param_<name>`` text is ours."""
    return {name: _Rendered(render_param(value)) for name, value in params.items()} if params else None


# clickhouse-connect's wrapping of a server's error: a prefix, and the server's version and the
# URL at the end. What is left is the server's own line, as chDB gives it.
_SERVER_PREFIX = re.compile(r"^Received ClickHouse exception, code: \d+, server response: ")
_SERVER_SUFFIX = re.compile(r"(\s*\(version\s+(?:[^()]|\([^()]*\))*\))?(\s*\(for url [^()]*\))?\s*$")


class HttpExecutor(ThreadedExecutor):
    """One ClickHouse database over HTTP, its blocking client driven from a few threads."""

    def __init__(self, target: HttpTarget, *, max_query_memory: int = DEFAULT_MAX_QUERY_MEMORY,
                 threads: int = DEFAULT_THREADS, connect_timeout: float = 5.0,
                 send_receive_timeout: float = 300.0) -> None:
        import clickhouse_connect  # noqa: F401 - optional dependency: tracehive[clickhouse]; fail early

        self.target = target
        self._settings = http_settings(max_query_memory, target.quorum)
        self._timeouts = (connect_timeout, send_receive_timeout)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tracehive-clickhouse")
        self._connect_lock = threading.Lock()
        self._client: Any = None
        self._closed = False

    def describe(self) -> str:
        return self.target.describe()

    # Plumbing ----------------------------------------------------------------------------------

    def _connected(self) -> Any:
        """The client, created on first use (in a pool thread: it talks to the server)."""
        with self._connect_lock:
            if self._client is None:
                import clickhouse_connect

                t = self.target
                self._client = clickhouse_connect.get_client(
                    interface=t.interface, host=t.host, port=t.port, username=t.username, password=t.password,
                    database=t.database, settings=self._settings,
                    # No HTTP session: the pool's threads share the client and a session serialises.
                    autogenerate_session_id=False,
                    # Our reads are JSON documents parsed whole; compression would only cost CPU on
                    # a local network, and its negotiation is one more thing to differ from chDB.
                    compress=False,
                    connect_timeout=self._timeouts[0], send_receive_timeout=self._timeouts[1],
                    # Our own connection pool, sized for our threads and closed by ``close``.
                    dedicated_pool=True,
                    client_name="tracehive",
                )
            return self._client

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._closed:
            raise StoreUnavailable("the ClickHouse event store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn, *args)
        except StoreUnavailable:
            raise
        except Exception as exc:  # clickhouse-connect's DatabaseError/OperationalError, urllib3, OS errors
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> StoreUnavailable:
        """The server's own message (as chDB's), or why it could not be reached; never the password."""
        server_code = getattr(exc, "code", None)
        text = _SERVER_SUFFIX.sub("", _SERVER_PREFIX.sub("", str(exc).strip()), count=1)
        if server_code is None and not text.startswith("Code:"):
            reason = _network_reason(exc)
            if reason:
                text = f"cannot reach ClickHouse at {self.describe()} ({reason})"
        error = engine_error(RuntimeError(text))
        password = self.target.password
        if password and password in str(error):
            error = StoreUnavailable(str(error).replace(password, "***"))
        return error

    # The calls of the seam -----------------------------------------------------------------------

    def _query_sync(self, sql: str, params: Params | None) -> list[tuple[Any, ...]]:
        data = self._connected().raw_query(sql, parameters=bind(params), fmt="JSONCompact")
        if not data:
            return []
        return [tuple(row) for row in orjson.loads(data)["data"]]

    def _raw_sync(self, sql: str, params: Params | None, fmt: str) -> bytes:
        return bytes(self._connected().raw_query(sql, parameters=bind(params), fmt=fmt))

    def _command_sync(self, sql: str, params: Params | None) -> None:
        # raw_query rather than command: no result parsing, and the same binding path as reads.
        self._connected().raw_query(sql, parameters=bind(params))

    def _insert_sync(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        # The rows in the request body, after the INSERT (see ``insert_body``).
        summary = self._connected().raw_insert(table, list(columns), insert_body(rows), fmt="JSONCompactEachRow")
        return summary.written_rows or len(rows)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Calls already queued finish first; then the client's connections are closed.
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
        if self._client is not None:
            client, self._client = self._client, None
            client.close()


def _network_reason(exc: BaseException) -> str:
    """A short cause for a failure to reach the server (refused, timed out, name unknown), taken
    from the exception chain; "" if it is not one. Never the request URL: it holds the values."""
    seen: BaseException | None = exc
    for _ in range(16):  # a chain is short; a cycle must not hang an error path
        if seen is None:
            break
        if isinstance(seen, TimeoutError) or "Timeout" in type(seen).__name__:
            return "timed out"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, OSError) and seen.strerror:
            return str(seen.strerror)
        reason = getattr(seen, "reason", None)  # urllib3's MaxRetryError carries its cause here
        if isinstance(reason, BaseException) and reason is not seen:
            inner = _network_reason(reason)
            if inner:
                return inner
        seen = seen.__cause__ or seen.__context__
    return ""
