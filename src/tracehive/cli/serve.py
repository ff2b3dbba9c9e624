"""``tracehive serve``: check the TLS and price settings, take the data dir and the port, create
the ``default`` project (and its first key) on a store with none, then run the server."""

from __future__ import annotations

import argparse
import os

from tracehive import __version__
from tracehive.cli.common import DEFAULT_PROJECT, _fail, _settings, _where, _with_store
from tracehive.model.scope import KeyKind
from tracehive.settings import Settings
from tracehive.storage.base import Store


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
