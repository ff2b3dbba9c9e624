"""Session trees (contract 3.3): events nested by ``parent_id`` under the session event, with
roll-ups on the root. Events whose parent is not in the session (not yet arrived, or deleted) are
attached under the root and marked ``orphan``, never dropped; so are events caught in a cycle."""

from __future__ import annotations

from collections import deque
from typing import Any

from tracehive.model.event import Event

_TOKEN_KEYS = ("total_tokens", "prompt_tokens", "completion_tokens")
# Deeper events are listed, flagged ``flattened``, under their ancestor at this depth.
MAX_TREE_DEPTH = 64


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def rollups(events: list[Event], project_name: str) -> dict[str, Any]:
    members = [e for e in events if e.event_type != "session"]
    cost: float = 0
    tokens = dict.fromkeys(_TOKEN_KEYS, 0)
    for event in members:
        meta = event.metadata
        value = _number(meta.get("cost"))
        if value is not None:
            cost += value
        for key in _TOKEN_KEYS:
            value = _number(meta.get(key))
            if value is not None:
                tokens[key] += value
    return {
        "num_events": len(members),
        "num_model_events": sum(1 for e in members if e.event_type == "model"),
        "has_feedback": any(bool(e.feedback) for e in events),
        "cost": cost,
        **tokens,
        "scope": {"name": project_name},
    }


def build_tree(root: Event, events: list[Event], project_name: str) -> dict[str, Any]:
    """``events`` are all the session's events, oldest first (the root may be among them)."""
    nodes: dict[str, dict[str, Any]] = {}
    members = [e for e in events if e.event_id != root.event_id]
    for event in members:
        node = event.to_read_dict()
        node["children"] = []
        nodes[event.event_id] = node
    parent_of = {e.event_id: e.parent_id for e in members}

    root_node = root.to_read_dict()
    root_node["children"] = []
    root_node["metadata"] = {**root.metadata, **rollups(events, project_name)}

    # An event attaches to its parent only if following parents upwards reaches the root. Each
    # event is resolved once ("ok", or "orphan-head": attached under the root), so this is linear.
    state: dict[str, str] = {}
    for start in parent_of:
        path: list[str] = []
        on_path: set[str] = set()
        node_id: str | None = start
        verdict = "orphan"
        while True:
            if node_id is None or node_id == root.event_id:
                verdict = "ok"
                break
            if node_id in state:
                verdict = state[node_id]
                break
            if node_id in on_path or node_id not in parent_of:
                verdict = "orphan"
                break
            path.append(node_id)
            on_path.add(node_id)
            node_id = parent_of[node_id]
        if verdict == "orphan" and path:
            # The last event on the path is the one whose parent is missing (or closes a cycle):
            # it becomes an orphan under the root, and everything below it hangs from it.
            state[path[-1]] = "orphan-head"
            for node_id in path[:-1]:
                state[node_id] = "ok"
        else:  # reached the root, or an event already known to reach it
            for node_id in path:
                state[node_id] = "ok"

    # Who hangs where, in start-time order; then a breadth-first walk that nests at most
    # MAX_TREE_DEPTH levels (a JSON encoder, ours and clients', stops at a few hundred levels).
    kids: dict[str, list[str]] = {root.event_id: []}
    for event in members:
        head = state.get(event.event_id) == "orphan-head"
        if head:
            nodes[event.event_id]["orphan"] = True
        parent_id = event.parent_id
        at = root.event_id if head or parent_id is None or parent_id == root.event_id else parent_id
        kids.setdefault(at, []).append(event.event_id)

    containers = {root.event_id: root_node}
    queue: deque[tuple[str, int, str]] = deque((c, 1, root.event_id) for c in kids[root.event_id])
    while queue:
        node_id, depth, target = queue.popleft()
        node = nodes[node_id]
        containers[target]["children"].append(node)
        if depth > MAX_TREE_DEPTH:
            node["flattened"] = True  # shown under its ancestor at the depth limit; parent_id intact
        below = node_id if depth < MAX_TREE_DEPTH else (target if depth > MAX_TREE_DEPTH else node_id)
        containers.setdefault(node_id, node)
        for child in kids.get(node_id, ()):
            queue.append((child, depth + 1, below))
    if len(containers) - 1 < len(members):  # never drop an event, whatever its links say
        for event in members:
            if event.event_id not in containers:
                nodes[event.event_id]["orphan"] = True
                root_node["children"].append(nodes[event.event_id])
    return root_node
