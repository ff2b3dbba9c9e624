"""Time rules (contract 5.4): Unix milliseconds, non-numeric values replaced by *now*."""

from __future__ import annotations

import math
import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def numeric_or_none(value: object) -> float | int | None:
    """A finite int/float (bool excluded) or None. Strings are deliberately not parsed: the
    contract's getInt64-style reader treats them as absent, so the caller falls back to now."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def derive_times(
    start: object, end: object, duration: object, *, now: int | None = None
) -> tuple[float | int, float | int, float | int]:
    """Fill in the missing members of (start_time, end_time, duration).

    - start missing: end - duration when both are known, else now;
    - end missing: start + duration when duration is known, else start;
    - duration missing: end - start.
    """
    s = numeric_or_none(start)
    e = numeric_or_none(end)
    d = numeric_or_none(duration)
    if s is None:
        s = e - d if (e is not None and d is not None) else (now if now is not None else now_ms())
    if e is None:
        e = s + d if d is not None else s
    if d is None:
        d = e - s
    return s, e, d
