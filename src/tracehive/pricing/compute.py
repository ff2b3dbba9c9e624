"""Cost of a model event from its token counts and the price table.

``price_event`` is applied to every event at ingest (``ingest.normalize.event_from_request`` for
the REST routes, ``ingest.otlp_ingest.write_prepared`` for OTLP). It sets ``metadata.cost`` (USD)
and ``metadata.cost_computed: true`` on an event when all of these hold:

- ``event_type`` is ``model``;
- ``metadata`` has no ``cost`` key: a cost that was sent (any value, 0 and null included) is kept
  as it is and gets no flag;
- the model resolves in the table: ``config.model``, else ``metadata.response_model``, with
  ``config.provider`` choosing among entries that share the name (``table.py``);
- a token count is there: ``metadata.prompt_tokens`` (else ``input_tokens``) and/or
  ``metadata.completion_tokens`` (else ``output_tokens``), JSON numbers >= 0.

Cached prompt tokens are priced at the entry's ``cached_input`` price: a cache read is read from
``metadata.cache_read_input_tokens``, ``prompt_tokens_details.cached_tokens`` or
``input_tokens_details.cached_tokens`` (OpenAI), ``cached_tokens``, ``prompt_details.cache_read``
(OpenInference), ``cache_read.input_tokens`` (OTel GenAI); a cache write, at ``cache_write``, from
``cache_creation_input_tokens``, ``prompt_details.cache_write``, ``cache_creation.input_tokens``.
``prompt_tokens`` counts every prompt token, cached ones included (OpenAI, Gemini and what span
mapping writes for OTel GenAI, OpenInference and Traceloop), so the cached ones are taken out of
it; ``input_tokens`` sent with Anthropic's ``cache_*_input_tokens`` is Anthropic's own usage,
where the cached tokens come on top. Cache counts larger than the prompt count are taken as on
top too.

Updates (``PUT /v1/events/{id}``, ``PUT /events``) are merged as sent and never compute a cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from tracehive.model.event import Event
from tracehive.pricing.table import Price, PriceTable

UNITS_PER_USD = 10**12  # Price.units are micro-dollars per 1M tokens


def _count(value: Any) -> float | None:
    kind = type(value)
    if kind is int:
        return value if value >= 0 else None
    if kind is float and value >= 0 and value != math.inf:  # NaN fails >= 0
        return value
    return None


def _first(metadata: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> float | None:
    for path in paths:
        value: Any = metadata
        for key in path:
            if not isinstance(value, dict):
                value = None
                break
            value = value.get(key)
        n = _count(value)
        if n is not None:
            return n
    return None


_CACHE_READ = (
    ("prompt_tokens_details", "cached_tokens"), ("input_tokens_details", "cached_tokens"), ("cached_tokens",),
    ("prompt_details", "cache_read"), ("cache_read", "input_tokens"),
)  # fmt: skip
_CACHE_WRITE = (("prompt_details", "cache_write"), ("cache_creation", "input_tokens"))
# Every top-level key a cache count may be under: most events have none, and skip the search.
_CACHE_KEYS = frozenset(
    {"cache_read_input_tokens", "cache_creation_input_tokens"} | {path[0] for path in _CACHE_READ + _CACHE_WRITE}
)


def cost_of(price: Price, metadata: dict[str, Any]) -> float | None:
    """USD for the token counts in ``metadata`` at ``price``; None when there is no count."""
    get = metadata.get
    prompt = _count(get("prompt_tokens"))
    anthropic_usage = False
    if prompt is None:
        prompt = _count(get("input_tokens"))
        anthropic_usage = prompt is not None
    completion = _count(get("completion_tokens"))
    if completion is None:
        completion = _count(get("output_tokens"))
    if prompt is None and completion is None:
        return None
    input_u, output_u, cached_u, write_u = price.units
    units = prompt * input_u if prompt else 0
    if prompt is not None and not _CACHE_KEYS.isdisjoint(metadata):
        read = _count(get("cache_read_input_tokens"))
        anthropic_read = read is not None
        if read is None:
            read = _first(metadata, _CACHE_READ)
        write = _count(get("cache_creation_input_tokens"))
        anthropic_write = write is not None
        if write is None:
            write = _first(metadata, _CACHE_WRITE)
        read, write = read or 0, write or 0
        fresh = prompt
        on_top = anthropic_usage and (anthropic_read or anthropic_write)
        if not on_top and read + write <= prompt:
            fresh = prompt - read - write
        units = fresh * input_u + read * cached_u + write * write_u
    if completion:
        units += completion * output_u
    return units / UNITS_PER_USD


def price_event(event: Event, table: PriceTable) -> None:
    """Set ``metadata.cost`` and ``metadata.cost_computed`` when the rules above allow it."""
    if event.event_type != "model":
        return
    metadata = event.metadata
    if not isinstance(metadata, dict) or "cost" in metadata:
        return
    config = event.config
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, str) or not model:
        model = metadata.get("response_model")
    price = table.resolve(model, config.get("provider") if isinstance(config, dict) else None)
    if price is None:
        return
    cost = cost_of(price, metadata)
    if cost is None:
        return
    event.metadata = {**metadata, "cost": cost, "cost_computed": True}


def price_events(events: Iterable[Event], table: PriceTable) -> None:
    for event in events:
        if event.event_type == "model":
            price_event(event, table)


def sent_cost_wins(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """An update's metadata: one that sends a cost without saying how it was made marks it
    ``cost_computed: false``, so the merge cannot leave a computed cost's flag on a sent cost
    (merges keep keys the update does not name)."""
    if metadata is None or "cost" not in metadata or "cost_computed" in metadata:
        return metadata
    return {**metadata, "cost_computed": False}
