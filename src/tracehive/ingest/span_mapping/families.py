"""The HoneyHive payload families (``honeyhive_{inputs,outputs,config,...}.*`` and the bare
``honeyhive_<field>`` keys) rebuilt into the event's fields. Which keys go where and the shape of the
rebuilt objects depend only on the attribute keys, so they are compiled into a ``_FamilyPlan`` once per
key set; the memos (``_KEY_KINDS``, ``_FAMILY_PLANS`` and its weight) live here and only here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from tracehive.ingest.span_mapping.conventions import _CONVENTION_KEYS, _CONVENTION_PREFIXES
from tracehive.ingest.span_mapping.hygiene import _parse_json
from tracehive.ingest.span_mapping.rebuild import _free_key, _rebuild

_FAMILIES = {
    "honeyhive_inputs": "inputs",
    "honeyhive_outputs": "outputs",
    "honeyhive_config": "config",
    "honeyhive_metadata": "metadata",
    "honeyhive_metrics": "metrics",
    "honeyhive_feedback": "feedback",
    "honeyhive_user_properties": "user_properties",
}
_LEGACY_TEMPLATE = "honeyhive_prompt_template"


_FAMILY_HEADS = frozenset((*_FAMILIES, _LEGACY_TEMPLATE))
# What _families does with an attribute key: _PLAIN_KEY (nothing), _CONVENTION_KEY (one of the
# _CONVENTION_PREFIXES), or (family, path segments after it, or None for the bare key). Memoized per
# key string (senders repeat the same keys span after span); the memo is bounded.
_PLAIN_KEY: Any = object()
_CONVENTION_KEY: Any = object()
_KEY_KINDS: dict[str, Any] = {}
_KEY_KINDS_MAX = 16_384


def _key_kind(key: str) -> Any:
    head, dot, rest = key.partition(".")
    if head in _FAMILY_HEADS:
        kind = (head, tuple(rest.split(".")) if dot else None)
    elif key.startswith(_CONVENTION_PREFIXES):
        kind = _CONVENTION_KEY
    else:
        kind = _PLAIN_KEY
    if len(key) <= 256:
        if len(_KEY_KINDS) >= _KEY_KINDS_MAX:
            _KEY_KINDS.clear()
        _KEY_KINDS[key] = kind
    return kind


def _families(
    attrs: dict[str, Any], consumed: set[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[str, Sequence[str], Any]]] | None]:
    """The HoneyHive payload families (consuming their keys), and for ``_map_conventions`` the
    attributes under each of the (disjoint) ``_CONVENTION_PREFIXES``, in attribute order, as
    (key, segments after the prefix, value), by prefix without its dot; None when the span has no
    attribute that ``_map_conventions`` reads. The work that depends only on the attribute
    keys (which keys go where, the shape of the rebuilt objects) is a ``_FamilyPlan`` memoized per
    key tuple, since senders repeat the same keys span after span; only the values are placed per span."""
    global _family_plans_weight
    keys = tuple(attrs)
    plan = _FAMILY_PLANS.get(keys)
    if plan is None:
        plan = _family_plan(keys)
        weight = sum(map(len, keys)) + _PLAN_WEIGHT_PER_KEY * len(keys)
        if weight <= _FAMILY_PLANS_BUDGET // 8:  # a huge key set is compiled every time instead
            if _family_plans_weight + weight > _FAMILY_PLANS_BUDGET:
                _FAMILY_PLANS.clear()
                _family_plans_weight = 0
            _FAMILY_PLANS[keys] = plan
            _family_plans_weight += weight
    consumed.update(plan.consumed)
    values = tuple(attrs.values())
    out: dict[str, dict[str, Any]] = {}
    for field_name, build, root_index in plan.fields:
        children = build(values)
        out[field_name] = children if root_index is None else _with_root(children, values[root_index])
    if plan.template is not None:
        build, root_index = plan.template
        children = build(values)
        template = children if root_index is None else _with_root(children, values[root_index])
        if template:
            if "prompt_template" in out["config"]:
                out["config"][_free_key(out["config"], "prompt_template")] = template
            else:
                out["config"]["prompt_template"] = template
    if not plan.conventions:
        return out, None
    prefixed = {
        prefix: [(key, segments, values[i]) for key, segments, i in members]
        for prefix, members in plan.prefixed.items()
    }
    return out, prefixed


@dataclass(frozen=True, slots=True)
class _FamilyPlan:
    consumed: tuple[str, ...]  # the family keys
    fields: tuple[tuple[str, Callable[[tuple[Any, ...]], dict[str, Any]], int | None], ...]
    template: tuple[Callable[[tuple[Any, ...]], dict[str, Any]], int | None] | None
    prefixed: dict[str, list[tuple[str, tuple[str, ...], int]]]  # (key, segments, value position)
    conventions: bool  # any key that _map_conventions reads (else it has nothing to do)


# The memo of plans is bounded by weight (key characters plus an allowance per key for the plan's
# own objects), not count: a client must not fill memory with distinct key sets. When it is full it
# starts over; a miss costs about what mapping without plans costs.
_FAMILY_PLANS: dict[tuple[str, ...], _FamilyPlan] = {}
_FAMILY_PLANS_BUDGET = 2_000_000
_PLAN_WEIGHT_PER_KEY = 100
_family_plans_weight = 0


class _Slot:
    """Stands for the value at ``index`` of the attribute values while a plan is compiled."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _family_plan(keys: tuple[str, ...]) -> _FamilyPlan:
    groups: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
    roots: dict[str, int] = {}
    consumed: list[str] = []
    candidates: list[tuple[str, int]] = []
    for index, key in enumerate(keys):
        kind = _KEY_KINDS.get(key)
        if kind is None:
            kind = _key_kind(key)
        if kind is _PLAIN_KEY:
            continue
        if kind is _CONVENTION_KEY:
            candidates.append((key, index))
            continue
        head, segments = kind
        if segments is None:
            roots[head] = index
        else:
            groups.setdefault(head, []).append((segments, _Slot(index)))
        consumed.append(key)
    fields = tuple(
        (field_name, _field_builder(groups.get(family, ())), roots.get(family))
        for family, field_name in _FAMILIES.items()
    )
    template = None
    if _LEGACY_TEMPLATE in groups or _LEGACY_TEMPLATE in roots:
        template = (_field_builder(groups.get(_LEGACY_TEMPLATE, ())), roots.get(_LEGACY_TEMPLATE))
    prefixed: dict[str, list[tuple[str, tuple[str, ...], int]]] = {}
    for key, index in candidates:
        for dotted in _CONVENTION_PREFIXES:
            if key.startswith(dotted):
                segments = tuple(key[len(dotted) :].split("."))
                prefixed.setdefault(dotted[:-1], []).append((key, segments, index))
                break
    conventions = bool(prefixed) or not _CONVENTION_KEYS.isdisjoint(keys)
    return _FamilyPlan(tuple(consumed), fields, template, prefixed, conventions)


