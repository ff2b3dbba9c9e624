"""Comparing two runs (``GET /v1/runs/{new}/compare-with/{old}`` and ``/v1/runs/compare/events``).

Datapoints are matched by id (the SDK derives an inline dataset's datapoint ids from their
content, so the same dataset gets the same ids in every run). Per metric name:
- ``old_aggregate``/``new_aggregate``: the aggregate of each run's values (``results.aggregate``),
  ``difference`` = new - old, ``percentage_change`` = difference / |old| x 100 (null when old is 0);
- over the datapoints both runs have and both measured (``found_count``): a datapoint's value is
  the mean of its values in that run; it ``improved`` when the new value is higher, ``degraded``
  when lower, else ``same`` (higher is better: scores, booleans as 0/1). ``old_values`` and
  ``new_values`` are those values, in the order of ``commonDatapoints``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tracehive.experiments.results import CLIENT_SIDE, Datapoint, aggregate, numeric


def _values_by_datapoint(points: Sequence[Datapoint]) -> dict[str, dict[str, list[float]]]:
    """metric name -> datapoint key -> numeric values."""
    out: dict[str, dict[str, list[float]]] = {}
    for point in points:
        for metric in point.metrics:
            number = numeric(metric.value)
            if number is not None:
                out.setdefault(metric.name, {}).setdefault(point.key, []).append(number)
    return out


def _events(points: Sequence[Datapoint]) -> set[tuple[str, str]]:
    return {(m.event_name, m.event_type) for p in points for m in p.metrics}


def compare(new: Sequence[Datapoint], old: Sequence[Datapoint], function: str,
            metric_types: Mapping[str, str]) -> dict[str, Any]:
    """The compare body, without ``old_run``/``new_run`` (the caller adds them)."""
    old_keys = {p.key for p in old}
    common = [p.key for p in new if p.key in old_keys]
    common = list(dict.fromkeys(common))
    new_values, old_values = _values_by_datapoint(new), _values_by_datapoint(old)
    metrics: list[dict[str, Any]] = []
    for name in sorted(set(new_values) | set(old_values)):
        new_all = [v for vs in new_values.get(name, {}).values() for v in vs]
        old_all = [v for vs in old_values.get(name, {}).values() for v in vs]
        new_agg, old_agg = aggregate(new_all, function), aggregate(old_all, function)
        difference = new_agg - old_agg if new_agg is not None and old_agg is not None else None
        change = (difference / abs(old_agg) * 100 if difference is not None and old_agg else None)
        improved: list[str] = []
        degraded: list[str] = []
        same: list[str] = []
        olds: list[float] = []
        news: list[float] = []
        for key in common:
            before, after = old_values.get(name, {}).get(key), new_values.get(name, {}).get(key)
            if not before or not after:
                continue
            was, now = math.fsum(before) / len(before), math.fsum(after) / len(after)
            olds.append(was)
            news.append(now)
            (improved if now > was else degraded if now < was else same).append(key)
        metrics.append({
            "metric_name": name,
            "metric_type": metric_types.get(name, CLIENT_SIDE),
            "old_aggregate": old_agg,
            "new_aggregate": new_agg,
            "difference": difference,
            "percentage_change": change,
            "found_count": len(olds),
            "improved_count": len(improved),
            "degraded_count": len(degraded),
            "same_count": len(same),
            "improved": improved,
            "degraded": degraded,
            "same": same,
            "old_values": olds,
            "new_values": news,
        })
    new_events, old_events = _events(new), _events(old)
    event_details = [
        {"event_name": n, "event_type": t,
         "presence": "both" if (n, t) in new_events and (n, t) in old_events
         else "new_only" if (n, t) in new_events else "old_only"}
        for n, t in sorted(new_events | old_events)
    ]
    return {"metrics": metrics, "commonDatapoints": common, "event_details": event_details}
