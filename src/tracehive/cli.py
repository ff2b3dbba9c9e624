"""The ``tracehive`` command: serve, keys, projects, export, import, prices."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tracehive import __version__
from tracehive.cli_backup import add_commands as add_backup_commands
from tracehive.cli_projects import add_project_commands, add_prune_command
from tracehive.model.errors import ApiError, ValidationFailed
from tracehive.model.event import Event
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.event_query import EventQuery
from tracehive.query.filters import parse_export_request
from tracehive.settings import Settings
from tracehive.storage.base import Project, Store

T = TypeVar("T")
DEFAULT_PROJECT = "default"


def _with_store(settings: Settings, fn: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store ``tracehive serve`` would open (without importing the web app), run ``fn``."""
    from tracehive.storage.factory import store_from_settings

    async def run() -> T:
        store = store_from_settings(settings)
        await store.open()
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        host=getattr(args, "host", None), port=getattr(args, "port", None), data_dir=getattr(args, "data_dir", None),
        otlp_grpc_port=getattr(args, "otlp_grpc_port", None), store=getattr(args, "store", None),
        events_store=getattr(args, "events_store", None),
        tls_cert=getattr(args, "tls_cert", None), tls_key=getattr(args, "tls_key", None),
        prices_file=getattr(args, "prices_file", None),
    )


def tls_problem(settings: Settings) -> str | None:
    """Why the TLS settings cannot work (one line), or None."""
    if bool(settings.tls_cert) != bool(settings.tls_key):
        return "--tls-cert and --tls-key go together: give both (or neither, for plain HTTP)"
    for what, path in (("--tls-cert", settings.tls_cert), ("--tls-key", settings.tls_key)):
        if path:
            try:
                with open(path, "rb") as f:
                    if b"-----BEGIN " not in f.read(1 << 20):
                        return f"{what} {path}: not a PEM file"
            except OSError as exc:
                return f"{what} {path}: {exc.strerror}"
    return None


def _where(settings: Settings) -> str:
    """Where the data lives, for messages: the store URL (password hidden) or the data dir's
    absolute path (a relative one depends on where the command ran)."""
    from tracehive.storage.factory import redact_url

    return redact_url(settings.store) if settings.store else str(settings.data_dir.expanduser().absolute())


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


# serve -----------------------------------------------------------------------------------------


async def _bootstrap(store: Store) -> str | None:
    """With no project yet, create ``default`` and mint one project key (shown once)."""
    if await store.list_projects():
        return None
    project, created = await store.ensure_project(DEFAULT_PROJECT)
    if not created:  # another node sharing the database started at the same moment and made it
        return None
    _, key = await store.create_key(project.project_id, KeyKind.PROJECT)
    return key


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tracehive.api.http_limits import guarded_protocol
    from tracehive.app import create_app
    from tracehive.observability.logging import log_config
    from tracehive.serve_guard import DataDirLock, GuardError, bind_listener, prepare_data_dir

    settings = _settings(args)
    problem = tls_problem(settings)
    if problem:
        return _fail("serve", problem, 2)
    if settings.prices_file:
        from tracehive.pricing import PriceFileError, read_file

        try:
            read_file(settings.prices_file)
        except PriceFileError as exc:
            return _fail("serve", f"--prices-file {exc}", 2)
    scheme = "https" if settings.tls_cert else "http"
    # The data dir and the port are ours before anything is printed or opened (serve_guard.py).
    try:
        data_dir = prepare_data_dir(settings.data_dir)
        lock = DataDirLock(data_dir)
        lock.acquire(f"pid {os.getpid()}, {scheme}://{settings.host}:{settings.port}")
        listener = bind_listener(settings.host, settings.port)
    except GuardError as exc:
        return _fail("serve", str(exc), 1)
    try:
        key = _with_store(settings, _bootstrap)
        if key is not None:
            print(f"Created project '{DEFAULT_PROJECT}'. Its API key is shown only this once:", flush=True)
            print(key, flush=True)
        port = listener.getsockname()[1]
        print(f"tracehive {__version__} serving on {scheme}://{settings.host}:{port} (data in {_where(settings)})",
              flush=True)
        if settings.otlp_grpc_port:
            print(f"OTLP/gRPC on {settings.host}:{settings.otlp_grpc_port}", flush=True)
        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=port,
            log_level=settings.log_level,
            # JSON lines on stderr; the access line is tracehive's own (request id, no query string).
            log_config=log_config(settings.log_level),
            access_log=False,
            loop="auto",
            # httptools with bounds on the request head (size, time), checked while parsing.
            http=guarded_protocol(settings.max_header_bytes, settings.header_timeout_seconds),
            timeout_graceful_shutdown=10,
            ssl_certfile=settings.tls_cert or None,
            ssl_keyfile=settings.tls_key or None,
        )
        server = uvicorn.Server(config)
        server.run(sockets=[listener])
        # uvicorn.run's rule: a server that never finished starting (e.g. the app's start-up
        # failed) exits with 3.
        return 0 if server.started else 3
    finally:
        listener.close()
        lock.release()


