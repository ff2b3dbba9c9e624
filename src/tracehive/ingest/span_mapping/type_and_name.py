"""The event's type (a HoneyHive type, else contract 8.5's resolution), its name and its source,
and the first-string lookup they (and the session name) share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracehive.ingest.span_mapping.hygiene import _nonempty_str
from tracehive.model.wire import MAX_NAME_LENGTH

_EVENT_TYPES = ("model", "tool", "chain")

_SOURCE_KEYS = ("honeyhive.source", "honeyhive_source", "traceloop.association.properties.source")
_TYPE_KEYS = ("honeyhive_event_type", "honeyhive_event_type_raw", "honeyhive.event_type")
_NAME_KEYS = ("honeyhive_event_name", "honeyhive.event_name", "traceloop.entity.name")

_GENAI_OPERATION_TYPES = {
    "chat": "model",
    "text_completion": "model",
    "generate_content": "model",
    "embeddings": "model",
    "invoke_agent": "chain",
    "create_agent": "chain",
    "invoke_workflow": "chain",
    "execute_tool": "tool",
    "retrieval": "tool",
}
_OPENINFERENCE_KIND_TYPES = {
    "LLM": "model",
    "CHAIN": "chain",
    "AGENT": "chain",
    "TOOL": "tool",
    "RETRIEVER": "tool",
    "EMBEDDING": "tool",
    "RERANKER": "tool",
    "GUARDRAIL": "tool",
}
_TRACELOOP_KIND_TYPES = {"workflow": "chain", "agent": "chain", "task": "chain", "tool": "tool"}
# The tracer's own heuristics (honeyhive/tracer/utils/event_type.py, 1.7.0).
_MODEL_NAME_HINTS = (
    "llm", "model", "gpt", "claude", "llama", "gemini", "mistral", "palm", "chat", "completion",
    "generate", "inference", "openai", "anthropic", "bedrock", "google", "generativeai",
    "ai_", "ml_", "nlp_",
)  # fmt: skip
_MODEL_ATTRIBUTE_HINTS = (
    "llm.request.model", "llm.response.model", "llm.model.name", "gen_ai.request.model",
    "gen_ai.response.model", "openai.model", "anthropic.model", "bedrock.model_id", "google.model",
    "model_name", "model_id", "model_type", "ai_model",
)  # fmt: skip


def _service_name(resource: Mapping[str, Any] | None) -> str | None:
    """The resource's ``service.name``, unless it is the SDKs' placeholder for an unset one
    (``unknown_service``, ``unknown_service:python``...), which names nothing."""
    name = resource.get("service.name") if resource else None
    if not isinstance(name, str) or not name.strip() or name.startswith("unknown_service"):
        return None
    return name


def _event_type(attrs: dict[str, Any], consumed: set[str], span_name: str) -> str:
    found: list[tuple[str, str]] = []
    for key in _TYPE_KEYS:
        value = attrs.get(key)
        if isinstance(value, str):
            normalized = value.strip().lower()
            if normalized == "session":
                found.append((key, "tool"))
            elif normalized in _EVENT_TYPES:
                found.append((key, normalized))
    if found:
        chosen = next((t for _, t in found if t != "tool"), "tool")
        for key, normalized in found:
            if normalized == chosen and attrs[key].strip().lower() == chosen:
                consumed.add(key)
        return chosen
    return _resolve_type(attrs, span_name)


def _resolve_type(attrs: dict[str, Any], span_name: str) -> str:
    """Contract 8.5 for spans without a HoneyHive type (third-party exporters)."""
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation.strip().lower() in _GENAI_OPERATION_TYPES:
        return _GENAI_OPERATION_TYPES[operation.strip().lower()]
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind.strip():
        return _OPENINFERENCE_KIND_TYPES.get(kind.strip().upper(), "tool")
    kind = attrs.get("traceloop.span.kind")
    if isinstance(kind, str) and kind.strip().lower() in _TRACELOOP_KIND_TYPES:
        return _TRACELOOP_KIND_TYPES[kind.strip().lower()]
    lowered = span_name.lower()
    if any(hint in lowered for hint in _MODEL_NAME_HINTS):
        return "model"
    if any(key in attrs for key in _MODEL_ATTRIBUTE_HINTS):
        return "model"
    return "tool"


def _capped(name: str) -> str:
    """A name within the REST routes' length limit. A span cannot be refused for a long name (OTLP
    has no per-span error), so it is cut, with an ellipsis showing that it was."""
    if len(name) <= MAX_NAME_LENGTH:
        return name
    return name[: MAX_NAME_LENGTH - 1] + "…"


def _first_str(attrs: dict[str, Any], keys: tuple[str, ...], consumed: set[str]) -> str | None:
    chosen = None
    for key in keys:
        value = attrs.get(key)
        if _nonempty_str(value):
            if chosen is None:
                chosen = value
            if value == chosen:
                consumed.add(key)
    return chosen
