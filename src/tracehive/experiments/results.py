"""What ``GET /v1/runs/{run_id}/result`` computes from a run's events (HoneyHive leaves this to
the server: its SDK says "DO NOT compute aggregates client-side").

Which events: those whose ``metadata.run_id`` is the run's id. The SDK puts it on each
datapoint's session (``/session/start``) and on the function's chain span, which carries the
evaluators' metrics as ``honeyhive_metrics.*`` (``metrics`` here). Spans without it are not
counted, such as the ``Evaluation`` spans that ``@evaluator`` leaks into whichever session its
process traced first (an SDK bug).

Datapoints: one per session of the run (its ``event_ids``, then any other session its events
name), identified by ``metadata.datapoint_id`` (the session's, else its events').

Metric values: numbers and booleans (``True`` = 1, ``False`` = 0 when aggregated). Strings
(``<name>_explanation``) are shown nowhere numeric: the SDK rejects a string value.

Pass/fail, per metric value, by the first rule that applies:
1. a passing range for the metric's name: the run's ``passing_ranges[name]`` (``{min, max}``),
   else the ``threshold`` of the project's metric definition of that name (``{min, max}``, or
   ``pass_when``: the value a boolean metric must have). The value passes when it lies in the
   range (bounds included; a missing bound is open) or equals ``pass_when``;
2. a boolean without a range passes when it is ``True``;
3. a number without a range has no verdict (``passed`` is null): it is measured, not judged.
A datapoint fails when one of its metric values fails or when its function raised (an error on
one of its session's top-level events); otherwise it passes. ``success`` is true when no
datapoint failed and the run's status is not ``failed``.

Aggregates per metric (``aggregate_function``): average, sum, min, max, median, p90, p95, p99
(linear interpolation between closest ranks), count (of values).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracehive.model.errors import ValidationFailed
from tracehive.model.event import Event

AGGREGATES = ("average", "sum", "min", "max", "median", "p90", "p95", "p99", "count")
CLIENT_SIDE = "CLIENT_SIDE"


def parse_aggregate(value: str | None) -> str:
    if value is None or value == "":
        return "average"
    name = value.lower()
    if name == "avg" or name == "mean":
        name = "average"
    if name not in AGGREGATES:
        raise ValidationFailed(
            f"aggregate_function: must be one of {', '.join(AGGREGATES)}",
            details=[{"field": "aggregate_function", "message": f"must be one of {', '.join(AGGREGATES)}"}],
        )
    return name


def aggregate(values: Sequence[float], function: str) -> float | None:
    if function == "count":
        return float(len(values))
    if not values:
        return None
    if function == "average":
        return math.fsum(values) / len(values)
    if function == "sum":
        return math.fsum(values)
    if function == "min":
        return min(values)
    if function == "max":
        return max(values)
    percent = {"median": 50, "p90": 90, "p95": 95, "p99": 99}[function]
    ordered = sorted(values)
    rank = percent / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def numeric(value: Any) -> float | None:
    """A metric value as a number (booleans as 0/1); None for anything else."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True)
class Rule:
    """How a metric's values are judged (see the module docstring)."""

    min: float | None = None
    max: float | None = None
    pass_when: bool | float | None = None

    @property
    def has_range(self) -> bool:
        return self.min is not None or self.max is not None

    def verdict(self, value: Any) -> bool | None:
        if self.pass_when is not None:  # booleans compare as 0/1 with numbers, as when aggregated
            return numeric(value) == numeric(self.pass_when)
        number = numeric(value)
        if self.has_range and number is not None:
            return (self.min is None or number >= self.min) and (self.max is None or number <= self.max)
        if isinstance(value, bool):
            return value
        return None

    def passing_range(self) -> dict[str, float | None] | None:
        return {"min": self.min, "max": self.max} if self.has_range else None


def _bound(value: Any) -> float | None:
    return numeric(value) if not isinstance(value, bool) else None


def rule_from(spec: Any) -> Rule | None:
    """A rule from ``{min, max}`` or a threshold ``{min, max, pass_when}``; None if it says nothing."""
    if not isinstance(spec, Mapping):
        return None
    pass_when = spec.get("pass_when")
    if not isinstance(pass_when, (bool, int, float)) or (isinstance(pass_when, float) and not math.isfinite(pass_when)):
        pass_when = None
    rule = Rule(_bound(spec.get("min")), _bound(spec.get("max")), pass_when)
    return rule if rule.has_range or rule.pass_when is not None else None


