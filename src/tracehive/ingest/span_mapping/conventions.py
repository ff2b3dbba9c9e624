"""Third-party conventions (OpenInference, OpenLLMetry/Traceloop, GenAI semconv): they only fill
what the HoneyHive keys left free, through ``_Filler``, which also records which attributes ended up
represented."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tracehive.ingest.span_mapping.hygiene import _json_value, _nonempty_str, _parse_json
from tracehive.ingest.span_mapping.rebuild import _rebuild


class _Filler:
    """Fill a key only if it is free; the source attributes count as represented when the key ends
    up holding exactly this value."""

    def __init__(self, consumed: set[str]) -> None:
        self.consumed = consumed

    def __call__(self, target: dict[str, Any], key: str, value: Any, sources: Iterable[str] = ()) -> bool:
        if key not in target:
            target[key] = value
        elif target[key] != value:
            return False
        self.consumed.update(sources)
        return True

    def spread(self, target: dict[str, Any], obj: dict[str, Any], sources: Iterable[str]) -> bool:
        ok = True
        for key, value in obj.items():
            ok = self(target, key, value) and ok
        if ok:
            self.consumed.update(sources)
        return ok


# Every attribute _map_conventions reads besides those under _CONVENTION_PREFIXES; keep in sync.
_CONVENTION_KEYS = frozenset((
    "gen_ai.input.messages", "gen_ai.output.messages", "input.value", "input.mime_type", "output.value",
    "output.mime_type", "traceloop.entity.input", "traceloop.entity.output", "llm.model_name",
    "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "llm.invocation_parameters",
    "gen_ai.response.model", "llm.usage.total_tokens", "user.id",
))  # fmt: skip
_GENAI_USAGE_NAMES = {"input_tokens": "prompt_tokens", "output_tokens": "completion_tokens"}
_TOKEN_COUNT_NAMES = {"prompt": "prompt_tokens", "completion": "completion_tokens", "total": "total_tokens"}
_CONVENTION_PREFIXES = (
    "llm.input_messages.", "gen_ai.prompt.", "llm.output_messages.", "gen_ai.completion.",
    "gen_ai.request.", "gen_ai.usage.", "llm.token_count.",
)  # fmt: skip


def _fill_prefix(
    fill: _Filler,
    target: dict[str, Any],
    members: list[tuple[str, Sequence[str], Any]] | None,
    rename: Mapping[str, str] | None = None,
) -> None:
    """``prefix.<name>[.<rest>]`` → ``target[rename(name)]``, one rebuilt subtree per name;
    ``members`` are the prefix's entries from ``_families``."""
    if not members:
        return
    grouped: dict[str, list[tuple[str, Sequence[str], Any]]] = {}
    for key, segments, value in members:
        grouped.setdefault(segments[0], []).append((key, segments[1:], value))
    for name, group in grouped.items():
        if len(group) == 1 and not group[0][1]:
            value = group[0][2]  # what _rebuild makes of one entry with no segments left
        else:
            value = _rebuild([(rest, v) for _, rest, v in group])
        fill(target, rename.get(name, name) if rename else name, value, [k for k, _, _ in group])