# keys and projects -----------------------------------------------------------------------------


def cmd_keys_create(args: argparse.Namespace) -> int:
    kind = KeyKind(args.kind)

    async def run(store: Store) -> str:
        project, created = await store.ensure_project(args.project)
        record, key = await store.create_key(project.project_id, kind)
        if created:
            print(f"Created project '{project.name}' ({project.project_id}).")
        print(f"Created {kind.value} key {record.key_id} for project '{project.name}'. It is shown only once:")
        return key

    print(_with_store(_settings(args), run))
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys = _with_store(_settings(args), lambda s: s.list_keys())
    print(f"{'KEY ID':<26}{'KIND':<11}{'PROJECT':<20}{'CREATED':<22}STATUS")
    for k in keys:
        status = f"revoked {_when(k.revoked_at)}" if k.revoked_at else "active"
        print(f"{k.key_id:<26}{k.kind.value:<11}{k.project_name:<20}{_when(k.created_at):<22}{status}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    if _with_store(_settings(args), lambda s: s.revoke_key(args.key_id)):
        print(f"Revoked key {args.key_id}.")
        return 0
    print(f"No active key with id {args.key_id}.", file=sys.stderr)
    return 1


def cmd_projects_list(args: argparse.Namespace) -> int:
    projects = _with_store(_settings(args), lambda s: s.list_projects())
    print(f"{'PROJECT ID':<38}{'NAME':<24}CREATED")
    for p in projects:
        print(f"{p.project_id:<38}{p.name:<24}{_when(p.created_at)}")
    return 0


# migrate ---------------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the store's schema up to date; safe while other nodes start or run."""
    from tracehive.storage.factory import store_from_settings

    settings = _settings(args)
    try:
        store = store_from_settings(settings)
        version = asyncio.run(store.migrate())
    except ApiError as exc:
        return _fail("migrate", exc.message)
    print(f"Schema of {store.describe()} is at version {version}.")
    return 0


def cmd_clickhouse_ddl(args: argparse.Namespace) -> int:
    """Print the DDL of a ClickHouse cluster's tables (run it there, then serve with
    --events-store clickhouse://...?quorum=auto)."""
    from tracehive.storage.clickhouse.cluster import cluster_ddl, cluster_upgrade_ddl

    try:
        if args.upgrade_from is None:
            statements = cluster_ddl(args.cluster, args.database)
        else:
            statements = cluster_upgrade_ddl(args.cluster, args.database, args.upgrade_from)
    except ValueError as exc:
        return _fail("clickhouse-ddl", str(exc), 2)
    if not statements:
        print(f"-- the tables are at schema version {args.upgrade_from}: nothing to run")
        return 0
    print(";\n\n".join(statements) + ";")
    return 0


# export and import -----------------------------------------------------------------------------

_CLI_OPERATORS = ("exists", "not exists", "is", "is not", "contains", "not contains", "greater than",
                  "less than", "after", "before")
_RELATIVE_SINCE = re.compile(r"\d{1,9}[mhdw]")


MAX_PROJECT_NAME = 200


def project_name(text: str) -> str:
    """``--project``: the name without surrounding spaces; blank, overlong or control characters
    are refused (argparse prints the reason and exits 2), so no project is named by accident."""
    name = text.strip()
    if not name:
        raise argparse.ArgumentTypeError("a project name cannot be empty or blank")
    if len(name) > MAX_PROJECT_NAME:
        raise argparse.ArgumentTypeError(f"a project name is at most {MAX_PROJECT_NAME} characters")
    if any(not ch.isprintable() for ch in name):
        raise argparse.ArgumentTypeError("a project name cannot hold control characters")
    return name


def _fail(command: str, message: str, code: int = 1) -> int:
    print(f"tracehive {command}: {message}", file=sys.stderr)
    return code


def _cli_filter(tokens: list[str], index: int) -> dict[str, Any]:
    """``FIELD OP [VALUE]``; OP may be quoted (``"greater than"``), written with an underscore
    (``greater_than``) or given as two words (``greater than``)."""
    if len(tokens) < 2:
        raise ValueError(f"--filter #{index + 1}: expected FIELD OPERATOR [VALUE], got {' '.join(tokens)!r}")
    field, rest = tokens[0], tokens[1:]
    operator = rest[0]
    for n in (2, 1):
        candidate = " ".join(rest[:n]).lower().replace("_", " ")
        if len(rest) >= n and candidate in _CLI_OPERATORS:
            operator, rest = candidate, rest[n:]
            break
    else:
        rest = rest[1:]
    if len(rest) > 1:
        raise ValueError(f"--filter #{index + 1}: too many values {rest!r} (quote a value that has spaces)")
    return {"field": field, "operator": operator, "value": rest[0] if rest else None}


def _export_query(args: argparse.Namespace) -> EventQuery:
    body: dict[str, Any] = {"filters": [_cli_filter(t, i) for i, t in enumerate(args.filter or [])]}
    if args.since:
        since = args.since.strip()
        body["dateRange"] = {"relative": since} if _RELATIVE_SINCE.fullmatch(since) else since
    return parse_export_request(body)


def _scope_of(project: Project) -> Scope:
    return Scope(org_id=project.org_id, workspace_id=project.workspace_id, project_id=project.project_id,
                 project_name=project.name, redact=project.redact)


def _with_records(args: argparse.Namespace) -> bool:
    """Whether an export carries the project's records: as asked (``--records``/``--no-records``),
    else when it is JSONL of the whole project (no ``--filter``, no ``--since``)."""
    if args.records is not None:
        return bool(args.records)
    return args.format == "jsonl" and not args.filter and not args.since


def cmd_export(args: argparse.Namespace) -> int:
    import csv
    import io
    import os

    from tracehive import transfer
    from tracehive.experiments import transfer_records

    settings = _settings(args)
    if args.records and args.format == "csv":
        return _fail("export", "--records: a CSV export holds events only (use --format jsonl)", 2)
    try:
        query = _export_query(args)
    except (ValueError, ValidationFailed) as exc:
        return _fail("export", str(exc), 2)
    with_records = _with_records(args)

    async def run(store: Store) -> tuple[int, int] | str:
        projects = {p.name: p for p in await store.list_projects()}
        if args.project not in projects:
            return f"no project named {args.project!r}; projects: {', '.join(sorted(projects)) or '(none)'}"
        scope = _scope_of(projects[args.project])
        progress = transfer.Progress("exported")
        records = 0
        temp = f"{args.output}.partial" if args.output else None
        # An export holds every event's payload: the file is private to the user (0600).
        raw: Any = os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") if temp else sys.stdout.buffer
        try:
            if args.format == "csv":
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=False)
                # RFC 4180's CRLF: the writer quotes a field holding any character of the line
                # terminator, so a bare carriage return in a value stays inside its cell.
                writer = csv.writer(text, lineterminator="\r\n")
                writer.writerow(transfer.COLUMNS)
                async for chunk in store.iter_events(scope, query):
                    writer.writerows(transfer.csv_row(e) for e in chunk)
                    progress.add(len(chunk))
                text.flush()
                text.detach()
            else:
                if with_records:  # the records first: see transfer.py
                    async for _, record_lines in transfer_records.iter_record_lines(store, scope):
                        raw.write(b"".join(record_lines))
                        records += len(record_lines)
                async for lines in store.iter_event_lines(scope, query, scope_fields=False):
                    raw.write(b"".join(lines))
                    progress.add(len(lines))
            raw.flush()
        finally:
            if temp:
                raw.close()
        if temp:
            os.replace(temp, args.output)
        progress.done()
        return progress.count, records

    try:
        outcome = _with_store(settings, run)
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        sys.stderr.close()
        return 0
    finally:
        if args.output and os.path.exists(f"{args.output}.partial"):
            os.unlink(f"{args.output}.partial")
    if isinstance(outcome, str):
        return _fail("export", outcome)
    events, records = outcome
    if args.output:
        also = f" and {records:,} record{'s' if records != 1 else ''}" if records else ""
        print(f"Exported {events:,} events{also} to {args.output}.", file=sys.stderr)
    return 0


