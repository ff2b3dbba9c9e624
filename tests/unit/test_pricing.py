"""The price table: model-name resolution (variants, prefixes, never a sibling model), the cost
arithmetic, the shipped file, and the validation of a user's price file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tracehive.cli import main as cli_main
from tracehive.model.event import Event
from tracehive.pricing import PriceFileError, load_table, price_event
from tracehive.pricing.compute import cost_of
from tracehive.pricing.table import Price, merge, shipped_entries

TABLE = load_table()


@pytest.mark.parametrize(("name", "model"), [
    # OpenAI: dated snapshots, provider prefixes, case.
    ("gpt-4o", "gpt-4o"), ("gpt-4o-2024-08-06", "gpt-4o"), ("GPT-4o", "gpt-4o"), ("openai/gpt-4o", "gpt-4o"),
    ("azure/gpt-4o-2024-11-20", "gpt-4o"), ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("gpt-4.1-2025-04-14", "gpt-4.1"), ("gpt-4.1-mini", "gpt-4.1-mini"), ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
    ("o1-2024-12-17", "o1"), ("o1-preview-2024-09-12", "o1"), ("o1-mini", "o1-mini"), ("o3-2025-04-16", "o3"),
    ("o3-mini-2025-01-31", "o3-mini"), ("o4-mini-2025-04-16", "o4-mini"), ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
    ("gpt-4-1106-preview", "gpt-4-turbo"), ("gpt-4-0613", "gpt-4"), ("gpt-4-32k-0613", "gpt-4-32k"),
    ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"), ("gpt-3.5-turbo-16k-0613", "gpt-3.5-turbo-16k"),
    ("text-embedding-3-small", "text-embedding-3-small"), ("text-embedding-3-large", "text-embedding-3-large"),
    # A dated name listed on its own wins over its family.
    ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"), ("gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106"),
    # Anthropic: dates, -latest, dotted versions, Bedrock ids and inference profiles, Vertex AI.
    ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"), ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
    ("anthropic/claude-3.5-sonnet", "claude-3-5-sonnet"), ("anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"),
    ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
    ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"), ("vertex_ai/claude-3-7-sonnet@20250219", "claude-3-7-sonnet"),
    ("claude-3-haiku-20240307", "claude-3-haiku"), ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
    ("claude-3-opus-latest", "claude-3-opus"), ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ("claude-4-sonnet", "claude-sonnet-4"), ("claude-opus-4-1-20250805", "claude-opus-4-1"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"), ("claude-sonnet-4.5", "claude-sonnet-4-5"),
    # Google: models/ and publisher paths, -001 revisions, -latest.
    ("models/gemini-1.5-flash-001", "gemini-1.5-flash"), ("gemini-1.5-pro-002", "gemini-1.5-pro"),
    ("gemini-1.5-flash-latest", "gemini-1.5-flash"), ("gemini-1.5-flash-8b-001", "gemini-1.5-flash-8b"),
    ("vertex_ai/gemini-2.0-flash-001", "gemini-2.0-flash"), ("gemini-2.0-flash-lite-001", "gemini-2.0-flash-lite"),
    ("publishers/google/models/gemini-2.5-flash", "gemini-2.5-flash"), ("gemini-2.5-pro", "gemini-2.5-pro"),
    ("gemini/gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
    # Mistral: -latest, -YYMM, Bedrock, the open-* names.
    ("mistral-large-latest", "mistral-large"), ("mistral-large-2411", "mistral-large"),
    ("mistral-large-2402", "mistral-large-2402"), ("mistral.mistral-large-2402-v1:0", "mistral-large-2402"),
    ("mistral/mistral-small-latest", "mistral-small"), ("mistral-medium-2505", "mistral-medium"),
    ("codestral-2501", "codestral"), ("codestral-latest", "codestral"), ("open-mistral-nemo-2407", "mistral-nemo"),
    ("mistral-nemo", "mistral-nemo"), ("ministral-8b-latest", "ministral-8b"), ("pixtral-large-latest", "pixtral-large"),
    ("mistral-embed", "mistral-embed"),
])  # fmt: skip
def test_variants_resolve_to_their_model(name: str, model: str) -> None:
    found = TABLE.resolve(name)
    assert found is not None and found.model == model, (name, found)


@pytest.mark.parametrize("name", [
    # Siblings and look-alikes are never priced as their family.
    "gpt-4o-audio-preview", "gpt-4o-realtime-preview-2024-12-17", "gpt-4o-mini-tts", "gpt-4o-search-preview",
    "gpt-4.5", "o3-deep-research", "ft:gpt-4o-mini-2024-07-18:acme::abc123", "claude-sonnet-4-6", "claude-3",
    "gemini-2.0-flash-exp", "gemini-2.5-flash-preview-04-17", "gemini-1.5", "mistral", "mistral-large-3",
    "meta.llama3-70b-instruct-v1:0", "llama-3.1-70b", "", "   ", "x" * 500,
])  # fmt: skip
def test_unknown_names_resolve_to_nothing(name: str) -> None:
    assert TABLE.resolve(name) is None


def test_no_model_resolves_to_a_different_family() -> None:
    """gpt-4o-mini is not gpt-4o, o3-mini is not o3, and so on: every name in the table
    (and each with a dated suffix) resolves to its own entry."""
    for entry in TABLE.entries:
        for name in (entry.model, f"{entry.model}-2025-01-01", f"{entry.model}-20250101", f"openai/{entry.model}"):
            found = TABLE.resolve(name)
            assert found is not None and found.model == entry.model, (name, found and found.model)


def test_non_strings_resolve_to_nothing() -> None:
    assert TABLE.resolve(None) is None and TABLE.resolve(5) is None and TABLE.resolve({"m": 1}) is None


def test_the_provider_chooses_among_entries_sharing_a_name() -> None:
    bedrock = Price(model="claude-3-5-sonnet", provider="aws.bedrock", input=6, output=30, as_of="2030-01-01",
                    source="mine.json")
    table = merge(shipped_entries(), [bedrock])
    anthropic = table.resolve("claude-3-5-sonnet-20241022", "anthropic")
    assert anthropic is not None and anthropic.provider == "anthropic"
    assert table.resolve("claude-3-5-sonnet-20241022", "aws.bedrock") is bedrock
    assert table.resolve("claude-3-5-sonnet-20241022", "bedrock") is bedrock  # spellings of one provider
    assert table.resolve("bedrock/claude-3-5-sonnet-20241022") is bedrock  # the prefix says it
    assert table.resolve("claude-3-5-sonnet-20241022") is bedrock  # no provider: the file's entry first


def test_the_resolution_cache_is_bounded() -> None:
    table = load_table()
    for i in range(10_000):
        table.resolve(f"gpt-4o-{i:04d}")
    assert len(table._cache) <= 4096


def price(**prices: Any) -> Price:
    return Price(model="m", provider="p", as_of="2030-01-01", **prices)


def test_cost_arithmetic() -> None:
    p = price(input=2.5, output=10, cached_input=1.25)
    assert cost_of(p, {"prompt_tokens": 1000, "completion_tokens": 500}) == 0.0075
    assert cost_of(p, {"prompt_tokens": 3}) == 3 * 2.5 / 1e6  # embeddings: no completion
    assert cost_of(p, {"completion_tokens": 7}) == 7e-5
    assert cost_of(p, {"input_tokens": 1000, "output_tokens": 500}) == 0.0075
    assert cost_of(p, {"total_tokens": 1500}) is None
    assert cost_of(p, {"prompt_tokens": -1, "completion_tokens": True}) is None
    assert cost_of(p, {"prompt_tokens": float("nan")}) is None
    assert cost_of(price(input=0.15, output=0.6), {"prompt_tokens": 3, "completion_tokens": 7}) == 4.65e-06  # no float noise


@pytest.mark.parametrize("metadata", [
    {"prompt_tokens": 2000, "prompt_tokens_details": {"cached_tokens": 1000}},  # OpenAI
    {"input_tokens": 2000, "input_tokens_details": {"cached_tokens": 1000}},  # OpenAI Responses API
    {"prompt_tokens": 2000, "cached_tokens": 1000},
    {"prompt_tokens": 2000, "prompt_details": {"cache_read": 1000}},  # OpenInference, as span mapping writes it
    {"prompt_tokens": 2000, "cache_read": {"input_tokens": 1000}},  # OTel GenAI cache_read.input_tokens
    {"prompt_tokens": 2000, "cache_read_input_tokens": 1000},  # Traceloop: included in the prompt tokens
    {"input_tokens": 1000, "cache_read_input_tokens": 1000},  # Anthropic's own usage: on top
])  # fmt: skip
def test_cached_prompt_tokens_are_priced_at_the_cached_price(metadata: dict[str, Any]) -> None:
    p = price(input=2, output=8, cached_input=0.5)
    assert cost_of(p, metadata) == (1000 * 2 + 1000 * 0.5) / 1e6


def test_cache_writes_and_counts_that_cannot_be_included() -> None:
    p = price(input=3, output=15, cached_input=0.3, cache_write=3.75)
    assert cost_of(p, {"input_tokens": 10, "cache_creation_input_tokens": 100, "output_tokens": 1}) == (
        10 * 3 + 100 * 3.75 + 15) / 1e6
    assert cost_of(p, {"prompt_tokens": 110, "prompt_details": {"cache_write": 100}}) == (10 * 3 + 100 * 3.75) / 1e6
    # More cached tokens than prompt tokens: they were not counted in it.
    assert cost_of(p, {"prompt_tokens": 10, "cache_read_input_tokens": 100}) == (10 * 3 + 100 * 0.3) / 1e6
    # No cache price: the input price.
    assert cost_of(price(input=1, output=1), {"prompt_tokens": 10, "cached_tokens": 5}) == 10 / 1e6


def event(event_type: str = "model", **fields: Any) -> Event:
    return Event(event_id="e", session_id="s", event_type=event_type, event_name="n", source="s", start_time=0,
                 end_time=0, duration=0, **fields)


def test_price_event_rules() -> None:
    e = event(config={"model": "gpt-4o"}, metadata={"prompt_tokens": 1000, "completion_tokens": 500})
    price_event(e, TABLE)
    assert e.metadata == {"prompt_tokens": 1000, "completion_tokens": 500, "cost": 0.0075, "cost_computed": True}
    price_event(e, TABLE)  # idempotent: the cost is there now
    assert e.metadata["cost"] == 0.0075
    for sent in (0, 0.5, None):
        e = event(config={"model": "gpt-4o"}, metadata={"prompt_tokens": 1000, "cost": sent})
        price_event(e, TABLE)
        assert e.metadata == {"prompt_tokens": 1000, "cost": sent}
    e = event("tool", config={"model": "gpt-4o"}, metadata={"prompt_tokens": 1000})
    price_event(e, TABLE)
    assert e.metadata == {"prompt_tokens": 1000}
    e = event(metadata={"response_model": "gpt-4o-2024-08-06", "prompt_tokens": 1000})
    price_event(e, TABLE)
    assert e.metadata["cost"] == 0.0025


# The shipped table and price files ---------------------------------------------------------------


def test_the_shipped_table_covers_the_common_models_and_dates_them() -> None:
    names = {e.model for e in shipped_entries()}
    assert {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "o1", "o3", "o4-mini", "gpt-3.5-turbo", "gpt-4-turbo", "gpt-4",
            "text-embedding-3-small", "text-embedding-3-large", "claude-3-haiku", "claude-3-opus", "claude-3-5-sonnet",
            "claude-3-5-haiku", "claude-3-7-sonnet", "claude-sonnet-4", "claude-opus-4", "gemini-1.5-pro",
            "gemini-1.5-flash", "gemini-2.0-flash", "gemini-2.5-pro", "gemini-2.5-flash", "mistral-large",
            "mistral-medium", "mistral-small", "codestral", "mistral-nemo"} <= names
    assert {e.provider for e in shipped_entries()} == {"openai", "anthropic", "google", "mistral"}
    for e in shipped_entries():
        assert dt.date(2023, 1, 1) <= dt.date.fromisoformat(e.as_of) <= dt.date.today(), e


def write(tmp_path: Path, document: Any, name: str = "prices.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


GOOD = {"model": "house-llm", "provider": "acme", "input": 1, "output": 2, "as_of": "2030-01-01"}


@pytest.mark.parametrize(("document", "message"), [
    ("{not json", "not valid JSON"),
    ([GOOD], 'must be a JSON object with a "models" list'),
    ({"models": [GOOD], "extra": 1}, "unknown top-level key 'extra'"),
    ({"models": [GOOD], "unit": "EUR per token"}, "unit must be"),
    ({"models": [{**GOOD, "input_price": 1}]}, "models[0]: unknown key 'input_price'"),
    ({"models": [{k: v for k, v in GOOD.items() if k != "as_of"}]}, "models[0]: as_of is required"),
    ({"models": [{**GOOD, "as_of": "2030-13-01"}]}, "models[0].as_of: must be a date YYYY-MM-DD"),
    ({"models": [{**GOOD, "output": "2"}]}, "models[0].output: must be a number >= 0"),
    ({"models": [{**GOOD, "cached_input": -0.1}]}, "models[0].cached_input: must be a number >= 0"),
    ({"models": [{**GOOD, "model": ""}]}, "models[0].model: must be a non-empty string"),
    ({"models": [{**GOOD, "aliases": "x"}]}, "models[0].aliases: must be a list"),
    ({"models": [GOOD, {**GOOD, "model": "House-LLM"}]}, "models[1]: House-LLM (acme) is listed twice"),
    ({"models": ["gpt-4o"]}, "models[0]: must be an object"),
])  # fmt: skip
def test_a_bad_price_file_is_one_clear_line(tmp_path: Path, document: Any, message: str) -> None:
    path = write(tmp_path, document)
    with pytest.raises(PriceFileError) as raised:
        load_table(path)
    text = str(raised.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text, text


def test_a_missing_price_file(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="cannot read"):
        load_table(tmp_path / "nope.json")


def test_a_price_file_replaces_and_extends(tmp_path: Path) -> None:
    path = write(tmp_path, {"unit": "USD per 1M tokens", "notes": "ours", "models": [
        GOOD, {"model": "GPT-4o", "provider": "OpenAI", "input": 1, "output": 1, "as_of": "2030-01-01"}]})
    table = load_table(path)
    assert len(table.entries) == len(shipped_entries()) + 1
    gpt4o = table.resolve("gpt-4o-2024-08-06")
    assert gpt4o is not None and (gpt4o.input, gpt4o.source) == (1, str(path))
    assert table.resolve("acme/house-llm") is not None


def test_the_prices_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, {"models": [GOOD, {**GOOD, "model": "gpt-4o", "provider": "openai"}]})
    assert cli_main(["prices", "check", str(path)]) == 0
    assert "2 entries OK (1 replace shipped prices, 1 add models)" in capsys.readouterr().out
    bad = write(tmp_path, {"models": [{**GOOD, "input": -1}]}, "bad.json")
    assert cli_main(["prices", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tracehive prices check: ") and "input: must be a number" in err and err.count("\n") == 1
    assert cli_main(["prices", "list", "--model", "anthropic.claude-3-5-sonnet-20240620-v1:0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].split()[:4] == ["claude-3-5-sonnet", "anthropic", "3", "15"]
    assert cli_main(["prices", "list", "--model", "gpt-4o", "--prices-file", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[2:4] == ["1", "2"]
    assert cli_main(["prices", "list", "--model", "no-such-model"]) == 1
    assert "no price for model 'no-such-model'" in capsys.readouterr().err
    assert cli_main(["prices", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 + len(shipped_entries())
