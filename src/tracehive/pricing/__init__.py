"""Cost from a price table (issue 16): model events that carry token counts and no cost get
``metadata.cost`` computed at ingest, flagged ``metadata.cost_computed: true``.

The table in use is per process: the shipped one (``prices.json``) until ``use_table`` installs
another, which ``create_app`` and the journal's applier process do from ``Settings.prices_file``
(``TRACEHIVE_PRICES_FILE``). Ingest reads it through ``active_table``.
"""

from __future__ import annotations

from tracehive.pricing.compute import cost_of, price_event, price_events, sent_cost_wins
from tracehive.pricing.table import Price, PriceFileError, PriceTable, load_table, read_file

__all__ = [
    "Price", "PriceFileError", "PriceTable", "active_table", "cost_of", "load_table", "price_event",
    "price_events", "read_file", "sent_cost_wins", "use_table",
]

_active: PriceTable | None = None


def active_table() -> PriceTable:
    """The table ingest prices with: the one installed, else the shipped one."""
    global _active
    if _active is None:
        _active = load_table()
    return _active


def use_table(table: PriceTable) -> None:
    global _active
    _active = table