IMPORT_BATCH = 1000
MAX_REPORTED_LINES = 20


def cmd_import(args: argparse.Namespace) -> int:
    from collections import Counter

    from tracehive import transfer
    from tracehive.experiments import transfer_records
    from tracehive.ingest.redact_writes import redact_events
    from tracehive.storage.records import Record, RecordKind

    settings = _settings(args)
    try:
        source: Any = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        return _fail("import", f"cannot read {args.file}: {exc.strerror}")

    async def run(store: Store) -> tuple[int, Counter[RecordKind], list[tuple[int, str]], int]:
        project, _ = await store.ensure_project(args.project)
        scope = _scope_of(project)
        progress = transfer.Progress("imported")
        batch: list[Event] = []
        records: list[Record] = []
        kinds: Counter[RecordKind] = Counter()
        bad: list[tuple[int, str]] = []
        bad_count = 0
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                entry = transfer.parse_entry(line)
            except ValueError as exc:
                bad_count += 1
                if len(bad) < MAX_REPORTED_LINES:
                    bad.append((number, str(exc)))
                continue
            if isinstance(entry, Record):
                records.append(entry)
                if len(records) >= args.batch_size:
                    await transfer_records.import_records(store, scope, records)
                    kinds.update(r.kind for r in records)
                    records = []
                continue
            batch.append(entry)
            if len(batch) >= args.batch_size:
                redact_events(scope, batch)  # the project's rules apply to imports too
                await store.import_events(scope, batch)  # one atomic commit per batch
                progress.add(len(batch))
                batch = []
        if records:
            await transfer_records.import_records(store, scope, records)
            kinds.update(r.kind for r in records)
        if batch:
            redact_events(scope, batch)
            await store.import_events(scope, batch)
            progress.add(len(batch))
        progress.done()
        return progress.count, kinds, bad, bad_count

    try:
        count, kinds, bad, bad_count = _with_store(settings, run)
    except ApiError as exc:
        # The batches committed so far stay; importing again skips them (ids are kept).
        return _fail("import", f"{exc.message} (batches already committed are kept; import again to resume)")
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    name = "<stdin>" if args.file == "-" else args.file
    for number, message in bad:
        print(f"{name}:{number}: {message}", file=sys.stderr)
    if bad_count > len(bad):
        print(f"... and {bad_count - len(bad)} more bad lines", file=sys.stderr)
    print(f"Imported {count:,} events into project '{args.project}'.")
    if kinds:
        total = sum(kinds.values())
        each = ", ".join(f"{kinds[k]:,} {k.value}{'s' if kinds[k] != 1 else ''}" for k in RecordKind if kinds[k])
        print(f"Imported {total:,} record{'s' if total != 1 else ''} ({each}) into project '{args.project}'.")
    if bad_count:
        print(f"Skipped {bad_count:,} bad line{'s' if bad_count != 1 else ''} (listed above); "
              "fix them and import the file again (importing is idempotent).", file=sys.stderr)
        return 1
    return 0


# prices ----------------------------------------------------------------------------------------


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def cmd_prices_list(args: argparse.Namespace) -> int:
    """The effective price table (shipped + TRACEHIVE_PRICES_FILE / --prices-file), or the entry
    one model string resolves to."""
    from tracehive.pricing import PriceFileError, load_table

    prices_file = args.prices_file or Settings.from_env().prices_file
    try:
        table = load_table(prices_file or None)
    except PriceFileError as exc:
        return _fail("prices list", str(exc), 2)
    entries = table.entries
    if args.model is not None:
        found = table.resolve(args.model, args.provider)
        if found is None:
            return _fail("prices list", f"no price for model {args.model!r}: cost is not computed for it", 1)
        entries = (found,)
    print(f"{'MODEL':<28}{'PROVIDER':<11}{'INPUT':>9}{'OUTPUT':>9}{'CACHED':>9}{'CACHE_W':>9}  {'AS OF':<12}SOURCE")
    for e in sorted(entries, key=lambda e: (e.provider, e.model)) if args.model is None else entries:
        print(f"{e.model:<28}{e.provider:<11}{_price(e.input):>9}{_price(e.output):>9}{_price(e.cached_input):>9}"
              f"{_price(e.cache_write):>9}  {e.as_of:<12}{e.source}")
    if args.model is None:
        print(f"USD per 1M tokens; {len(entries)} entries{f' (with {prices_file})' if prices_file else ''}",
              file=sys.stderr)
    return 0


def cmd_prices_check(args: argparse.Namespace) -> int:
    from tracehive.pricing import PriceFileError, read_file
    from tracehive.pricing.table import normalize_name, shipped_entries

    try:
        entries = read_file(args.file)
    except PriceFileError as exc:
        return _fail("prices check", str(exc), 1)
    shipped = {(normalize_name(e.model), e.provider) for e in shipped_entries()}
    replacing = sum((normalize_name(e.model), e.provider) in shipped for e in entries)
    print(f"{args.file}: {len(entries)} entries OK ({replacing} replace shipped prices, "
          f"{len(entries) - replacing} add models)")
    return 0


# parser ----------------------------------------------------------------------------------------


def _data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where the database lives (env TRACEHIVE_DATA_DIR; default ./tracehive-data)")
    parser.add_argument("--store", metavar="URL",
                        help="postgresql://user@host:port/dbname to use PostgreSQL instead of SQLite in the data "
                             "dir (env TRACEHIVE_STORE)")
    parser.add_argument("--events-store", metavar="URL",
                        help="chdb:///abs/dir (ClickHouse in-process) or clickhouse://user:pw@host:8123/db "
                             "(a ClickHouse server) to keep events in ClickHouse (pip install "
                             "'tracehive[clickhouse]') while projects, keys and records stay in the store "
                             "(env TRACEHIVE_EVENTS_STORE)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracehive", description="Self-hosted trace backend for LLM apps.")
    parser.add_argument("--version", action="version", version=f"tracehive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to bind (env TRACEHIVE_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env TRACEHIVE_PORT; default 8520)")
    serve.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS (and OTLP/gRPC over TLS) with this certificate "
                       "chain (env TRACEHIVE_TLS_CERT); needs --tls-key")
    serve.add_argument("--tls-key", metavar="PEM", help="the certificate's private key (env TRACEHIVE_TLS_KEY)")
    serve.add_argument("--otlp-grpc-port", type=int, metavar="PORT",
                       help="also serve OTLP/gRPC trace export on PORT, e.g. 4317 (env TRACEHIVE_OTLP_GRPC_PORT; default off)")
    serve.add_argument("--prices-file", metavar="JSON",
                       help="prices that extend or replace the shipped price table model events without a cost "
                            "are priced with (env TRACEHIVE_PRICES_FILE; check it with 'tracehive prices check')")
    _data_dir_arg(serve)
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="mint a key; it is printed alone on the last line")
    create.add_argument("--project", required=True, type=project_name, help="project name (created if needed)")
    create.add_argument("--kind", choices=[k.value for k in KeyKind], default=KeyKind.PROJECT.value)
    _data_dir_arg(create)
    create.set_defaults(func=cmd_keys_create)
    listing = keys.add_parser("list", help="list keys (ids only; secrets are never stored)")
    _data_dir_arg(listing)
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    _data_dir_arg(revoke)
    revoke.set_defaults(func=cmd_keys_revoke)

    projects = sub.add_parser("projects", help="manage projects").add_subparsers(dest="projects_command", required=True)
    plist = projects.add_parser("list", help="list projects")
    _data_dir_arg(plist)
    plist.set_defaults(func=cmd_projects_list)
    add_project_commands(projects, _data_dir_arg)
    add_prune_command(sub, _data_dir_arg)

    export = sub.add_parser("export", help="stream a project's events (and its datasets, runs...) to JSONL, or its "
                                           "events to CSV (reads the data dir directly)")
    export.add_argument("--project", default=DEFAULT_PROJECT, type=project_name,
                        help=f"project name (default {DEFAULT_PROJECT})")
    export.add_argument("--filter", nargs="+", action="append", metavar="TERM",
                        help="FIELD OPERATOR [VALUE], e.g. --filter event_type is model --filter metadata.cost 'greater than' 0.01 "
                             "(repeatable, ANDed; same language as POST /v1/events/export)")
    export.add_argument("--since", help="only events that started since: relative (30m, 12h, 7d, 2w) or an ISO date")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default stdout)")
    export.add_argument("--records", action=argparse.BooleanOptionalAction, default=None,
                        help="also export the project's datasets, datapoints, runs, configurations and metric "
                             "definitions (JSONL only; default: yes unless --filter or --since narrows the events)")
    _data_dir_arg(export)
    export.set_defaults(func=cmd_export)

    imp = sub.add_parser("import", help="load a JSONL export (events and records) into a project (created if needed)")
    imp.add_argument("file", metavar="FILE.jsonl", help="a file written by 'tracehive export', or - for stdin")
    imp.add_argument("--project", default=DEFAULT_PROJECT, type=project_name,
                     help=f"project name (default {DEFAULT_PROJECT})")
    imp.add_argument("--batch-size", type=int, default=IMPORT_BATCH, help=argparse.SUPPRESS)
    _data_dir_arg(imp)
    imp.set_defaults(func=cmd_import)

    add_backup_commands(sub)

    mig = sub.add_parser("migrate", help="create or upgrade the store's schema (safe with nodes running)")
    _data_dir_arg(mig)
    mig.set_defaults(func=cmd_migrate)

    prices = sub.add_parser("prices", help="the price table that model events without a cost are priced with"
                            ).add_subparsers(dest="prices_command", required=True)
    plist_prices = prices.add_parser("list", help="print the effective price table (USD per 1M tokens), or with "
                                                  "--model the entry a model name resolves to")
    plist_prices.add_argument("--model", help="a model string as events carry it, e.g. openai/gpt-4o-2024-08-06")
    plist_prices.add_argument("--provider", help="with --model: the event's config.provider")
    plist_prices.add_argument("--prices-file", metavar="JSON", help="the file serve would use (env TRACEHIVE_PRICES_FILE)")
    plist_prices.set_defaults(func=cmd_prices_list)
    check = prices.add_parser("check", help="validate a price file (exit 1 with one line naming the problem)")
    check.add_argument("file", metavar="FILE.json")
    check.set_defaults(func=cmd_prices_check)

    ddl = sub.add_parser("clickhouse-ddl", help="print the DDL that creates the events tables on a ClickHouse cluster "
                         "(replicated, distributed; ON CLUSTER)")
    ddl.add_argument("--cluster", required=True, help="the cluster's name in the servers' remote_servers")
    ddl.add_argument("--database", default="tracehive", help="the database to create (default tracehive)")
    ddl.add_argument("--upgrade-from", type=int, metavar="VERSION",
                     help="print instead what brings tables made at this schema version to the current one")
    ddl.set_defaults(func=cmd_clickhouse_ddl)
    return parser


