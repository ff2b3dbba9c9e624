"""The ``tracehive`` argument parser: every command, its flags and its help text, each command
bound to its function (``func``)."""

from __future__ import annotations

import argparse

from tracehive import __version__
from tracehive.cli.backup import add_commands as add_backup_commands
from tracehive.cli.common import DEFAULT_PROJECT, project_name
from tracehive.cli.export_import import IMPORT_BATCH, cmd_export, cmd_import
from tracehive.cli.keys_and_projects import cmd_keys_create, cmd_keys_list, cmd_keys_revoke, cmd_projects_list
from tracehive.cli.prices import cmd_prices_check, cmd_prices_list
from tracehive.cli.projects import add_project_commands, add_prune_command
from tracehive.cli.schema import cmd_clickhouse_ddl, cmd_migrate
from tracehive.cli.serve import cmd_serve
from tracehive.model.scope import KeyKind


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
