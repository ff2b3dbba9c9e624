"""Span events: GenAI message events become chat history and outputs; exception events, the
status and ``honeyhive_error`` make the ``error`` field and ``metadata.exception``; the rest is kept
for ``metadata.events``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracehive.ingest.span_mapping.conventions import _fill_outputs, _Filler
from tracehive.ingest.span_mapping.hygiene import (
    _as_text,
    _clean,
    _clean_attrs,
    _clean_str,
    _json_value,
    _nonempty_str,
    _parse_json,
)
from tracehive.ingest.span_mapping.identity import _nanos
from tracehive.ingest.span_mapping.rebuild import _put_reserved, _rebuild
from tracehive.ingest.span_mapping.reporting import _short

_MESSAGE_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


_NO_EVENTS: tuple[()] = ()


def _span_events(span: Any) -> list[tuple[str, float | None, dict[str, Any]]]:
    raw = getattr(span, "events", ()) or _NO_EVENTS
    if raw is _NO_EVENTS:
        return []
    if not isinstance(raw, (list, tuple)):
        return [("(malformed events)", None, {"value": _clean(raw)})]
    out = []
    for item in raw:
        name = getattr(item, "name", None)
        name = _clean_str(name) if isinstance(name, str) else ""
        time_ns = _nanos(getattr(item, "time_unix_nano", None))
        attrs = getattr(item, "attributes", None)
        attrs = _clean_attrs(attrs) if isinstance(attrs, Mapping) else {}
        out.append((name, None if time_ns is None else time_ns / 1_000_000, attrs))
    return out


def _event_record(name: str, time_ms: float | None, attrs: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "time": time_ms, "attributes": attrs}


def _map_message_events(
    events: list[tuple[str, float | None, dict[str, Any]]],
    fill: _Filler,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
) -> list[tuple[str, float | None, dict[str, Any]]]:
    """GenAI span events (``gen_ai.<role>.message``, ``gen_ai.choice``, and the older
    ``gen_ai.content.prompt|completion``) → chat history / outputs. Returns the events left over."""
    history: list[Any] = []
    history_events = []
    choices: list[Any] = []
    choice_events = []
    rest = []
    for ev in events:
        name, _, attrs = ev
        if name in _MESSAGE_EVENT_ROLES:
            message = _event_message(attrs)
            message.setdefault("role", _MESSAGE_EVENT_ROLES[name])
            history.append(message)
            history_events.append(ev)
        elif name == "gen_ai.choice":
            message = _event_message({k: v for k, v in attrs.items() if k not in ("finish_reason", "index")})
            message.setdefault("role", "assistant")
            for key in ("finish_reason", "index"):
                if key in attrs:
                    message.setdefault(key, attrs[key])
            choices.append(message)
            choice_events.append(ev)
        elif name == "gen_ai.content.prompt" and isinstance(_json_value(attrs.get("gen_ai.prompt")), list):
            history.extend(_json_value(attrs.get("gen_ai.prompt")))
            history_events.append(ev)
        elif name == "gen_ai.content.completion" and isinstance(
            _json_value(attrs.get("gen_ai.completion")), list
        ):
            choices.extend(_json_value(attrs.get("gen_ai.completion")))
            choice_events.append(ev)
        else:
            rest.append(ev)
    if history and not fill(inputs, "chat_history", history):
        rest.extend(history_events)
    if choices:
        probe = _Filler(set())
        trial = dict(outputs)
        _fill_outputs(probe, trial, choices, ["ok"])
        if "ok" in probe.consumed:
            outputs.update(trial)
        else:
            rest.extend(choice_events)
    return rest


def _event_message(attrs: dict[str, Any]) -> dict[str, Any]:
    """An event's attributes as a message: ``message`` may be a JSON string or flattened keys;
    ``gen_ai.*`` attributes (system/provider) are not part of the message."""
    plain = {k: v for k, v in attrs.items() if not k.startswith("gen_ai.")}
    embedded = _json_value(plain.get("message"))
    message: dict[str, Any] = {}
    if isinstance(embedded, dict):
        message.update(embedded)
        plain.pop("message")
    rebuilt = _rebuild([(k.split("."), v) for k, v in plain.items()], allow_list=False)
    if isinstance(rebuilt.get("message"), dict):
        for key, value in rebuilt.pop("message").items():
            message.setdefault(key, value)
    for key, value in rebuilt.items():
        message.setdefault(key, value)
    if isinstance(message.get("content"), str):
        ok, parsed = _parse_json(message["content"])
        if ok and isinstance(parsed, (list, dict)):
            message["content"] = parsed
    return message


def _errors(
    span: Any,
    attrs: dict[str, Any],
    fill: _Filler,
    metadata: dict[str, Any],
    events: list[tuple[str, float | None, dict[str, Any]]],
) -> tuple[str | None, list[dict[str, Any]]]:
    exceptions = [ev for ev in events if ev[0] == "exception"]
    leftover = [_event_record(*ev) for ev in events if ev[0] != "exception"]
    first: dict[str, Any] | None = None
    if exceptions:
        first = {k.removeprefix("exception."): v for k, v in exceptions[0][2].items()}
        _put_reserved(metadata, "exception", first)
        seen = {(_short(first.get("type")), _short(first.get("message"), 10_000))}
        for ev in exceptions[1:]:
            key = (_short(ev[2].get("exception.type")), _short(ev[2].get("exception.message"), 10_000))
            if key not in seen:
                seen.add(key)
                leftover.append(_event_record(*ev))

    error_type = attrs.get("honeyhive_error_type")
    if _nonempty_str(error_type):
        fill(metadata, "error_type", error_type, ["honeyhive_error_type"])
    elif first is not None and _nonempty_str(first.get("type")):
        fill(metadata, "error_type", first["type"])

    explicit = attrs.get("honeyhive_error")
    if explicit is not None and explicit != "":
        text = _as_text(explicit)
        if _nonempty_str(error_type) and not text.startswith(error_type):
            text = f"{error_type}: {text}"
        fill.consumed.add("honeyhive_error")
        return text, leftover
    status_code = getattr(span, "status_code", "")
    message = getattr(span, "status_message", "")
    if status_code == "STATUS_CODE_ERROR" and isinstance(message, str) and message.strip():
        return _clean_str(message), leftover
    if first is not None:
        kind, text = first.get("type"), first.get("message")
        parts = [_as_text(p) for p in (kind, text) if p not in (None, "")]
        if parts:
            return ": ".join(parts), leftover
    if status_code == "STATUS_CODE_ERROR":
        return "span status ERROR", leftover
    return None, leftover
