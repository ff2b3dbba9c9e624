"""The fields a query can name: the catalogue of event columns by kind (text, number, JSON),
``FieldRef`` (a column and, for a JSON column, a path inside it) and the parser of field paths
(``metadata."service.name".0``). Filters, projections, charts and the schema route share them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracehive.query.errors import _fail, _show

# Fields ----------------------------------------------------------------------------------------

TEXT_FIELDS = ("event_id", "session_id", "parent_id", "event_type", "event_name", "source", "error")
NUMBER_FIELDS = ("start_time", "end_time", "duration")
JSON_FIELDS = ("config", "inputs", "outputs", "metadata", "feedback", "metrics", "user_properties", "children_ids")
FILTER_FIELDS = TEXT_FIELDS + NUMBER_FIELDS + JSON_FIELDS
# Read responses also carry the scope ids (contract 2.1); they can be projected, not filtered.
PROJECTION_FIELDS = FILTER_FIELDS + ("org_id", "workspace_id", "project_id", "tenant")
ID_FIELDS = ("event_id", "session_id", "parent_id")

MAX_FIELD_LENGTH = 512
MAX_PATH_SEGMENTS = 32
MAX_INDEX_DIGITS = 9

_SEGMENT = re.compile(r"[A-Za-z0-9_\-]+")
_INDEX = re.compile(r"[0-9]+")
# A quoted path segment, ``metadata."service.name"``: any key without a double quote, a backslash
# or a control character (dots, spaces and digits-only keys included). Segments are bound
# parameters or quoted by every backend's compiler, never written into SQL as they are.
_QUOTED_FORBIDDEN = re.compile(r'["\\\x00-\x1f\x7f]')


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A top-level ``column`` and, for JSON columns, a path inside it (``int`` = array index)."""

    column: str
    path: tuple[str | int, ...] = ()

    @property
    def kind(self) -> str:
        """``text``, ``number``, ``json`` or ``scope`` (the latter for projections only)."""
        if self.column in TEXT_FIELDS:
            return "text"
        if self.column in NUMBER_FIELDS:
            return "number"
        if self.column in JSON_FIELDS:
            return "json"
        return "scope"

    def __str__(self) -> str:
        """The field as the filter language writes it (``parse_field`` reads it back)."""
        parts = [self.column]
        for p in self.path:
            parts.append(str(p) if isinstance(p, int) else (format_segment(p) or p))
        return ".".join(parts)


# Fields and paths ------------------------------------------------------------------------------


def _split_path(text: str, where: str) -> list[tuple[str, bool]]:
    """``a.b."c.d".0`` -> ``[(a, False), (b, False), (c.d, True), (0, False)]``: dots split, except
    inside double quotes, which hold one key as it is."""
    parts: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            close = text.find('"', i + 1)
            if close < 0:
                raise _fail(where, f"unclosed quote in {_show(text)}")
            parts.append((text[i + 1 : close], True))
            i = close + 1
            if i < n and text[i] != ".":
                raise _fail(where, f"a quoted key must be followed by '.' or end the path in {_show(text)}")
        else:
            dot = text.find(".", i)
            end = n if dot < 0 else dot
            parts.append((text[i:end], False))
            i = end
        if i >= n:
            return parts
        i += 1  # the dot
        if i >= n:
            parts.append(("", False))  # a trailing dot: an empty segment
            return parts


def format_segment(key: str) -> str | None:
    """A key as a path segment the parser reads back as that key: bare when it can be
    (``[A-Za-z0-9_-]+``, not all digits), else quoted; None if no segment can hold it."""
    if _SEGMENT.fullmatch(key) and not _INDEX.fullmatch(key):
        return key
    if key and not _QUOTED_FORBIDDEN.search(key):
        return f'"{key}"'
    return None


def parse_field(text: Any, where: str, *, allowed: Sequence[str] = FILTER_FIELDS) -> FieldRef:
    """``column`` or ``column.seg.seg``; bare segments are ``[A-Za-z0-9_-]+`` (all digits index an
    array), a quoted segment (``metadata."service.name"``, ``outputs."0"``) is one key as written."""
    if not isinstance(text, str):
        raise _fail(where, "must be a string")
    if not text:
        raise _fail(where, "must not be empty")
    if len(text) > MAX_FIELD_LENGTH:
        raise _fail(where, f"is longer than {MAX_FIELD_LENGTH} characters")
    (head, head_quoted), *rest = _split_path(text, where)
    if head_quoted:
        raise _fail(where, f"the column {_show(head)} is not quoted; only keys inside JSON fields are")
    if head not in allowed:
        raise _fail(
            where,
            f"unknown field {_show(head)}; expected one of {', '.join(allowed)} "
            f"(or a dot path into {', '.join(JSON_FIELDS)})",
        )
    if rest and head not in JSON_FIELDS:
        raise _fail(where, f"{head} is not a JSON field, so {_show(text)} cannot have a path")
    if len(rest) > MAX_PATH_SEGMENTS:
        raise _fail(where, f"path has more than {MAX_PATH_SEGMENTS} segments")
    path: list[str | int] = []
    for segment, quoted in rest:
        if not segment:
            raise _fail(where, f"empty path segment in {_show(text)}")
        if quoted:
            if _QUOTED_FORBIDDEN.search(segment):
                raise _fail(where, f"quoted key {_show(segment)} may not hold a double quote, a backslash "
                                   "or a control character")
            path.append(segment)
            continue
        if not _SEGMENT.fullmatch(segment):
            raise _fail(where, f"path segment {_show(segment)} may only contain letters, digits, '_' and '-' "
                               f'(quote a key that holds others: metadata."service.name")')
        if _INDEX.fullmatch(segment):
            if len(segment) > MAX_INDEX_DIGITS:
                raise _fail(where, f"array index {segment} is too large")
            path.append(int(segment))
        else:
            path.append(segment)
    return FieldRef(head, tuple(path))
