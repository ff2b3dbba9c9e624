"""One session for the event detail's browser tests (model usage header, annotation, Markdown, raw
JSON and copy), written through the REST API once per server and shared by those test files.

It lives in a project of its own ("detail-tests", with its own project key), so the sessions list,
events and filter-suggestion tests of the default project never see it (its metadata.cost_computed
would be one more field suggestion, its session one more row)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.process.server import run_cli
from tests.ui.conftest import UiServer
from tests.ui.seed import add_events, event, start_session

SESSION_NAME = "event-detail-demo"
PROJECT = "detail-tests"

MARKDOWN_ANSWER = """# Rotating keys

Create the **new** key first, then *revoke* the old one with `tracehive keys revoke`.

- step one
- step two with a [guide](https://example.com/keys?x=1)

1. first
2. second

> Keys are stored as hashes.

```python
print("<b>not bold</b>")
```

![diagram](https://example.com/diagram.png)"""

HOSTILE = (
    "Watch out: <img src=x onerror=alert(1)> and <script>alert(2)</script> and "
    "[click me](javascript:alert(3)) and [data](data:text/html,<script>alert(4)</script>) "
    "and ![pic](javascript:alert(5)) and <javascript:alert(6)>"
)

JSON_SECTIONS: dict[str, Any] = {
    "inputs": {"query": "rotate keys", "options": {"top_k": 3, "filters": ["docs", "faq"]}},
    "outputs": {"answer": "Use two keys.", "scores": [0.5, 0.25], "unicode": "naïve ✓"},
    "config": {"model": "retriever-v2", "temperature": 0},
    "metadata": {"index": "docs-v3", "nested": {"a": 1, "b": [True, None]}},
    "metrics": {"recall": 0.8, "ok": True},
    "feedback": {"rating": 3, "comment": "fine"},
    "user_properties": {"user_id": "u-77", "plan": "team"},
}


@dataclass
class DetailSeed:
    key: str = ""  # a project key of PROJECT
    session: str = ""
    ids: dict[str, str] = field(default_factory=dict)  # event name -> event id


_seeded: dict[str, DetailSeed] = {}


def _id() -> str:
    return str(uuid.uuid4())


def detail_seed(ui: UiServer) -> DetailSeed:
    """The session, written on first use for this server."""
    if ui.url in _seeded:
        return _seeded[ui.url]
    start = time.time() * 1000 - 50 * 60_000
    assert ui.server.data_dir is not None
    created = run_cli("keys", "create", "--project", PROJECT, "--data-dir", str(ui.server.data_dir))
    seed = DetailSeed(key=created.stdout.strip().splitlines()[-1])
    ids = {
        name: _id()
        for name in (
            "priced_call",
            "unpriced_call",
            "markdown_reply",
            "hostile_reply",
            "json_sections",
            "annotate_target",
            "orphan_step",
            "doomed_step",
        )
    }
    with ui.server.client(seed.key) as client:
        sid = start_session(client, SESSION_NAME, "ui-test", start, metadata={"suite": "event-detail"})
        add_events(
            client,
            sid,
            [
                event(
                    "model",
                    "priced_call",
                    start + 10,
                    1234,
                    event_id=ids["priced_call"],
                    source="ui-test",
                    config={"model": "gpt-4o-mini", "provider": "openai"},
                    inputs={"chat_history": [{"role": "user", "content": "hi"}]},
                    outputs={"role": "assistant", "content": "hello"},
                    # A cost the server computed from its price table is flagged cost_computed; sent
                    # here as it would be stored, so the test does not depend on the table's prices.
                    metadata={
                        "prompt_tokens": 1200,
                        "completion_tokens": 340,
                        "total_tokens": 1540,
                        "cost": 0.00039,
                        "cost_computed": True,
                    },
                ),
                event(
                    "model",
                    "unpriced_call",
                    start + 1300,
                    400,
                    event_id=ids["unpriced_call"],
                    source="ui-test",
                    # A model no price table knows, and no cost sent: the cost stays unknown.
                    config={"model": "in-house-llm-test"},
                    metadata={"prompt_tokens": 10, "completion_tokens": 5},
                ),
                event(
                    "model",
                    "markdown_reply",
                    start + 1800,
                    900,
                    event_id=ids["markdown_reply"],
                    source="ui-test",
                    config={"model": "gpt-4o"},
                    inputs={
                        "chat_history": [
                            {"role": "system", "content": "Answer in *Markdown*."},
                            {"role": "user", "content": "How do I rotate keys?"},
                        ]
                    },
                    outputs={"role": "assistant", "content": MARKDOWN_ANSWER},
                    metadata={"total_tokens": 300, "cost": 0.002},
                ),
                event(
                    "model",
                    "hostile_reply",
                    start + 2800,
                    300,
                    event_id=ids["hostile_reply"],
                    source="ui-test",
                    config={"model": "gpt-4o"},
                    inputs={"chat_history": [{"role": "user", "content": HOSTILE}]},
                    outputs={"role": "assistant", "content": "**Bold** <b>not bold</b> `<i>code</i>`"},
                    metadata={"cost": 0.001},
                ),
                event(
                    "chain",
                    "json_sections",
                    start + 3200,
                    700,
                    event_id=ids["json_sections"],
                    source="ui-test",
                    **JSON_SECTIONS,
                ),
                event(
                    "tool",
                    "annotate_target",
                    start + 3300,
                    200,
                    parent=ids["json_sections"],
                    event_id=ids["annotate_target"],
                    source="ui-test",
                    inputs={"q": "x"},
                    outputs={"r": "y"},
                ),
                event(
                    "tool",
                    "orphan_step",
                    start + 3600,
                    50,
                    parent=_id(),
                    event_id=ids["orphan_step"],
                    source="ui-test",
                    inputs={"step": 1},
                ),
                event(
                    "tool",
                    "doomed_step",
                    start + 3700,
                    50,
                    event_id=ids["doomed_step"],
                    source="ui-test",
                    inputs={"step": 2},
                ),
            ],
        )
    seed.session, seed.ids = sid, ids
    _seeded[ui.url] = seed
    return seed


def tree_row(page: Page, name: str) -> Locator:
    """The session tree's row of the event named ``name``."""
    return page.locator(".trace-row").filter(
        has=page.locator(".event-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def sign_in_detail(page: Page, ui: UiServer, seed: DetailSeed, hash_path: str = "") -> None:
    """Sign in with the detail project's key, landing on ``hash_path``."""
    page.goto(f"{ui.url}/{hash_path}")
    page.get_by_label("API key").fill(seed.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".project-name")).to_have_text(PROJECT)


def stored_event(ui: UiServer, seed: DetailSeed, event_id: str) -> dict[str, Any]:
    """The event as the API reads it now."""
    with ui.server.client(seed.key) as client:
        response = client.get(f"/v1/events/{event_id}")
        assert response.status_code == 200, response.text
        return response.json()["event"]  # type: ignore[no-any-return]
