"""Retention and project deletion over any store: loops of the store's bounded steps
(``EventStore.prune_events``, ``delete_project_events``), and the server's background pruner.

Each step is one short write (a batch of ``STEP`` events), and the pruner yields between steps,
so writes queued meanwhile go first: a large prune slows ingest a little for a while instead of
stopping it. Space: SQLite reuses the freed pages for new events (the file does not shrink; a
``VACUUM`` while the server is stopped returns it), PostgreSQL's autovacuum reclaims the rows,
and ClickHouse frees them when background merges rewrite the parts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tracehive.model.scope import Scope
from tracehive.storage.base import Project, Pruned, Store

log = logging.getLogger("tracehive.retention")

STEP = 1000
DAY_MS = 86_400_000


def cutoff(project: Project, now_ms: float) -> float:
    """Events that started before this (Unix ms) are past the project's retention."""
    return now_ms - project.retention_days * DAY_MS


def _scope(project: Project) -> Scope:
    return Scope(org_id=project.org_id, workspace_id=project.workspace_id, project_id=project.project_id,
                 project_name=project.name)


async def prune_project(store: Store, project: Project, now_ms: float, *, pause: float = 0.0) -> Pruned:
    """Remove everything of ``project`` past its retention (nothing when it keeps forever)."""
    total = Pruned()
    if project.retention_days <= 0:
        return total
    before, scope = cutoff(project, now_ms), _scope(project)
    while (step := await store.prune_events(scope, before, limit=STEP)).removed:
        total += step
        await asyncio.sleep(pause)
    return total


@dataclass(frozen=True)
class Deleted:
    events: int
    keys: int
    records: int


async def delete_project(store: Store, project: Project) -> Deleted:
    """Delete a project with all its data and keys: its events in steps, then the rest at once.
    Interrupted, it can be run again: what is left is deleted then."""
    events = 0
    while count := await store.delete_project_events(project.project_id, limit=STEP):
        events += count
    keys, records = await store.remove_project(project.project_id)
    # Writes a key cached by a running server let in meanwhile (for key_cache_seconds at most).
    while count := await store.delete_project_events(project.project_id, limit=STEP):
        events += count
    return Deleted(events, keys, records)


async def prune_all(store: Store, *, pause: float) -> dict[str, Pruned]:
    now = time.time() * 1000
    done: dict[str, Pruned] = {}
    for project in await store.list_projects():
        if project.retention_days > 0:
            done[project.name] = await prune_project(store, project, now, pause=pause)
    return done


@asynccontextmanager
async def pruning(store: Store, interval_seconds: float) -> AsyncIterator[None]:
    """Run ``prune_all`` every ``interval_seconds`` (0: never) while the context is open; the
    first pass a minute after start-up, out of the way of a server's first requests."""
    if interval_seconds <= 0:
        yield
        return

    async def loop() -> None:
        delay = min(60.0, interval_seconds)
        while True:
            await asyncio.sleep(delay)
            delay = interval_seconds
            try:
                for name, pruned in (await prune_all(store, pause=0.01)).items():
                    if pruned.removed or pruned.shrunk:
                        log.info("retention pruned", extra={"project": name, "events": pruned.events,
                                                           "sessions": pruned.sessions, "shrunk": pruned.shrunk})
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a failed pass is logged and retried at the next
                log.exception("retention pass failed; retrying at the next interval")

    task = asyncio.create_task(loop(), name="retention")
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
