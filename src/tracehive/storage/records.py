"""Control records: the experiment-side documents a project owns (datasets, datapoints, runs,
prompt/model configurations and metric definitions).

Every kind is one JSON document per id, confined to a project, kept in the control part of the
store. The store knows nothing of what a document holds except its kind, its id and an optional
``name`` it can look records up by; the shapes live in ``tracehive.experiments``. Updates are a
pure function of the stored document applied atomically (the row is locked while it runs, and a
backend may run it again after a lost race), so two writers merging into one run's metadata never
lose a key.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class RecordKind(str, enum.Enum):
    DATASET = "dataset"
    DATAPOINT = "datapoint"
    RUN = "run"
    CONFIGURATION = "configuration"
    METRIC = "metric"


@dataclass(frozen=True)
class Record:
    kind: RecordKind
    id: str
    name: str | None
    body: dict[str, Any]
    created_at: int  # Unix ms
    updated_at: int  # Unix ms; equal to created_at until the first update


@dataclass(frozen=True)
class RecordChange:
    """What an update returns: the new name and body (the id, kind and project never change)."""

    name: str | None
    body: dict[str, Any]


# Called with the stored record; returns the change, or None to leave the record as it is.
RecordUpdate = Callable[[Record], RecordChange | None]

# Bounds on one record (a datapoint's inputs, a run's event ids): big enough for any real
# document, small enough that a list of them stays a sane response.
MAX_RECORD_BYTES = 4 * 1024 * 1024
# The most records one list call returns (callers page by id lists or filters below it).
MAX_LIST = 10_000
