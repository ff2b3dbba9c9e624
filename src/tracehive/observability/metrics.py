"""A small, thread-safe metrics registry rendering the Prometheus text exposition format 0.0.4.

Counters, gauges and histograms with labels; no dependency. Each metric guards its own values with
a lock, because the writer thread observes commits while the event loop observes requests. A
registry is an ordinary object (one per app), so tests that build several apps never share counts.

Label values are passed positionally, in the order of the metric's label names, which keeps the
per-request cost to one tuple, one dict lookup and one lock.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# Seconds, from a fast read or commit (1 ms) to a slow export (a minute).
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)

LabelValues = tuple[str, ...]


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: integers without a fraction, +Inf/-Inf/NaN spelled out."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{_escape_label_value(v)}"' for n, v in zip(names, values))
    return "{" + pairs + "}"


class Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labelnames:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__") or label == "le":
                raise ValueError(f"invalid label name {label!r} on {name}")
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _check(self, values: LabelValues) -> None:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values!r}")

    def samples(self) -> Iterator[tuple[str, str, float]]:
        """(sample name, label text, value) for every series, in a stable order."""
        raise NotImplementedError

    def render(self) -> str:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        lines.extend(f"{sample}{labels} {format_value(value)}" for sample, labels, value in self.samples())
        return "\n".join(lines) + "\n"


class Counter(Metric):
    """A value that only goes up (reset on restart)."""

    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        # An unlabelled counter exists from the start (0), as Prometheus clients do.
        self._values: dict[LabelValues, float] = {} if labelnames else {(): 0.0}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot decrease")
        self._check(labels)
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        with self._lock:
            return self._values.get(labels, 0.0)

    def samples(self) -> Iterator[tuple[str, str, float]]:
        with self._lock:
            items = sorted(self._values.items())
        for values, value in items:
            yield self.name, _label_text(self.labelnames, values), value


class Gauge(Metric):
    """A value that goes up and down; with ``sample``, it is read when scraped instead."""

    kind = "gauge"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 sample: Callable[[], float | None] | None = None) -> None:
        super().__init__(name, help, labelnames)
        if sample is not None and labelnames:
            raise ValueError(f"{self.name}: a sampled gauge has no labels")
        self._sample = sample
        self._values: dict[LabelValues, float] = {} if labelnames else {(): 0.0}

    def set(self, value: float, *labels: str) -> None:
        self._check(labels)
        with self._lock:
            self._values[labels] = value

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._check(labels)
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def dec(self, *labels: str, amount: float = 1.0) -> None:
        self.inc(*labels, amount=-amount)

    def value(self, *labels: str) -> float:
        if self._sample is not None:
            sampled = self._sample()
            return math.nan if sampled is None else sampled
        with self._lock:
            return self._values.get(labels, 0.0)

    def samples(self) -> Iterator[tuple[str, str, float]]:
        if self._sample is not None:
            sampled = self._sample()
            if sampled is not None:  # None: nothing to report right now (e.g. the store is closed)
                yield self.name, "", sampled
            return
        with self._lock:
            items = sorted(self._values.items())
        for values, value in items:
            yield self.name, _label_text(self.labelnames, values), value


class _Series:
    __slots__ = ("count", "counts", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)  # per bucket (not cumulative), the last one is +Inf
        self.sum = 0.0
        self.count = 0


class Histogram(Metric):
    """Observations counted into cumulative ``le`` buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help, labelnames)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds or len(set(bounds)) != len(bounds):
            raise ValueError(f"{self.name}: buckets must be distinct and not empty")
        self.bounds = tuple(bounds)
        self._series: dict[LabelValues, _Series] = {} if labelnames else {(): _Series(len(bounds))}

    def observe(self, value: float, *labels: str) -> None:
        self._check(labels)
        index = bisect.bisect_left(self.bounds, value)  # le is inclusive: value == bound lands in it
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = _Series(len(self.bounds))
            series.counts[index] += 1
            series.sum += value
            series.count += 1

    def count(self, *labels: str) -> int:
        with self._lock:
            series = self._series.get(labels)
            return series.count if series else 0

    def samples(self) -> Iterator[tuple[str, str, float]]:
        with self._lock:
            snapshot = sorted((values, list(s.counts), s.sum, s.count) for values, s in self._series.items())
        names = (*self.labelnames, "le")
        for values, counts, total, count in snapshot:
            running = 0
            for bound, n in zip((*self.bounds, math.inf), counts):
                running += n
                yield f"{self.name}_bucket", _label_text(names, (*values, format_value(bound))), running
            labels = _label_text(self.labelnames, values)
            yield f"{self.name}_sum", labels, total
            yield f"{self.name}_count", labels, count


class Registry:
    """The metrics of one app, rendered together."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._lock = threading.Lock()

    def register(self, metric: Metric) -> Metric:
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name} is already registered")
            self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        metric = Counter(name, help, labelnames)
        self.register(metric)
        return metric

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = (),
              sample: Callable[[], float | None] | None = None) -> Gauge:
        metric = Gauge(name, help, labelnames, sample)
        self.register(metric)
        return metric

    def histogram(self, name: str, help: str, labelnames: Sequence[str] = (),
                  buckets: Iterable[float] = DEFAULT_BUCKETS) -> Histogram:
        metric = Histogram(name, help, labelnames, buckets)
        self.register(metric)
        return metric

    def get(self, name: str) -> Metric:
        with self._lock:
            return self._metrics[name]

    def render(self) -> str:
        with self._lock:
            metrics = list(self._metrics.values())
        return "".join(metric.render() for metric in metrics)
