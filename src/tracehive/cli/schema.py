"""The store's schema: ``tracehive migrate`` (bring it up to date) and ``tracehive clickhouse-ddl``
(the DDL to run on a ClickHouse cluster)."""

from __future__ import annotations

import argparse
import asyncio

from tracehive.cli.common import _fail, _settings
from tracehive.model.errors import ApiError


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
