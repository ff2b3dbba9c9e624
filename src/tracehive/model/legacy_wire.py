"""Bodies of the legacy write routes (contract 3.5, 3.6, 4.11): lenient, extra keys ignored.

Unlike the strict v1 models in ``wire``, ids may be any value here (an invalid one is replaced by a
fresh UUIDv4, contract 5.2), an unknown ``event_type`` becomes ``tool`` (contract 5.5), and
``project``/``project_id`` are accepted and ignored. Wrappers (``{"session": ...}``,
``{"event": ...}``, ``{"model_event": ...}``) may be objects, JSON-encoded strings, or missing
(bare bodies); the routes unwrap them and validate the inner object with the models below.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, RootModel, WithJsonSchema

from tracehive.model.wire import (
    ErrorText,
    JsonObject,
    LenientTime,
    Name,
    Number,
    PostEventBatchResponse,
    SessionProperties,
    UpdateEventRequest,
    Uuid,
)

LEGACY_EVENT_TYPES = ("model", "tool", "chain")


def _legacy_event_type(value: Any) -> str:
    """Lower-cased; anything that is not model/tool/chain (``session`` included: the tracer's
    own fallback in ``create_event``) becomes ``tool``. Only null is refused."""
    if value is None:
        raise ValueError("must not be null")
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in LEGACY_EVENT_TYPES:
            return lowered
    return "tool"


LegacyEventType = Annotated[
    str,
    PlainValidator(_legacy_event_type),
    WithJsonSchema({
        "type": "string",
        "enum": ["model", "tool", "chain", "session"],
        "description": "Case-insensitive; any other value, and 'session', is stored as 'tool'.",
    }),
]
LenientId = Annotated[
    Any,
    Field(json_schema_extra={"type": "string", "format": "uuid", "description": "Replaced by a new UUIDv4 when not a UUID."}),
]
Ignored = Annotated[Any, Field(description="Accepted and ignored: the API key decides the project.")]


class LenientBody(BaseModel):
    """Unknown keys are accepted and ignored (contract 5.1)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": True})


class LegacySession(LenientBody):
    """The session of ``POST /session/start`` (the fields of ``POST /v1/sessions`` plus the
    spec-v0 extras ``error``, ``metrics`` and ``feedback``); nothing is required."""

    session_id: LenientId = None
    session_name: Name | None = None
    event_name: Name | None = Field(default=None, description="Falls back to session_name, then 'unknown'.")
    source: Name | None = Field(default=None, description="Defaults to 'unknown'.")
    start_time: LenientTime = None
    end_time: LenientTime = None
    duration: Number | None = None
    config: JsonObject | None = None
    inputs: JsonObject | None = None
    outputs: JsonObject | None = None
    metadata: JsonObject | None = None
    user_properties: JsonObject | None = None
    feedback: JsonObject | None = None
    metrics: JsonObject | None = None
    error: ErrorText | None = None
    children_ids: list[Any] | None = Field(default=None, description="Ids that are not UUIDs are dropped.")
    project: Ignored = None


class LegacyStartSessionWrapper(LenientBody):
    session: LegacySession | Annotated[str, Field(description="The session as a JSON-encoded string.")]


class LegacyStartSessionRequest(RootModel[LegacyStartSessionWrapper | LegacySession]):
    """``POST /session/start``: ``{"session": {...}}``, the wrapper with ``session`` as a JSON
    string, or the bare session object (what ``client.sessions.start(model)`` sends)."""


class LegacyEvent(LenientBody):
    """One event on the legacy routes: ``event_type`` and ``inputs`` are required."""

    event_type: LegacyEventType
    inputs: JsonObject
    event_id: LenientId = None
    session_id: LenientId = None
    parent_id: LenientId = Field(
        default=None,
        description="A non-UUID parent is the event of this request that had that id, else the session.",
    )
    children_ids: list[Any] | None = None
    event_name: Name | None = None
    source: Name | None = None
    config: JsonObject | None = None
    outputs: JsonObject | None = None
    error: ErrorText | None = None
    start_time: LenientTime = None
    end_time: LenientTime = None
    duration: Number | None = None
    metadata: JsonObject | None = None
    feedback: JsonObject | None = None
    metrics: JsonObject | None = None
    user_properties: JsonObject | None = None
    project: Ignored = None
    project_id: Ignored = None


MODEL_ALIASES_TO_INPUTS = (
    "provider", "usage", "cost", "hyperparameters", "template", "template_inputs", "tools", "tool_choice",
    "response_format",
)  # fmt: skip


class LegacyModelEvent(LegacyEvent):
    """A model event (``POST /events/model`` and ``/events/model/batch``): ``event_type`` is forced
    to ``model`` and the deprecated aliases are remapped before storage (contract 4.11):
    ``model_name`` (alias ``model``) -> ``config.model``, ``model_version`` ->
    ``metadata.model_version``, ``messages`` -> ``inputs.messages``, ``response`` ->
    ``outputs.response``, provider/usage/cost/... -> ``inputs.<name>``; ``duration`` and ``error``
    are copied into ``inputs`` and kept top-level. ``model_name`` (or ``model``) or ``event_name``
    is required."""

    event_type: Annotated[Any, Field(description="Ignored: always stored as 'model'.")] = None  # type: ignore[assignment]
    inputs: JsonObject | None = None  # type: ignore[assignment]
    model_name: Name | None = None
    model_version: Name | None = None
    model: Name | None = Field(default=None, description="Deprecated alias of model_name.")
    messages: Any = None
    response: Any = None
    provider: Any = None
    usage: Any = None
    cost: Any = None
    hyperparameters: Any = None
    template: Any = None
    template_inputs: Any = None
    tools: Any = None
    tool_choice: Any = None
    response_format: Any = None


class LegacyEventWrapper(LenientBody):
    event: LegacyEvent | Annotated[str, Field(description="The event as a JSON-encoded string.")]


class LegacyCreateEventRequest(RootModel[LegacyEventWrapper | LegacyEvent]):
    """``POST /events``: ``{"event": {...}}``, the wrapper with ``event`` as a JSON string, or the
    bare event (no ``event`` key but an ``event_type``; what ``client.events.create(model)`` sends)."""


class LegacyModelEventWrapper(LenientBody):
    model_event: LegacyModelEvent | Annotated[str, Field(description="The event as a JSON-encoded string.")]


class LegacyCreateModelEventRequest(RootModel[LegacyModelEventWrapper | LegacyModelEvent]):
    """``POST /events/model``: ``{"model_event": {...}}`` (object or JSON string), or the bare event."""


class LegacyBatchOptions(LenientBody):
    """The single-session options of the legacy batches, with their aliases. When both spellings
    are sent, ``single_session`` and ``session_properties`` win."""

    single_session: bool | None = None
    is_single_session: bool | None = Field(default=None, description="Alias of single_session.")
    session_properties: SessionProperties | None = None
    session: SessionProperties | None = Field(default=None, description="Alias of session_properties (object or JSON string).")

    @property
    def one_session(self) -> bool:
        flag = self.single_session if self.single_session is not None else self.is_single_session
        return bool(flag)

    @property
    def properties(self) -> SessionProperties | None:
        return self.session_properties if self.session_properties is not None else self.session


class LegacyEventBatchRequest(LegacyBatchOptions):
    """``POST /events/batch``. Each event is validated on its own: valid events are stored, each
    invalid one is reported in ``errors``."""

    events: list[LegacyEvent]


class LegacyModelEventBatchRequest(LegacyBatchOptions):
    """``POST /events/model/batch``: like ``/events/batch`` with model events."""

    model_events: list[LegacyModelEvent]


class AddSessionTracesRequest(LenientBody):
    """``POST /session/{session_id}/traces``: exactly one of ``logs`` (deprecated) or ``events``."""

    logs: list[LegacyEvent] | None = None
    events: list[LegacyEvent] | None = None


class LegacyUpdateEventRequest(UpdateEventRequest):
    """``PUT /events``: the fields of ``PUT /v1/events/{event_id}`` plus the event's id. An update
    for an event that does not exist yet is kept and applied when the event arrives."""

    event_id: Uuid


# Responses -------------------------------------------------------------------------------------


class LegacyBatchResponse(PostEventBatchResponse):
    """Stored ids; ``success`` is false and ``errors`` names each refused event (index and field)."""

    errors: list[str] | None = None
