"""tracehive's metrics: what is counted and timed, on one registry per app.

``ServerMetrics`` is also the store's observer (``storage.sqlite`` calls ``events_stored`` after a
write has committed, and ``group_committed`` / ``group_failed`` from the writer thread), so the
storage layer never imports this package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tracehive.observability.context import current_request
from tracehive.observability.metrics import Registry

# The writer groups at most 256 jobs per commit.
GROUP_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

# Route label for writes made outside an HTTP request: today only the OTLP/gRPC receiver does.
OUTSIDE_HTTP = "(grpc)"
UNMATCHED = "(unmatched)"

# A rejection's reason: from the error code the error handler recorded, else (errors rendered
# elsewhere, e.g. OTLP protobuf replies) from the status.
_REASON_BY_CODE = {
    "BAD_REQUEST": "validation",
    "MALFORMED_JSON": "validation",
    "VALIDATION_ERROR": "validation",
    "UNAUTHORIZED": "auth",
    "FORBIDDEN": "forbidden",
    "NOT_FOUND": "not_found",
    "METHOD_NOT_ALLOWED": "method_not_allowed",
    "PAYLOAD_TOO_LARGE": "too_large",
    "UNSUPPORTED_MEDIA_TYPE": "unsupported_media_type",
    "RATE_LIMITED": "rate_limited",
    "CLIENT_CLOSED_REQUEST": "client_abort",
    "REQUEST_TIMEOUT": "slow_body",
    "OVERLOADED": "overloaded",
    "STORE_UNAVAILABLE": "store_unavailable",
    "STORAGE_FULL": "storage_full",
    "INTERNAL_ERROR": "internal",
}
_REASON_BY_STATUS = {
    400: "validation", 401: "auth", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "too_large", 415: "unsupported_media_type", 429: "rate_limited", 500: "internal", 503: "overloaded",
}

# Where the error handler leaves the error code of the response it rendered, for the middleware.
ERROR_CODE_KEY = "tracehive.error_code"


def rejection_reason(status: int, error_code: str | None) -> str:
    if error_code is not None and error_code in _REASON_BY_CODE:
        return _REASON_BY_CODE[error_code]
    if error_code is not None and error_code != "HTTP_ERROR":
        return error_code.lower()  # a code added later: still its own reason (codes are few)
    return _REASON_BY_STATUS.get(status, f"http_{status}")


class ServerMetrics:
    def __init__(self, query_kinds: Mapping[tuple[str, str], str] | None = None) -> None:
        self.registry = Registry()
        # (method, route template) -> kind, for the routes whose latency is query latency.
        self.query_kinds = dict(query_kinds or {})
        self._queue_depth: Callable[[], float | None] | None = None
        r = self.registry
        self.http_requests = r.counter(
            "tracehive_http_requests_total", "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"))
        self.http_duration = r.histogram(
            "tracehive_http_request_duration_seconds",
            "Time from receiving a request to sending the last byte of its response.", ("method", "route"))
        # A plain int, read when scraped: only the event loop changes it, so it needs no lock.
        self.in_flight = 0
        r.gauge("tracehive_http_requests_in_flight", "HTTP requests being served now.", sample=lambda: self.in_flight)
        self.rejected = r.counter(
            "tracehive_requests_rejected_total",
            "Requests answered with an error, by route template and reason (validation, too_large, auth, "
            "forbidden, rate_limited, overloaded, store_unavailable, storage_full, ...). A refused batch "
            "counts once.",
            ("route", "reason"))
        self.events_accepted = r.counter(
            "tracehive_events_accepted_total",
            "Events (sessions included) durably stored, by the route that sent them.", ("route",))
        self.query_duration = r.histogram(
            "tracehive_query_duration_seconds",
            "Time to answer a successful read (query, serialization and sending), by kind: search, "
            "sessions, export, list, tree, event, chart, schema.", ("kind",))
        r.gauge("tracehive_writer_queue_depth", "Write jobs waiting for the writer thread.",
                sample=self._sample_queue_depth)
        self.queue_capacity = r.gauge(
            "tracehive_writer_queue_capacity", "Write jobs the queue holds before writes are shed with 503.")
        self.commit_seconds = r.histogram(
            "tracehive_writer_commit_seconds",
            "Duration of the COMMIT of one group; with synchronous=FULL it includes the WAL fsync.")
        self.transaction_seconds = r.histogram(
            "tracehive_writer_transaction_seconds",
            "Duration of one group's transaction, from BEGIN to the end of COMMIT (jobs plus commit).")
        self.group_jobs = r.histogram(
            "tracehive_writer_group_jobs", "Write jobs (requests) sharing one transaction and one commit.",
            buckets=GROUP_SIZE_BUCKETS)
        self.commit_failures = r.counter(
            "tracehive_writer_commit_failures_total",
            "Groups whose commit failed (disk full, locked database); their requests got 503.")
        self.redactions = r.counter(
            "tracehive_redactions_total",
            "Matches replaced by [REDACTED:<rule>] at ingest, by rule (tracehive projects update --redact).",
            ("rule",))

    # Sources sampled at scrape time -------------------------------------------------------------

    def watch_queue(self, depth: Callable[[], float | None], capacity: int) -> None:
        self._queue_depth = depth
        self.queue_capacity.set(capacity)

    def _sample_queue_depth(self) -> float | None:
        return self._queue_depth() if self._queue_depth is not None else None

    # HTTP (called by the middleware) ------------------------------------------------------------

    def request_done(self, method: str, route: str | None, status: int, seconds: float,
                     error_code: str | None) -> None:
        label = route or UNMATCHED
        self.http_requests.inc(method, label, str(status))
        self.http_duration.observe(seconds, method, label)
        if status >= 400:
            self.rejected.inc(label, rejection_reason(status, error_code))
        elif route is not None:
            kind = self.query_kinds.get((method, route))
            if kind is not None:
                self.query_duration.observe(seconds, kind)

    def redacted(self, counts: dict[str, int]) -> None:
        """Markers written by redaction at ingest, per rule (``ingest/redact_writes.py``)."""
        for rule, n in counts.items():
            self.redactions.inc(rule, amount=n)

    # Store observer ------------------------------------------------------------------------------

    def events_stored(self, count: int) -> None:
        """Called after a write of ``count`` events has committed."""
        request = current_request()
        route = request.route if request is not None else None
        self.events_accepted.inc(route or OUTSIDE_HTTP, amount=count)

    def group_committed(self, jobs: int, transaction_seconds: float, commit_seconds: float) -> None:
        """Called by the writer thread after each successful commit."""
        self.group_jobs.observe(jobs)
        self.transaction_seconds.observe(transaction_seconds)
        self.commit_seconds.observe(commit_seconds)

    def group_failed(self, jobs: int) -> None:
        self.commit_failures.inc()

    def render(self) -> str:
        return self.registry.render()

