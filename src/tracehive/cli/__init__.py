"""The ``tracehive`` command: serve, keys, projects, export, import, prices.

``main`` parses the arguments (``cli.parser``), says which data dir or store a command works on
and runs the command. The commands are grouped by topic: ``cli.serve``, ``cli.keys_and_projects``,
``cli.schema`` (migrate, clickhouse-ddl), ``cli.export_import``, ``cli.prices``, ``cli.backup``
(backup, restore), ``cli.projects`` (projects update|delete, prune), with what they share in
``cli.common``. Every public name of the former ``cli.py`` is still importable from here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tracehive.cli.common import DEFAULT_PROJECT, MAX_PROJECT_NAME, _fail, _settings, _where, project_name
from tracehive.cli.export_import import IMPORT_BATCH, MAX_REPORTED_LINES, cmd_export, cmd_import
from tracehive.cli.keys_and_projects import cmd_keys_create, cmd_keys_list, cmd_keys_revoke, cmd_projects_list
from tracehive.cli.parser import build_parser
from tracehive.cli.prices import cmd_prices_check, cmd_prices_list
from tracehive.cli.schema import cmd_clickhouse_ddl, cmd_migrate
from tracehive.cli.serve import cmd_serve, tls_problem
from tracehive.model.errors import ApiError

__all__ = [
    "DEFAULT_PROJECT",
    "IMPORT_BATCH",
    "MAX_PROJECT_NAME",
    "MAX_REPORTED_LINES",
    "build_parser",
    "cmd_clickhouse_ddl",
    "cmd_export",
    "cmd_import",
    "cmd_keys_create",
    "cmd_keys_list",
    "cmd_keys_revoke",
    "cmd_migrate",
    "cmd_prices_check",
    "cmd_prices_list",
    "cmd_projects_list",
    "cmd_serve",
    "main",
    "project_name",
    "tls_problem",
]

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
