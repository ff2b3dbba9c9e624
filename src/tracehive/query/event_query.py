"""The parsed query a backend compiles: ``EventQuery`` (conditions ANDed, a start_time range, a
page, projections), its ``Condition`` and ``DateRange``, the operators and value types (and which
operators apply to which type), and the bounds of a query's paging. Nothing here knows about SQL
(see ``tracehive.query.filters`` for the semantics every backend implements)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from tracehive.query.fields import FieldRef

DEFAULT_LIMIT = 1000
EXPORT_MAX_LIMIT = 7500
MAX_PAGE = 1_000_000_000


class Operator(str, Enum):
    EXISTS = "exists"
    NOT_EXISTS = "not exists"
    IS = "is"
    IS_NOT = "is not"
    CONTAINS = "contains"
    NOT_CONTAINS = "not contains"
    GREATER_THAN = "greater than"
    LESS_THAN = "less than"
    AFTER = "after"
    BEFORE = "before"


class ValueType(str, Enum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"


# Which operators apply to which type, after ``after``/``before`` became greater/less than.
# The contract's table (spec-2026-02), plus ``is not`` for booleans.
OPERATORS_BY_TYPE: dict[ValueType, frozenset[Operator]] = {
    ValueType.STRING: frozenset({Operator.EXISTS, Operator.NOT_EXISTS, Operator.IS, Operator.IS_NOT,
                                 Operator.CONTAINS, Operator.NOT_CONTAINS}),
    ValueType.NUMBER: frozenset({Operator.EXISTS, Operator.NOT_EXISTS, Operator.IS, Operator.IS_NOT,
                                 Operator.GREATER_THAN, Operator.LESS_THAN}),
    ValueType.BOOLEAN: frozenset({Operator.EXISTS, Operator.NOT_EXISTS, Operator.IS, Operator.IS_NOT}),
    ValueType.DATETIME: frozenset({Operator.EXISTS, Operator.NOT_EXISTS, Operator.IS, Operator.IS_NOT,
                                   Operator.GREATER_THAN, Operator.LESS_THAN}),
}  # fmt: skip

Value = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter. ``value`` is already coerced: ``str`` for string, ``int``/``float`` for number
    and datetime (Unix ms), ``bool`` for boolean, ``None`` for exists/not exists."""

    field: FieldRef
    operator: Operator
    type: ValueType
    value: Value = None


@dataclass(frozen=True, slots=True)
class DateRange:
    """Inclusive bounds on ``start_time`` in Unix ms; ``None`` = unbounded."""

    start: int | float | None = None
    end: int | float | None = None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """What to read: conditions ANDed, a start_time range, a 1-based page of ``limit`` events
    sorted by ``start_time`` descending (unless ``ignore_order``), and the fields to return
    (``None`` = every field; projections are applied by the caller, backends may ignore them)."""

    conditions: tuple[Condition, ...] = ()
    date_range: DateRange | None = None
    limit: int = DEFAULT_LIMIT
    page: int = 1
    projections: tuple[FieldRef, ...] | None = None
    ignore_order: bool = False

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit
