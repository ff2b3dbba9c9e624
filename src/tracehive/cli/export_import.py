"""``tracehive export`` (a project's events, and its records, to JSONL; or its events to CSV, with
``--filter`` in the export request's language and ``--since``) and ``tracehive import`` (a JSONL
export into a project, in atomic batches)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from tracehive.cli.common import _fail, _settings, _with_store
from tracehive.model.errors import ApiError, ValidationFailed
from tracehive.model.event import Event
from tracehive.model.scope import Scope
from tracehive.query.event_query import EventQuery
from tracehive.query.filters import parse_export_request
from tracehive.storage.base import Project, Store

_CLI_OPERATORS = ("exists", "not exists", "is", "is not", "contains", "not contains", "greater than",
                  "less than", "after", "before")
_RELATIVE_SINCE = re.compile(r"\d{1,9}[mhdw]")


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
