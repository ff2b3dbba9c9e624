"""``tracehive keys create|list|revoke`` and ``tracehive projects list`` (``projects update|delete``
and ``prune`` are in ``cli.projects``)."""

from __future__ import annotations

import argparse
import sys

from tracehive.cli.common import _settings, _when, _with_store
from tracehive.model.scope import KeyKind
from tracehive.storage.base import Store


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
