"""The price table: entries per model and provider, loaded from JSON, and model-name resolution.

A price file (the one shipped, ``prices.json`` beside this module, or a user's) is a JSON object::

    {"models": [{"model": "gpt-4o", "provider": "openai", "input": 2.5, "output": 10,
                 "cached_input": 1.25, "as_of": "2024-10-01", "aliases": ["..."]}, ...]}

Prices are USD per 1M tokens: ``input``, ``output`` (required), ``cached_input`` (a prompt-cache
read) and ``cache_write`` (a prompt-cache write), both optional (absent: the input price).
``as_of`` (``YYYY-MM-DD``, required) is the date the prices are from. The optional top-level keys
``unit`` (``"USD per 1M tokens"``, the only unit) and ``notes`` are for readers; anything else is
an error, so a mistyped key is reported rather than silently ignored.

Resolution (``PriceTable.resolve``) of the model string an event carries, e.g.
``us.anthropic.claude-3-5-sonnet-20241022-v2:0`` or ``openai/gpt-4o-mini-2024-07-18``:

1. lowercase, trim; ``.`` between two digits becomes ``-`` (``claude-3.5-sonnet`` is
   ``claude-3-5-sonnet``; ``gpt-4.1`` is matched as ``gpt-4-1``, entries are normalised alike);
2. drop a provider prefix: everything up to the last ``/`` (``openai/``, ``vertex_ai/``,
   ``models/``, ``publishers/google/models/``), and Bedrock's ``[region.]vendor.``
   (``anthropic.``, ``us.anthropic.``, ``mistral.``);
3. look the name up among the entries' names and aliases; if absent, drop one version-like
   suffix and look again, until none is left: ``@anything`` (Vertex AI), ``-v2`` / ``-v1:0``
   (Bedrock), ``-2024-08-06``, ``-20241022``, ``-latest``, ``-001`` / ``-0613`` / ``-2411``.

Only those suffixes are dropped, never a word: ``gpt-4o-mini`` never resolves to ``gpt-4o``,
``gpt-4o-audio-preview`` or ``gemini-1.5-flash-8b-exp`` resolve to nothing rather than to a
cheaper or dearer sibling. A dated name listed on its own (``gpt-4o-2024-05-13``) wins over its
family, since the longer name is looked up first. Several entries may share a name (a reseller's
price beside the vendor's): the one whose provider is the event's wins, else the first, the
override file's entries before the shipped ones.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

UNIT = "USD per 1M tokens"
SHIPPED = "shipped"
_ENTRY_KEYS = frozenset({"model", "provider", "input", "output", "cached_input", "cache_write", "as_of", "aliases"})
_TOP_KEYS = frozenset({"models", "unit", "notes"})
_MAX_NAME = 200  # longer model strings are not looked up (nor cached)
_CACHE_SIZE = 4096  # distinct (model, provider) strings remembered; the cache starts over past it

# Provider spellings of the conventions (OTel gen_ai.system / gen_ai.provider.name, OpenInference,
# LiteLLM prefixes) mapped to one name; used to choose among entries sharing a model name.
_PROVIDER_ALIASES = {
    "gcp.gemini": "google", "gcp.vertex_ai": "google", "gemini": "google", "google_genai": "google",
    "vertex_ai": "google", "vertexai": "google", "google_vertexai": "google", "vertex": "google",
    "mistralai": "mistral", "mistral_ai": "mistral",
    "bedrock": "aws.bedrock", "aws_bedrock": "aws.bedrock", "amazon_bedrock": "aws.bedrock",
    "az.ai.openai": "azure", "azure_openai": "azure", "az.ai.inference": "azure", "azure_ai": "azure",
}  # fmt: skip

_DIGIT_DOT = re.compile(r"(?<=\d)\.(?=\d)")
_BEDROCK_PREFIX = re.compile(
    r"^(?:(?:us|eu|apac|us-gov|global|jp|au|ca)\.)?(anthropic|mistral|meta|amazon|cohere|ai21|openai|google)\."
)
_VERSION_SUFFIX = re.compile(r"(?:@[^@]*|-v\d+(?::\d+)?|-\d{4}-\d{2}-\d{2}|-\d{8}|-latest|-\d{3,4})$")


class PriceFileError(ValueError):
    """A price file that cannot be used; ``str()`` is one line naming the file and the entry."""


@dataclass(frozen=True, slots=True)
class Price:
    model: str
    provider: str
    input: float
    output: float
    as_of: str
    cached_input: float | None = None
    cache_write: float | None = None
    aliases: tuple[str, ...] = ()
    source: str = SHIPPED  # "shipped", or the path of the file that set it
    # The four prices in whole micro-dollars per 1M tokens (1e-12 USD a token), absent cache prices
    # as the input price: integer token counts times these add up exactly, and one division
    # gives the cost, with no float noise to round away (compute.py).
    units: tuple[int, int, int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cached = self.input if self.cached_input is None else self.cached_input
        write = self.input if self.cache_write is None else self.cache_write
        object.__setattr__(self, "units", tuple(round(p * 1_000_000) for p in (self.input, self.output, cached, write)))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "provider": self.provider, "input": self.input,
                               "output": self.output}
        if self.cached_input is not None:
            out["cached_input"] = self.cached_input
        if self.cache_write is not None:
            out["cache_write"] = self.cache_write
        out["as_of"] = self.as_of
        if self.aliases:
            out["aliases"] = list(self.aliases)
        return out


def normalize_name(name: str) -> str:
    return _DIGIT_DOT.sub("-", name.strip().lower())


def normalize_provider(provider: str) -> str:
    p = provider.strip().lower()
    return _PROVIDER_ALIASES.get(p, p)


def split_model(model: str) -> tuple[str, str | None]:
    """``(name, provider hint)``: steps 1 and 2 of the resolution (module docstring)."""
    name = normalize_name(model)
    hint: str | None = None
    if "/" in name:
        hint, _, _ = name.partition("/")
        name = name.rsplit("/", 1)[1]
    m = _BEDROCK_PREFIX.match(name)
    if m:
        hint = hint or m.group(1)
        name = name[m.end():]
    return name, hint


@dataclass(slots=True)
class PriceTable:
    """Entries in precedence order (a user file's first, then the shipped ones it left)."""

    entries: tuple[Price, ...]
    _index: dict[str, tuple[Price, ...]] = field(init=False, repr=False)
    _cache: dict[tuple[str, str | None], Price | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, list[Price]] = {}
        for entry in self.entries:
            for name in (entry.model, *entry.aliases):
                bucket = index.setdefault(normalize_name(name), [])
                if entry not in bucket:
                    bucket.append(entry)
        self._index = {k: tuple(v) for k, v in index.items()}
        self._cache = {}

    def resolve(self, model: Any, provider: Any = None) -> Price | None:
        """The entry for an event's model string (and provider, when several entries share the
        name), or None. Cached per distinct pair of strings."""
        if not isinstance(model, str) or not model or len(model) > _MAX_NAME:
            return None
        prov = provider if isinstance(provider, str) and provider else None
        key = (model, prov)
        cache = self._cache
        try:
            return cache[key]
        except KeyError:
            pass
        found = self._resolve(model, prov)
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[key] = found
        return found

    def _resolve(self, model: str, provider: str | None) -> Price | None:
        name, hint = split_model(model)
        wanted = normalize_provider(provider) if provider else (normalize_provider(hint) if hint else None)
        while name:
            candidates = self._index.get(name)
            if candidates:
                if wanted is not None and len(candidates) > 1:
                    for entry in candidates:
                        if entry.provider == wanted:
                            return entry
                return candidates[0]
            m = _VERSION_SUFFIX.search(name)
            if m is None:
                return None
            name = name[: m.start()]
        return None


# Loading --------------------------------------------------------------------------------------


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise PriceFileError(f"{where}: must be a number >= 0 (USD per 1M tokens), not {json.dumps(value)}")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PriceFileError(f"{where}: must be a non-empty string")
    if len(value) > _MAX_NAME:
        raise PriceFileError(f"{where}: longer than {_MAX_NAME} characters")
    return value.strip()


def _entry(raw: Any, where: str, source: str) -> Price:
    if not isinstance(raw, dict):
        raise PriceFileError(f"{where}: must be an object")
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise PriceFileError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(_ENTRY_KEYS))})")
    for key in ("model", "provider", "input", "output", "as_of"):
        if key not in raw:
            raise PriceFileError(f"{where}: {key} is required")
    as_of = _text(raw["as_of"], f"{where}.as_of")
    try:
        dt.date.fromisoformat(as_of)
        if len(as_of) != 10:
            raise ValueError
    except ValueError:
        raise PriceFileError(f"{where}.as_of: must be a date YYYY-MM-DD, not {as_of!r}") from None
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list):
        raise PriceFileError(f"{where}.aliases: must be a list of model names")
    return Price(
        model=_text(raw["model"], f"{where}.model"),
        provider=normalize_provider(_text(raw["provider"], f"{where}.provider")),
        input=_number(raw["input"], f"{where}.input"),
        output=_number(raw["output"], f"{where}.output"),
        cached_input=None if raw.get("cached_input") is None else _number(raw["cached_input"], f"{where}.cached_input"),
        cache_write=None if raw.get("cache_write") is None else _number(raw["cache_write"], f"{where}.cache_write"),
        as_of=as_of,
        aliases=tuple(_text(a, f"{where}.aliases[{i}]") for i, a in enumerate(aliases)),
        source=source,
    )


