"""The ``tracehive`` command: serve, keys, projects."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tracehive import __version__
from tracehive.model.scope import KeyKind
from tracehive.settings import Settings
from tracehive.storage.base import Store

T = TypeVar("T")
DEFAULT_PROJECT = "default"


def _with_store(settings: Settings, fn: Callable[[Store], Awaitable[T]]) -> T:
    from tracehive.app import default_store

    async def run() -> T:
        store = default_store(settings)
        await store.open()
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        host=getattr(args, "host", None), port=getattr(args, "port", None), data_dir=getattr(args, "data_dir", None),
        otlp_grpc_port=getattr(args, "otlp_grpc_port", None),
    )


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


# serve -----------------------------------------------------------------------------------------


async def _bootstrap(store: Store) -> str | None:
    """With no project yet, create ``default`` and mint one project key (shown once)."""
    if await store.list_projects():
        return None
    project, _ = await store.ensure_project(DEFAULT_PROJECT)
    _, key = await store.create_key(project.project_id, KeyKind.PROJECT)
    return key


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tracehive.app import create_app

    settings = _settings(args)
    key = _with_store(settings, _bootstrap)
    if key is not None:
        print(f"Created project '{DEFAULT_PROJECT}'. Its API key is shown only this once:", flush=True)
        print(key, flush=True)
    print(
        f"tracehive {__version__} serving on http://{settings.host}:{settings.port} "
        f"(data in {settings.data_dir})",
        flush=True,
    )
    if settings.otlp_grpc_port:
        print(f"OTLP/gRPC on {settings.host}:{settings.otlp_grpc_port}", flush=True)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=10,
    )
    return 0


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


# parser ----------------------------------------------------------------------------------------


def _data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where the database lives (env TRACEHIVE_DATA_DIR; default ./tracehive-data)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracehive", description="Self-hosted trace backend for LLM apps.")
    parser.add_argument("--version", action="version", version=f"tracehive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to bind (env TRACEHIVE_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env TRACEHIVE_PORT; default 8520)")
    serve.add_argument("--otlp-grpc-port", type=int, metavar="PORT",
                       help="also serve OTLP/gRPC trace export on PORT, e.g. 4317 (env TRACEHIVE_OTLP_GRPC_PORT; default off)")
    _data_dir_arg(serve)
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="mint a key; it is printed alone on the last line")
    create.add_argument("--project", required=True, help="project name (created if needed)")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], Any] = args.func
    return int(func(args) or 0)
