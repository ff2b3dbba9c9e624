"""The session rows the writer stored last, kept so that the next group need not read them back.

Nearly every event write touches its session's row (to widen it, or only to see that it need not
be), and reading a row back from ClickHouse by key decompresses whole blocks of its wide columns:
at 8 writers of 100 events it was the costliest statement of a group (34 ms of a ~90 ms cycle,
tmpfs, 100,000 events). This node's writer is the only one that changes rows, or the only one
since it last wrote the project (nodes that share the store: ``leased.py`` empties this when
another node wrote to the project since), so what it stored last is what a read would return, as
long as nothing else changed the row in between. Hence the rules of this cache:
- it is filled only after a group's insert (and what follows it) succeeded, with the rows as
  stored (``READ_COLUMNS`` tuples, the same a read returns);
- any other write job of the store (an update, a delete, a prune, an import, a session start)
  empties it before it runs, and so does a group that failed: no row is ever served from here
  that a write other than a successful group may have changed;
- it holds session rows only (what the next groups touch), at most ``CAPACITY`` of them, the
  least recently used dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

# About 1 KB a row: a few MB at most.
CAPACITY = 4096


class SessionRows:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._rows: OrderedDict[tuple[str, str], tuple[Any, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, project_id: str, event_id: str) -> tuple[Any, ...] | None:
        key = (project_id, event_id)
        raw = self._rows.get(key)
        if raw is not None:
            self._rows.move_to_end(key)
        return raw

    def remember(self, project_id: str, raws: Mapping[str, tuple[Any, ...]]) -> None:
        """Session rows as just stored ({event_id: row})."""
        for event_id, raw in raws.items():
            key = (project_id, event_id)
            self._rows[key] = raw
            self._rows.move_to_end(key)
        while len(self._rows) > self._capacity:
            self._rows.popitem(last=False)

    def clear(self) -> None:
        self._rows.clear()
