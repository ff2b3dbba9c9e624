"""How the query parsers report a mistake: a ``ValidationFailed`` that names where it is
(``filters[1].operator: 'bigger' is not an operator``), the offending value shown shortened.
Shared by the parsers of fields, values, filters, date ranges and projections."""

from __future__ import annotations

from typing import Any

from tracehive.model.errors import ValidationFailed


def _show(value: Any, limit: int = 80) -> str:
    """A value for an error message: repr'd, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(where: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{where}: {message}", details=[{"field": where, "message": message}])