def parse_entries(document: Any, name: str, source: str) -> list[Price]:
    """The entries of a parsed price file, validated; ``name`` prefixes every error."""
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise PriceFileError(f'{name}: must be a JSON object with a "models" list')
    unknown = sorted(set(document) - _TOP_KEYS)
    if unknown:
        raise PriceFileError(f"{name}: unknown top-level key {unknown[0]!r} (keys: models, unit, notes)")
    if "unit" in document and document["unit"] != UNIT:
        raise PriceFileError(f"{name}: unit must be {UNIT!r}")
    entries: list[Price] = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(document["models"]):
        entry = _entry(raw, f"{name}: models[{i}]", source)
        key = (normalize_name(entry.model), entry.provider)
        if key in seen:
            raise PriceFileError(f"{name}: models[{i}]: {entry.model} ({entry.provider}) is listed twice")
        seen.add(key)
        entries.append(entry)
    return entries


def read_file(path: str | Path) -> list[Price]:
    """A user's price file, validated; errors are one line starting with the path."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise PriceFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PriceFileError(f"{path}: not valid JSON: {exc}") from None
    return parse_entries(document, str(path), str(path))


_shipped: tuple[Price, ...] | None = None


def shipped_entries() -> tuple[Price, ...]:
    global _shipped
    if _shipped is None:
        text = resources.files("tracehive.pricing").joinpath("prices.json").read_text(encoding="utf-8")
        _shipped = tuple(parse_entries(json.loads(text), "prices.json (shipped)", SHIPPED))
    return _shipped


def merge(shipped: Iterable[Price], override: Sequence[Price]) -> PriceTable:
    """The override's entries first; a shipped entry with the same model and provider is replaced."""
    replaced = {(normalize_name(e.model), e.provider) for e in override}
    kept = [e for e in shipped if (normalize_name(e.model), e.provider) not in replaced]
    return PriceTable((*override, *kept))


def load_table(prices_file: str | Path | None = None) -> PriceTable:
    """The shipped table, extended and overridden by ``prices_file`` when given."""
    override = read_file(prices_file) if prices_file else []
    return merge(shipped_entries(), override)
