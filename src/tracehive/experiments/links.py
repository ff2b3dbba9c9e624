"""Keeping the two sides of "datapoint D is in dataset S" in step: S's ordered ``datapoints`` list
and D's ``linked_datasets``.

The store changes one record atomically, never two, so each side is changed by its own update
(an idempotent "add these ids if missing" or "remove these ids"), and every route changes the
side it owns first and the other side after: a dataset route writes the dataset, then its
datapoints; a datapoint route writes the datapoint, then its datasets. When the other side has
gone in between (deleted by a concurrent request) the first side is corrected, so no list keeps
an id whose record is gone because of a race the route could see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from tracehive.experiments.documents import field_error
from tracehive.experiments.fields import MAX_DATASET_DATAPOINTS
from tracehive.model.errors import ValidationFailed
from tracehive.model.scope import Scope
from tracehive.storage.base import Store
from tracehive.storage.records import Record, RecordChange, RecordKind, RecordUpdate

T = TypeVar("T")
R = TypeVar("R")

DATASET_LIST = "datapoints"
DATAPOINT_LIST = "linked_datasets"
# How many single-record updates run at once when one request touches many records.
_WIDTH = 32


def adding(key: str, ids: Sequence[str], cap: int | None = None) -> RecordUpdate:
    """Append the ids the record's list lacks; no change when none is missing or when the list
    would pass ``cap`` (the caller sees that the ids are not there)."""
    def update(record: Record) -> RecordChange | None:
        current = list(record.body.get(key) or [])
        present = set(current)
        added = [i for i in dict.fromkeys(ids) if i not in present]
        if not added or (cap is not None and len(current) + len(added) > cap):
            return None
        return RecordChange(record.name, {**record.body, key: current + added})

    return update


def removing(key: str, ids: Sequence[str]) -> RecordUpdate:
    gone = set(ids)

    def update(record: Record) -> RecordChange | None:
        current = list(record.body.get(key) or [])
        kept = [i for i in current if i not in gone]
        if len(kept) == len(current):
            return None
        return RecordChange(record.name, {**record.body, key: kept})

    return update


async def each(items: Sequence[T], fn: Callable[[T], Awaitable[R]]) -> list[R]:
    """``fn`` over ``items``, a few at a time, results in order."""
    out: list[R] = []
    for start in range(0, len(items), _WIDTH):
        out.extend(await asyncio.gather(*(fn(item) for item in items[start : start + _WIDTH])))
    return out


def too_many(dataset_id: str) -> ValidationFailed:
    return field_error("datapoints", f"dataset {dataset_id} would hold more than {MAX_DATASET_DATAPOINTS} datapoints")


async def append_to_dataset(store: Store, scope: Scope, dataset_id: str, datapoint_ids: Sequence[str]) -> Record | None:
    """Append the datapoints to the dataset's list (those already in it stay where they are).
    None when the dataset is gone; a 400 when it would pass ``MAX_DATASET_DATAPOINTS``."""
    record = await store.update_record(scope, RecordKind.DATASET, dataset_id,
                                       adding(DATASET_LIST, datapoint_ids, MAX_DATASET_DATAPOINTS))
    if record is not None and not set(datapoint_ids) <= set(record.body.get(DATASET_LIST) or []):
        raise too_many(dataset_id)
    return record


# Dataset routes: the dataset is written; now its datapoints. ---------------------------------------


async def link_datapoints(store: Store, scope: Scope, dataset_id: str, datapoint_ids: Sequence[str]) -> None:
    """Add the dataset to each datapoint's ``linked_datasets``; datapoints gone meanwhile are
    taken out of the dataset's list again."""
    async def link(dp: str) -> bool:
        return await store.update_record(scope, RecordKind.DATAPOINT, dp, adding(DATAPOINT_LIST, [dataset_id])) is not None

    linked = await each(list(datapoint_ids), link)
    gone = [dp for dp, ok in zip(datapoint_ids, linked) if not ok]
    if gone:
        await store.update_record(scope, RecordKind.DATASET, dataset_id, removing(DATASET_LIST, gone))


async def unlink_datapoints(store: Store, scope: Scope, dataset_id: str, datapoint_ids: Sequence[str]) -> None:
    """Take the dataset out of each datapoint's ``linked_datasets`` (the datapoints stay)."""
    async def unlink(dp: str) -> None:
        await store.update_record(scope, RecordKind.DATAPOINT, dp, removing(DATAPOINT_LIST, [dataset_id]))

    await each(list(datapoint_ids), unlink)


# Datapoint routes: the datapoint is written; now its datasets. -------------------------------------


async def join_datasets(store: Store, scope: Scope, datapoint_id: str, dataset_ids: Sequence[str]) -> None:
    """Append the datapoint to each dataset. A dataset gone meanwhile is taken out of the
    datapoint's ``linked_datasets``; so is a full one, which is then a 400 naming it."""
    async def join(ds: str) -> str | None:
        try:
            return None if await append_to_dataset(store, scope, ds, [datapoint_id]) is not None else "gone"
        except ValidationFailed:
            return "full"

    results = await each(list(dataset_ids), join)
    failed = [ds for ds, problem in zip(dataset_ids, results) if problem]
    if failed:
        await store.update_record(scope, RecordKind.DATAPOINT, datapoint_id, removing(DATAPOINT_LIST, failed))
    full = [ds for ds, problem in zip(dataset_ids, results) if problem == "full"]
    if full:
        raise too_many(full[0])


async def leave_datasets(store: Store, scope: Scope, datapoint_id: str, dataset_ids: Sequence[str]) -> None:
    """Take the datapoint out of each dataset's list."""
    async def leave(ds: str) -> None:
        await store.update_record(scope, RecordKind.DATASET, ds, removing(DATASET_LIST, [datapoint_id]))

    await each(list(dataset_ids), leave)
