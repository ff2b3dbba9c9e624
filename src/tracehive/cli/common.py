"""What the commands share: the store ``tracehive serve`` would open (``_with_store``), the settings
the flags give (``_settings``), where the data lives and times for messages, the ``--project``
argument type, and the one-line failure (``_fail``)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tracehive.settings import Settings
from tracehive.storage.base import Store

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


def _where(settings: Settings) -> str:
    """Where the data lives, for messages: the store URL (password hidden) or the data dir's
    absolute path (a relative one depends on where the command ran)."""
    from tracehive.storage.factory import redact_url

    return redact_url(settings.store) if settings.store else str(settings.data_dir.expanduser().absolute())


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


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
