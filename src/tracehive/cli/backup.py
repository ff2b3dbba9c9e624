"""``tracehive backup`` and ``tracehive restore``: the commands over ``tracehive.backup``.

Only the embedded store is backed up this way: a PostgreSQL store has its own tools (``pg_dump``
for a consistent logical copy while nodes write, or a base backup with WAL archiving), and a
ClickHouse events store its ``BACKUP`` statement; both are refused here with that advice.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracehive.backup import BackupError, create, restore
from tracehive.settings import Settings


def _fail(command: str, message: str, code: int = 1) -> int:
    print(f"tracehive {command}: {message}", file=sys.stderr)
    return code


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def cmd_backup(args: argparse.Namespace) -> int:
    settings = Settings.from_env(data_dir=args.data_dir, store=args.store, events_store=args.events_store)
    if settings.store:
        return _fail("backup", "the store is PostgreSQL: back it up with pg_dump (a consistent copy while "
                     "nodes write) or a base backup with WAL archiving", 2)
    if settings.events_store:
        return _fail("backup", "events are in ClickHouse: back them up with its BACKUP statement; "
                     "this command copies only an embedded (SQLite) data dir", 2)
    data_dir = settings.data_dir.expanduser().absolute()  # main() has said which, on stderr
    try:
        done = create(data_dir, Path(args.output).expanduser().absolute(), overwrite=args.force)
    except BackupError as exc:
        return _fail("backup", str(exc))
    journal = f", {done.journal_segments} journal segment(s)" if done.journal_segments else ""
    print(f"Backed up {done.events} events of {done.projects} project(s){journal} to {done.path} "
          f"({_mb(done.size)}).")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    target = Path(args.data_dir).expanduser().absolute()
    try:
        done = restore(Path(args.file).expanduser().absolute(), target)
    except BackupError as exc:
        return _fail("restore", str(exc))
    journal = f" and {done.journal_segments} journal segment(s) to apply" if done.journal_segments else ""
    print(f"Restored {done.events} events of {done.projects} project(s){journal} into {done.path}; "
          f"start it with: tracehive serve --data-dir {done.path}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    backup = sub.add_parser("backup", help="copy a data dir, consistently, while its server runs (one tar file)")
    backup.add_argument("-o", "--output", required=True, help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace the file if it exists")
    backup.add_argument("--data-dir", default=None, help="data dir to back up (default: ./tracehive-data)")
    backup.add_argument("--store", default=None, help=argparse.SUPPRESS)
    backup.add_argument("--events-store", default=None, help=argparse.SUPPRESS)
    backup.set_defaults(func=cmd_backup)

    rest = sub.add_parser("restore", help="check a backup and lay it out as a new data dir")
    rest.add_argument("file", help="a file written by tracehive backup")
    rest.add_argument("--data-dir", required=True, help="the new data dir (must not exist, or be empty)")
    rest.set_defaults(func=cmd_restore)
