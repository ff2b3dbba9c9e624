"""Redaction at the write edge: every route hands its events (or its update) here, with the key's
scope, before it calls the store, so the project's rules (``Scope.redact``, set with ``tracehive
projects update NAME --redact RULE``) have replaced every match before any byte is written: the
REST routes (v1 and legacy), OTLP over HTTP and gRPC (``otlp_ingest.write_prepared``) and the
CLI's import. OTLP in journal mode skips the journal for a project with rules (``api/otlp.py``):
the journal would hold the raw request.

A key resolved before its project's rules changed keeps the old rules for at most
``key_cache_seconds`` (the key cache's lifetime).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tracehive.ingest.redaction import RedactionRuleError, Redactor, redactor_for
from tracehive.model.errors import StoreUnavailable
from tracehive.model.event import Event, EventUpdate
from tracehive.model.scope import Scope

# Receives the markers written, per rule (``/metrics``: tracehive_redactions_total).
Tally = Callable[[dict[str, int]], None]


def _redactor(scope: Scope) -> Redactor | None:
    if not scope.redact:
        return None
    try:
        return redactor_for(scope.redact)
    except RedactionRuleError as exc:
        # Rules are checked when set; one that fails now (set by another release) must not let
        # events through unredacted: refuse the write.
        raise StoreUnavailable(f"the project's redaction rules cannot be applied ({exc}): set them again "
                               "with tracehive projects update") from None


def redact_events(scope: Scope, events: Sequence[Event], tally: Tally | None = None) -> None:
    redactor = _redactor(scope)
    if redactor is None:
        return
    counts: dict[str, int] = {}
    for event in events:
        redactor.apply(event, counts)
    if counts and tally is not None:
        tally(counts)


def redact_update(scope: Scope, update: EventUpdate, tally: Tally | None = None) -> None:
    redactor = _redactor(scope)
    if redactor is None:
        return
    counts: dict[str, int] = {}
    redactor.apply_update(update, counts)
    if counts and tally is not None:
        tally(counts)