def _map_conventions(
    attrs: dict[str, Any],
    fill: _Filler,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    config: dict[str, Any],
    metadata: dict[str, Any],
    user_properties: dict[str, Any],
    prefixed: dict[str, list[tuple[str, Sequence[str], Any]]],
) -> None:
    """Fill what the HoneyHive keys left free from third-party conventions. Reads only the keys under
    ``_CONVENTION_PREFIXES`` (given as ``prefixed``) and those in ``_CONVENTION_KEYS`` (the caller
    skips spans with neither)."""
    # Messages first: they outrank the raw input/output blobs. Each attribute lands in one place:
    # where the messages were mapped, the raw blob (OpenInference's input.value holds the whole
    # request: the same messages, the model...) is not spread beside them and stays, as sent, in
    # metadata.attributes.
    had_history = "chat_history" in inputs
    for prefix in ("llm.input_messages", "gen_ai.prompt"):
        members = prefixed.get(prefix)
        if members:
            history = _message_list(_rebuild([(segments, v) for _, segments, v in members]))
            fill(inputs, "chat_history", history, [k for k, _, _ in members])
    messages = attrs.get("gen_ai.input.messages")
    parsed = _json_value(messages)
    if isinstance(parsed, list):
        fill(inputs, "chat_history", [_semconv_message(m) for m in parsed], ["gen_ai.input.messages"])
    input_messages = not had_history and "chat_history" in inputs

    outputs_before = len(outputs)
    for prefix in ("llm.output_messages", "gen_ai.completion"):
        members = prefixed.get(prefix)
        if members:
            items = _message_list(_rebuild([(segments, v) for _, segments, v in members]))
            _fill_outputs(fill, outputs, items, [k for k, _, _ in members])
    parsed = _json_value(attrs.get("gen_ai.output.messages"))
    if isinstance(parsed, list) and parsed:
        _fill_outputs(fill, outputs, [_semconv_message(m) for m in parsed], ["gen_ai.output.messages"])
    output_messages = len(outputs) > outputs_before

    # Raw input/output blobs, where no messages say the same.
    if not input_messages:
        _fill_blob(fill, inputs, "input", attrs, "input.value", "input.mime_type")
        _fill_blob(fill, inputs, "input", attrs, "traceloop.entity.input", None)
    if not output_messages:
        _fill_blob(fill, outputs, "output", attrs, "output.value", "output.mime_type")
        _fill_blob(fill, outputs, "output", attrs, "traceloop.entity.output", None)

    # Config. config.model is the model asked for (gen_ai.request.model, or the model among
    # OpenInference's invocation parameters); the model that answered (gen_ai.response.model,
    # OpenInference's llm.model_name, often a dated variant) goes to metadata.response_model,
    # and is config.model too only when the request's model is unknown.
    _fill_prefix(fill, config, prefixed.get("gen_ai.request"))
    for key in ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"):
        if _nonempty_str(attrs.get(key)):
            fill(config, "provider", attrs[key], [key])
    params = _json_value(attrs.get("llm.invocation_parameters"))
    if isinstance(params, dict):
        fill.spread(config, params, ["llm.invocation_parameters"])
    for key in ("gen_ai.response.model", "llm.model_name"):
        answered = attrs.get(key)
        if not _nonempty_str(answered):
            continue
        if "model" not in config:
            fill(config, "model", answered)
        fill(metadata, "response_model", answered, [key])

    # Usage.
    _fill_prefix(fill, metadata, prefixed.get("gen_ai.usage"), _GENAI_USAGE_NAMES)
    _fill_prefix(fill, metadata, prefixed.get("llm.token_count"), _TOKEN_COUNT_NAMES)
    if "llm.usage.total_tokens" in attrs:
        fill(metadata, "total_tokens", attrs["llm.usage.total_tokens"], ["llm.usage.total_tokens"])

    user_id = attrs.get("user.id")
    if _nonempty_str(user_id):
        fill(user_properties, "user_id", user_id, ["user.id"])


def _fill_blob(
    fill: _Filler,
    target: dict[str, Any],
    key: str,
    attrs: dict[str, Any],
    value_key: str,
    mime_key: str | None,
) -> None:
    if value_key not in attrs:
        return
    raw = attrs[value_key]
    sources = [value_key]
    parse = True
    if mime_key is not None:
        mime = attrs.get(mime_key)
        parse = isinstance(mime, str) and "json" in mime.lower()
        if mime_key in attrs:
            sources.append(mime_key)
    value = raw
    if parse and isinstance(raw, str):
        ok, parsed = _parse_json(raw)
        if ok:
            value = parsed
    if isinstance(value, dict):
        fill.spread(target, value, sources)
    else:
        fill(target, key, value, sources)


def _message_list(rebuilt: Any) -> Any:
    """OpenInference wraps each item as ``{"message": {...}}``; unwrap it."""
    items = rebuilt if isinstance(rebuilt, list) else None
    if items is None:
        return rebuilt
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("message"), dict):
            inner = dict(item["message"])
            for key, value in item.items():
                if key != "message":
                    inner.setdefault(key, value)
            item = inner
        out.append(item)
    return out


def _semconv_message(message: Any) -> Any:
    """GenAI semconv ``{role, parts: [{type: "text", content}]}`` → ``{role, content}`` when every
    part is text; other messages are kept as they are."""
    if not isinstance(message, dict):
        return message
    parts = message.get("parts")
    if not isinstance(parts, list) or not parts:
        return message
    texts = []
    for part in parts:
        if not (
            isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("content"), str)
        ):
            return message
        texts.append(part["content"])
    out = {k: v for k, v in message.items() if k != "parts"}
    out.setdefault("content", "\n".join(texts))
    return out


def _fill_outputs(fill: _Filler, outputs: dict[str, Any], items: Any, sources: list[str]) -> None:
    if not isinstance(items, list):
        fill(outputs, "choices", items, sources)
        return
    ok = True
    first = items[0] if items else None
    if isinstance(first, dict):
        for key, value in first.items():
            ok = fill(outputs, key, value) and ok
    if len(items) > 1 or not isinstance(first, dict):
        ok = fill(outputs, "choices", items) and ok
    if ok:
        fill.consumed.update(sources)


def _derive_total_tokens(metadata: dict[str, Any]) -> None:
    if "total_tokens" in metadata:
        return
    prompt, completion = metadata.get("prompt_tokens"), metadata.get("completion_tokens")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (prompt, completion)):
        metadata["total_tokens"] = prompt + completion