def rules_for(passing_ranges: Mapping[str, Any], definitions: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Rule]:
    """Rules by metric name: the run's passing ranges first, then metric definitions' thresholds."""
    rules: dict[str, Rule] = {}
    for name, body in definitions:
        rule = rule_from(body.get("threshold"))
        if rule is not None:
            rules.setdefault(name, rule)
    for name, spec in passing_ranges.items():
        rule = rule_from(spec)
        if rule is not None:
            rules[name] = rule
    return rules


@dataclass
class MetricValue:
    name: str
    event_name: str
    event_type: str
    value: Any
    passed: bool | None


@dataclass
class Datapoint:
    session_id: str
    datapoint_id: str | None
    errored: bool = False
    metrics: list[MetricValue] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The id listed in ``passed``/``failed`` (never null: the SDK rejects a null entry)."""
        return self.datapoint_id or self.session_id

    @property
    def passed(self) -> bool:
        return not self.errored and all(m.passed is not False for m in self.metrics)


def datapoints_of(run_session_ids: Sequence[str], events: Iterable[Event], rules: Mapping[str, Rule]) -> list[Datapoint]:
    """The run's datapoints, in the run's session order, then by first event time."""
    ordered = sorted(events, key=lambda e: (e.start_time, e.event_id))
    by_session: dict[str, Datapoint] = {sid: Datapoint(sid, None) for sid in run_session_ids}
    for event in ordered:
        point = by_session.get(event.session_id)
        if point is None:
            point = by_session[event.session_id] = Datapoint(event.session_id, None)
        dp_id = event.metadata.get("datapoint_id")
        if isinstance(dp_id, str) and dp_id and (point.datapoint_id is None or event.is_session):
            point.datapoint_id = dp_id
        top_level = event.parent_id in (None, event.session_id)
        if event.error and not event.is_session and top_level:
            point.errored = True
        for name, value in event.metrics.items():
            if numeric(value) is None:
                continue  # explanations and other strings: not a measurable value
            rule = rules.get(name, Rule())
            point.metrics.append(MetricValue(name, event.event_name, event.event_type, value, rule.verdict(value)))
    return list(by_session.values())


def run_result(status: str, datapoints: Sequence[Datapoint], rules: Mapping[str, Rule],
               metric_types: Mapping[str, str], function: str) -> dict[str, Any]:
    """The ``/result`` body, without ``run_object`` (the caller adds it)."""
    details: dict[tuple[str, str, str], dict[str, Any]] = {}
    event_details: dict[tuple[str, str], None] = {}
    for point in datapoints:
        for metric in point.metrics:
            key = (metric.name, metric.event_name, metric.event_type)
            event_details[(metric.event_name, metric.event_type)] = None
            detail = details.get(key)
            if detail is None:
                rule = rules.get(metric.name)
                detail = details[key] = {
                    "metric_name": metric.name,
                    "metric_type": metric_types.get(metric.name, CLIENT_SIDE),
                    "event_name": metric.event_name,
                    "event_type": metric.event_type,
                    "values": [],
                    "passing_range": rule.passing_range() if rule else None,
                    "datapoints": {"passed": [], "failed": []},
                }
            detail["values"].append(numeric(metric.value))
            if metric.passed is not None:
                side = detail["datapoints"]["passed" if metric.passed else "failed"]
                if point.key not in side:
                    side.append(point.key)
    for detail in details.values():
        detail["aggregate"] = aggregate(detail["values"], function)
    passed = [p.key for p in datapoints if p.passed]
    failed = [p.key for p in datapoints if not p.passed]
    return {
        "status": status,
        "success": not failed and status != "failed",
        "passed": passed,
        "failed": failed,
        "metrics": {"aggregation_function": function, "details": list(details.values())},
        "datapoints": [
            {
                "datapoint_id": p.datapoint_id,
                "session_id": p.session_id,
                "passed": p.passed,
                "metrics": [
                    {"name": m.name, "event_name": m.event_name, "event_type": m.event_type,
                     "value": m.value, "passed": m.passed}
                    for m in p.metrics
                ],
            }
            for p in datapoints
        ],
        "event_details": [{"event_name": n, "event_type": t} for n, t in event_details],
    }
