"""``tracehive projects update|delete`` and ``tracehive prune``: a project's retention and
redaction rules, deleting a project, and pruning now what the server prunes hourly
(``tracehive.retention``). Each refusal is one line on stderr and a non-zero exit, with nothing
changed."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any

from tracehive.retention import Deleted, cutoff, delete_project, prune_project
from tracehive.storage.base import Project, Pruned, Store


def _fail(command: str, message: str, code: int = 1) -> int:
    print(f"tracehive {command}: {message}", file=sys.stderr)
    return code


def _run(args: argparse.Namespace, fn: Any) -> Any:
    from tracehive.cli.common import _settings, _with_store  # the CLI's own store wiring

    return _with_store(_settings(args), fn)


async def _find(store: Store, name: str) -> Project | None:
    return next((p for p in await store.list_projects() if p.name == name), None)


def _describe(project: Project) -> str:
    keep = f"{project.retention_days} days" if project.retention_days else "forever"
    rules = ", ".join(project.redact) if project.redact else "none"
    return f"project {project.name}: events kept {keep}; redaction: {rules}"


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} days: retention cannot be negative (0 keeps forever)")
    return value


def cmd_projects_update(args: argparse.Namespace) -> int:
    if args.retention_days is None and args.redact is None and not args.no_redact:
        return _fail("projects update", "nothing to change: give --retention-days, --redact or --no-redact", 2)
    if args.redact is not None and args.no_redact:
        return _fail("projects update", "--redact and --no-redact cannot be given together", 2)
    rules: list[str] | None = [] if args.no_redact else args.redact
    if rules:
        from tracehive.ingest.redaction import RedactionRuleError, parse_rules

        try:
            rules = list(parse_rules(rules).specs)  # checked (and their cost measured) now, stored normalised
        except RedactionRuleError as exc:
            return _fail("projects update", str(exc), 2)

    async def run(store: Store) -> Project | None:
        return await store.update_project(args.name, retention_days=args.retention_days, redact=rules)

    project = _run(args, run)
    if project is None:
        return _fail("projects update", f"no project named {args.name!r}")
    print(_describe(project))
    return 0


def cmd_projects_delete(args: argparse.Namespace) -> int:
    async def find(store: Store) -> Project | None:
        return await _find(store, args.name)

    project = _run(args, find)
    if project is None:
        return _fail("projects delete", f"no project named {args.name!r}")
    if not args.yes:
        if not sys.stdin.isatty():
            return _fail("projects delete", "deleting a project cannot be undone: pass --yes to confirm", 2)
        answer = input(f"Delete project {project.name} with all its events, keys and records? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return _fail("projects delete", "not deleted")

    async def run(store: Store) -> Deleted:
        return await delete_project(store, project)

    done = _run(args, run)
    print(f"Deleted project {project.name}: {done.events} events, {done.keys} keys, {done.records} records.")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    now = time.time() * 1000

    async def run(store: Store) -> list[tuple[Project, Pruned]] | None:
        projects = await store.list_projects()
        if args.project is not None:
            projects = [p for p in projects if p.name == args.project]
            if not projects:
                return None
        return [(p, await prune_project(store, p, now)) for p in projects]

    done = _run(args, run)
    if done is None:
        return _fail("prune", f"no project named {args.project!r}")
    for project, pruned in done:
        if project.retention_days <= 0:
            print(f"{project.name}: keeps events forever (no retention set), nothing removed")
            continue
        when = dt.datetime.fromtimestamp(cutoff(project, now) / 1000, tz=dt.timezone.utc)
        print(f"{project.name}: removed {pruned.events} events and {pruned.sessions} sessions that started "
              f"before {when:%Y-%m-%d %H:%M:%SZ} ({project.retention_days} days); "
              f"{pruned.shrunk} sessions now start at their oldest remaining event")
    return 0


def add_project_commands(projects: argparse._SubParsersAction, store_flags: Any) -> None:  # type: ignore[type-arg]
    update = projects.add_parser("update", help="set a project's retention and redaction rules")
    update.add_argument("name")
    update.add_argument("--retention-days", type=_non_negative, default=None, metavar="N",
                        help="delete events that started more than N days ago (0 = keep forever)")
    update.add_argument("--redact", action="append", default=None, metavar="RULE",
                        help="redact at ingest (repeatable; replaces the rules): email, phone, credit_card, ip, "
                             "api_key or regex:PATTERN")
    update.add_argument("--no-redact", action="store_true", help="clear the redaction rules")
    store_flags(update)
    update.set_defaults(func=cmd_projects_update)

    delete = projects.add_parser("delete", help="delete a project with all its events, keys and records")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask")
    store_flags(delete)
    delete.set_defaults(func=cmd_projects_delete)


def add_prune_command(sub: argparse._SubParsersAction, store_flags: Any) -> None:  # type: ignore[type-arg]
    prune = sub.add_parser("prune", help="delete now the events past their project's retention")
    prune.add_argument("--project", default=None, help="only this project")
    store_flags(prune)
    prune.set_defaults(func=cmd_prune)
