"""``tracehive prices list|check``: the effective price table (or the entry one model resolves to)
and the validation of a price file."""

from __future__ import annotations

import argparse
import sys

from tracehive.cli.common import _fail
from tracehive.settings import Settings


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def cmd_prices_list(args: argparse.Namespace) -> int:
    """The effective price table (shipped + TRACEHIVE_PRICES_FILE / --prices-file), or the entry
    one model string resolves to."""
    from tracehive.pricing import PriceFileError, load_table

    prices_file = args.prices_file or Settings.from_env().prices_file
    try:
        table = load_table(prices_file or None)
    except PriceFileError as exc:
        return _fail("prices list", str(exc), 2)
    entries = table.entries
    if args.model is not None:
        found = table.resolve(args.model, args.provider)
        if found is None:
            return _fail("prices list", f"no price for model {args.model!r}: cost is not computed for it", 1)
        entries = (found,)
    print(f"{'MODEL':<28}{'PROVIDER':<11}{'INPUT':>9}{'OUTPUT':>9}{'CACHED':>9}{'CACHE_W':>9}  {'AS OF':<12}SOURCE")
    for e in sorted(entries, key=lambda e: (e.provider, e.model)) if args.model is None else entries:
        print(f"{e.model:<28}{e.provider:<11}{_price(e.input):>9}{_price(e.output):>9}{_price(e.cached_input):>9}"
              f"{_price(e.cache_write):>9}  {e.as_of:<12}{e.source}")
    if args.model is None:
        print(f"USD per 1M tokens; {len(entries)} entries{f' (with {prices_file})' if prices_file else ''}",
              file=sys.stderr)
    return 0


def cmd_prices_check(args: argparse.Namespace) -> int:
    from tracehive.pricing import PriceFileError, read_file
    from tracehive.pricing.table import normalize_name, shipped_entries

    try:
        entries = read_file(args.file)
    except PriceFileError as exc:
        return _fail("prices check", str(exc), 1)
    shipped = {(normalize_name(e.model), e.provider) for e in shipped_entries()}
    replacing = sum((normalize_name(e.model), e.provider) in shipped for e in entries)
    print(f"{args.file}: {len(entries)} entries OK ({replacing} replace shipped prices, "
          f"{len(entries) - replacing} add models)")
    return 0
