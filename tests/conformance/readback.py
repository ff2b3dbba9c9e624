"""Reading what the real clients sent back through tracehive's own API: session trees
(``GET /v1/sessions/{id}``) and single events (``GET /v1/events/{id}``), plus small matchers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx


def get_tree(api: httpx.Client, session_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/sessions/{session_id}")
    assert r.status_code == 200, f"GET /v1/sessions/{session_id} -> {r.status_code} {r.text}"
    return r.json()  # type: ignore[no-any-return]


def get_event(api: httpx.Client, event_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/events/{event_id}")
    assert r.status_code == 200, f"GET /v1/events/{event_id} -> {r.status_code} {r.text}"
    body = r.json()
    assert set(body) >= {"event"}, body
    return body["event"]  # type: ignore[no-any-return]


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node below ``node`` (not ``node`` itself), depth first."""
    for child in node.get("children", []):
        yield child
        yield from walk(child)


def nodes_by_name(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tree's events by ``event_name``; names must be unique in the trees the tests build."""
    out: dict[str, dict[str, Any]] = {}
    for node in walk(tree):
        name = node["event_name"]
        names = sorted(n["event_name"] for n in walk(tree))
        assert name not in out, f"two events named {name!r} in the tree: {names}"
        out[name] = node
    return out


def shape(node: dict[str, Any]) -> dict[str, Any]:
    """The tree reduced to names: {event_name: {child_name: {...}}}, for readable shape asserts."""
    return {c["event_name"]: shape(c) for c in node.get("children", [])}


def wait_for_tree(
    api: httpx.Client,
    session_id: str,
    ready: Callable[[dict[str, Any]], bool],
    timeout: float = 5.0,
) -> dict[str, Any]:
    """The session tree once ``ready(tree)`` holds, else the last tree read (the caller asserts).

    Clients only report success after a 200, and a 200 means stored, so this normally returns on
    the first read; the bounded retry only absorbs a client that flushes in a background thread.
    """
    deadline = time.monotonic() + timeout
    while True:
        r = api.get(f"/v1/sessions/{session_id}")
        if r.status_code == 200 and ready(r.json()):
            return r.json()  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            assert r.status_code == 200, f"GET /v1/sessions/{session_id} -> {r.status_code} {r.text}"
            return r.json()  # type: ignore[no-any-return]
        time.sleep(0.1)


def count_events(n: int) -> Callable[[dict[str, Any]], bool]:
    return lambda tree: sum(1 for _ in walk(tree)) >= n


def subset(actual: Any, expected: dict[str, Any]) -> bool:
    """``expected``'s keys all present in ``actual`` with equal values."""
    return isinstance(actual, dict) and all(k in actual and actual[k] == v for k, v in expected.items())


def assert_subset(actual: Any, expected: dict[str, Any], what: str) -> None:
    assert subset(actual, expected), f"{what}: expected at least {expected!r}, got {actual!r}"


def assert_same_event(tree_node: dict[str, Any], event: dict[str, Any]) -> None:
    """A tree node and GET /v1/events/{id} describe the same stored event."""
    for k in ("event_id", "session_id", "parent_id", "event_type", "event_name", "inputs", "outputs",
              "config", "error", "feedback", "metrics", "user_properties", "start_time", "end_time",
              "duration"):
        assert tree_node.get(k) == event.get(k), (
            f"{k}: tree has {tree_node.get(k)!r}, GET event has {event.get(k)!r}"
        )


def meta(metadata: dict[str, Any], dotted: str) -> Any:
    """An unmapped attribute kept in metadata: under its dotted key, nested by its parts, or in
    tracehive's ``metadata.attributes`` (original keys, flat)."""
    if dotted in metadata:
        return metadata[dotted]
    if isinstance(metadata.get("attributes"), dict) and dotted in metadata["attributes"]:
        return metadata["attributes"][dotted]
    node: Any = metadata
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def text_of(value: Any) -> str:
    """A field as text (JSON for structured values), for "the payload mentions X" checks where the
    exact layout is the server's choice."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
