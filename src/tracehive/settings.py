"""Settings: one object, read once at start-up from flags and environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "TRACEHIVE_"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8520
    # OTLP/gRPC (TraceService/Export) on this port, same host; 0 = off. Conventionally 4317.
    otlp_grpc_port: int = 0
    # TLS for HTTP and OTLP/gRPC: a PEM certificate (chain) and its private key; both or neither.
    tls_cert: str = ""
    tls_key: str = field(default="", repr=False)
    # OTLP/gRPC calls served at once; past it, RESOURCE_EXHAUSTED (0 = no bound).
    otlp_grpc_max_concurrent_rpcs: int = 64
    # OTLP/HTTP ingest acks once the request is fsync'd in a journal (data_dir/otlp-journal) and
    # indexes it in the background: durable at the ack, queryable a little later. Off: ack after
    # the store commit. Past otlp_journal_max_bytes of unindexed requests: 503 + Retry-After.
    otlp_journal: bool = False
    otlp_journal_max_bytes: int = 512 * 1024 * 1024
    # Worker processes that decode and map large OTLP exports and REST event batches
    # (ingest/decode_pool.py, api/batch_decode.py), so that this work does not share the server's
    # GIL with HTTP and the writer; 0 = a thread (OTLP) or the event loop (REST) instead.
    otlp_decode_processes: int = 1
    data_dir: Path = Path("./tracehive-data")
    # Where projects, keys and events live: empty = SQLite in data_dir (the default, nothing to
    # install); ``postgresql://user@host:port/dbname`` = PostgreSQL (many nodes may share it).
    store: str = ""
    # Where events live when not in ``store`` (issue #14): ``chdb:///abs/dir`` = the ClickHouse
    # engine in-process, ``clickhouse://user:pw@host:8123/db`` = a ClickHouse server (pip install
    # 'tracehive[clickhouse]'); projects, keys and records stay in ``store``. One server process
    # per events store (one writer).
    events_store: str = ""
    # The time limit of one read on the ClickHouse event store (max_execution_time); 0 = none.
    clickhouse_read_timeout_seconds: float = 30.0
    # Bounds on input (contract: bad input is a clear 4xx, never a 500 or an exhausted server).
    # The request line and headers of one request (431 past it, before any key lookup).
    max_header_bytes: int = 32 * 1024
    # A request's head must be complete this long after its first byte (else the connection is
    # closed), and a body must keep arriving at body_min_bytes_per_second after a grace period
    # of header_timeout_seconds (else 408): slow senders cannot hold memory or connections.
    header_timeout_seconds: float = 10.0
    body_min_bytes_per_second: int = 4096
    max_body_bytes: int = 20 * 1024 * 1024
    max_batch_events: int = 10_000
    max_json_depth: int = 64
    # The writer's bounded queue (jobs); past it, writes are shed with 503 + Retry-After.
    writer_queue: int = 1024
    # Request-body bytes being handled at once (bodies and what is parsed from them stay in memory
    # until their write commits); past it, requests are shed with 503 + Retry-After. 0 = no bound.
    # Parsed, typical event JSON takes ~7x its size, so 64 MiB bounds that memory near 0.5 GiB.
    max_inflight_bytes: int = 64 * 1024 * 1024
    # Longest a write waits for the database (another process holding its lock, a writer far
    # behind) before it is withdrawn, unwritten, and answered 503 + Retry-After. 0 = no bound.
    write_timeout_seconds: float = 10.0
    # Size cap of the database file; past it writes get 503 STORAGE_FULL (reads still work) until
    # deletes free pages. 0 = none (the disk is the limit; a full disk is answered the same way).
    max_db_bytes: int = 0
    # SQLite only ----------------------------------------------------------------------------
    reader_threads: int = 4
    # Longest a read (search, chart, list, export page, tree) may run before SQLite is
    # interrupted and the request answered 503; 0 = no bound.
    sqlite_read_timeout_seconds: float = 30.0
    # FULL: every commit is fsynced. NORMAL trades the last commits on power loss for speed.
    sqlite_synchronous: str = "FULL"
    # Heavy reads (searches, charts, lists, exports, trees) one key may run at once; past it, 429.
    max_heavy_reads_per_key: int = 4
    # PostgreSQL only ------------------------------------------------------------------------
    # Connections per node (reads and writes share them); bounded, so N nodes hold N x this.
    postgres_pool_size: int = 10
    # Longest a read may run before PostgreSQL stops it (answered 503); 0 = no bound.
    postgres_statement_timeout_seconds: float = 30.0
    # Write transactions a node runs or queues at once; past it, 503 + Retry-After.
    postgres_max_pending_writes: int = 256
    # How long a resolved API key is trusted before it is looked up again (revocation delay).
    key_cache_seconds: float = 2.0
    # How often the server prunes the events of projects with a retention (tracehive projects
    # update NAME --retention-days N), in seconds; 0 = never (then run tracehive prune yourself).
    retention_interval_seconds: float = 3600.0
    log_level: str = "info"
    # Per-key request rate limit (token bucket per key id, answered with 429); 0 = off.
    rate_limit_per_second: float = 0.0
    # Requests a key may send at once before the rate applies; 0 = the rate rounded up (at least 1).
    rate_limit_burst: int = 0
    # A JSON price file (format in pricing/table.py) whose entries extend or replace the shipped
    # price table that model events without a cost are priced with; empty = the shipped table only.
    prices_file: str = ""
    # Bearer token for GET /metrics; empty = no token opens it. Not a project key: the metrics
    # cover every project, so a project key must not read them. Kept out of repr (never printed).
    metrics_token: str = field(default="", repr=False)
    # Bearer token of the admin routes (/v1/admin/...: projects' retention and redaction rules);
    # empty = those routes are closed. Never a project key. Kept out of repr (never printed).
    admin_token: str = field(default="", repr=False)

    @property
    def database_path(self) -> Path:
        return Path(self.data_dir) / "tracehive.db"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``TRACEHIVE_<FIELD>`` variables, then explicit overrides (CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, raw, cls)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return replace(cls(), **values)


def _convert(name: str, raw: str, cls: type[Settings]) -> Any:
    default = getattr(cls(), name)
    try:
        if isinstance(default, bool):
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {type(default).__name__}") from exc
    if isinstance(default, Path):
        return Path(raw)
    return raw
