"""What the OTLP protobuf and JSON decoders share: the bounds on one request (``DecodeLimits``,
``check_span_count``), the result (``DecodedRequest``, with its capped rejection reasons), the
per-span error (``SpanInvalid``) and the span kind and status names. ``otlp_validate`` uses them
too, so that its verdict is the decoder's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.trace.v1 import trace_pb2

from tracehive.model.errors import PayloadTooLarge
from tracehive.model.span import DecodedSpan

KIND_NAMES: dict[int, str] = {v.number: v.name for v in trace_pb2.Span.SpanKind.DESCRIPTOR.values}
STATUS_NAMES: dict[int, str] = {v.number: v.name for v in trace_pb2.Status.StatusCode.DESCRIPTOR.values}
_KIND_BY_NAME = {name: name for name in KIND_NAMES.values()}
_STATUS_BY_NAME = {name: name for name in STATUS_NAMES.values()}
_UNSPECIFIED_KIND = KIND_NAMES[0]
_UNSET_STATUS = STATUS_NAMES[0]

MAX_REASONS_KEPT = 1000  # rejected-span reasons kept per request (the count is always exact)
DEFAULT_MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on one request, on top of the byte cap on the (decompressed) body."""

    max_spans: int = 10_000  # spans per request; more is a 413
    max_attributes: int = 4096  # per span, span event, resource or scope; also kvlist/array length
    max_events: int = 1024  # span events per span
    max_depth: int = DEFAULT_MAX_DEPTH  # nesting of arrayValue/kvlistValue inside one attribute value

    @classmethod
    def from_settings(cls, settings: Any) -> DecodeLimits:
        return cls(max_spans=settings.max_batch_events, max_depth=min(DEFAULT_MAX_DEPTH, settings.max_json_depth))


@dataclass(slots=True)
class DecodedRequest:
    spans: list[DecodedSpan] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one reason per rejected span (capped)
    rejected_count: int = 0  # exact number of rejected spans

    def reject(self, where: str, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REASONS_KEPT:
            self.rejected.append(f"{where}: {reason}")


class SpanInvalid(Exception):
    """This span cannot be kept (the request as a whole is fine); also raised by the checks
    ``otlp_validate`` shares with the decoder."""


def check_span_count(total: int, limits: DecodeLimits) -> None:
    if total > limits.max_spans:
        raise PayloadTooLarge(f"request of {total} spans exceeds the limit of {limits.max_spans} spans per request")