# Commands that only read: on a data dir with no database they stop instead of making an empty
# one (a mistyped --data-dir would otherwise list nothing, or mint a key the server never sees).
_READERS = frozenset({"keys list", "keys revoke", "projects list", "projects update", "projects delete",
                      "export", "backup", "prune"})


def _command_name(args: argparse.Namespace) -> str:
    sub = (getattr(args, "keys_command", None) or getattr(args, "projects_command", None)
           or getattr(args, "prices_command", None))
    return f"{args.command} {sub}" if sub else str(args.command)


def _announce(args: argparse.Namespace) -> int | None:
    """Say on stderr which data dir or store a command works on (``serve`` says it in its
    banner); refuse a reading command on a data dir with no database. An exit code, or None."""
    if not hasattr(args, "data_dir") or args.command in ("serve", "restore"):  # restore: a new data dir
        return None
    name = _command_name(args)
    settings = _settings(args)
    where = _where(settings)
    if not settings.store and settings.data_dir.exists() and not settings.data_dir.is_dir():
        return _fail(name, f"the data dir {where} is a file, not a directory")
    if not settings.store and not settings.database_path.exists():
        if name in _READERS:
            return _fail(name, f"no database in {where} (use --data-dir or TRACEHIVE_DATA_DIR, "
                               "or --store for PostgreSQL)")
        print(f"tracehive {name}: creating a new database in {where}", file=sys.stderr)
    else:
        print(f"tracehive {name}: using {where}", file=sys.stderr)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], Any] = args.func
    refused = _announce(args)
    if refused is not None:
        return refused
    try:
        return int(func(args) or 0)
    except ApiError as exc:  # e.g. the store cannot be reached: one clear line, not a traceback
        print(f"tracehive {args.command}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a data dir that cannot be made: one clear line, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"tracehive {_command_name(args)}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