def _field_builder(
    entries: list[tuple[tuple[str, ...], Any]] | tuple[()],
) -> Callable[[tuple[Any, ...]], Any]:
    """A function of the attribute values that makes what ``_rebuild(entries, allow_list=False)``
    (wrapped as ``{"_value": ...}`` when not an object) makes of the real values."""
    children = _rebuild(entries, allow_list=False) if entries else {}
    if not isinstance(children, dict):
        children = {"_value": children}
    return _builder(children)


def _none(values: tuple[Any, ...]) -> None:
    return None


def _builder(shape: Any) -> Callable[[tuple[Any, ...]], Any]:
    """Compile a ``_rebuild`` result over ``_Slot``s into a function that makes a fresh copy of it
    with the slots filled from the values."""
    if type(shape) is _Slot:
        return itemgetter(shape.index)
    if shape is None:
        return _none  # a hole in a list
    items = list(shape.values()) if type(shape) is dict else shape
    if all(type(item) is _Slot for item in items):
        getter = itemgetter(*[item.index for item in items]) if items else None
        if type(shape) is dict:
            names = tuple(shape)
            if len(names) == 0:
                return lambda values: {}
            if len(names) == 1:
                name = names[0]
                return lambda values: {name: getter(values)}
            return lambda values: dict(zip(names, getter(values)))
        if len(items) == 1:
            return lambda values: [getter(values)]
        return lambda values: list(getter(values))
    builders = [_builder(item) for item in items]
    if type(shape) is dict:
        pairs = tuple(zip(shape, builders))
        return lambda values: {name: build(values) for name, build in pairs}
    return lambda values: [build(values) for build in builders]


def _with_root(children: dict[str, Any], root: Any) -> dict[str, Any]:
    """A field from its rebuilt dotted entries and the bare key's value (see the package docstring)."""
    obj = root if isinstance(root, dict) else None
    if obj is None and isinstance(root, str):
        ok, parsed = _parse_json(root)
        if ok and isinstance(parsed, dict):
            obj = parsed
    if obj is None:
        children[_free_key(children, "_value")] = root
        return children
    merged = {**obj, **children}
    clashes = {k: v for k, v in obj.items() if k in children}
    if clashes:
        merged[_free_key(merged, "_value")] = clashes
    return merged
