"""Request and response bodies of the v1 routes, as pydantic models.

These are the server's own definitions: the API validates with them, ``/openapi.json`` is built
from them, and the Python client reuses them, so client and server validate identically.
Strict bodies (contract 5.1) forbid unknown keys; ``UpdateEventRequest`` ignores them.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from tracehive.model.ids import is_uuid

MAX_NAME_LENGTH = 1024
MAX_ID_LENGTH = 64
MAX_ERROR_LENGTH = 1 << 20
# Times and durations must fit SQLite's 64-bit integers even after start + duration: 2^53 ms
# (JavaScript's largest safe integer) is about 285,000 years.
MAX_NUMBER = 1 << 53


def _uuid(value: str) -> str:
    if not is_uuid(value):
        raise ValueError("must be a UUID string")
    return value.lower()


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if abs(value) > MAX_NUMBER:
        raise ValueError("must be between -2^53 and 2^53")
    return value


def _time(value: Any) -> Any:
    """Lenient times: non-numbers pass (they become now), but a number must be in range."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value)
    return value


def _not_negative(value: Any) -> Any:
    if value is not None and value < 0:
        raise ValueError("must not be negative")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _lower_enum(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


JsonObject = dict[str, Any]
Uuid = Annotated[str, Field(max_length=MAX_ID_LENGTH, json_schema_extra={"format": "uuid"}), AfterValidator(_uuid)]
Name = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
ErrorText = Annotated[str, Field(max_length=MAX_ERROR_LENGTH)]
Number = Annotated[Any, PlainValidator(_number), WithJsonSchema({"type": "number"})]
# Times are read getInt64-style: a number is used, anything else silently becomes "now".
LenientTime = Annotated[Any, AfterValidator(_time), Field(json_schema_extra={"type": "number", "description": "Unix milliseconds"})]
EventType = Annotated[Literal["model", "tool", "chain", "session"], BeforeValidator(_lower_enum)]


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartSessionRequest(StrictBody):
    """``POST /v1/sessions``: a bare session object; no field is required."""

    session_id: Annotated[Any, Field(json_schema_extra={"type": "string", "format": "uuid"})] = Field(
        None, description="Replaced by a new UUIDv4 when missing or not a UUID (of any type)."
    )
    session_name: Name | None = None
    event_name: Name | None = Field(None, description="Falls back to session_name, then 'unknown'.")
    source: Name | None = Field(None, description="Defaults to 'unknown'.")
    start_time: LenientTime = None
    end_time: LenientTime = None
    duration: Number | None = None
    config: JsonObject | None = None
    inputs: JsonObject | None = None
    outputs: JsonObject | None = None
    metadata: JsonObject | None = None
    user_properties: JsonObject | None = None
    children_ids: list[Annotated[str, Field(max_length=MAX_ID_LENGTH)]] | None = None


class PostEventRequest(StrictBody):
    """One event on the strict v1 routes: ``event_type`` and ``inputs`` are required."""

    event_type: EventType
    inputs: JsonObject
    event_id: Uuid | None = None
    session_id: Uuid | None = None
    parent_id: Uuid | None = None
    children_ids: list[Uuid] | None = None
    event_name: Name | None = None
    source: Name | None = None
    config: JsonObject | None = None
    outputs: JsonObject | None = None
    error: ErrorText | None = None
    start_time: LenientTime = None
    end_time: LenientTime = None
    # Never negative, and an end before the start is refused (the sessions list showed "-5 ms").
    duration: Annotated[Number | None, AfterValidator(_not_negative),
                        Field(json_schema_extra={"minimum": 0, "description": "ms; end_time - start_time"})] = None
    metadata: JsonObject | None = None
    feedback: JsonObject | None = None
    metrics: JsonObject | None = None
    user_properties: JsonObject | None = None
    project_id: Annotated[str, Field(max_length=MAX_ID_LENGTH)] | None = Field(
        None, description="Accepted and ignored: the API key decides the project."
    )

    @field_validator("end_time")
    @classmethod
    def _end_not_before_start(cls, end: Any, info: ValidationInfo) -> Any:
        start = info.data.get("start_time")
        if _is_number(start) and _is_number(end) and end < start:
            raise ValueError("must not be before start_time")
        return end


class SessionEventBatchRequest(StrictBody):
    """``POST /v1/sessions/{session_id}/events/batch``."""

    events: list[PostEventRequest]


class SessionProperties(BaseModel):
    """The session made by ``single_session`` batches; extra keys are allowed."""

    model_config = ConfigDict(extra="allow")

    session_id: Annotated[Any, Field(json_schema_extra={"type": "string", "format": "uuid"})] = None
    session_name: Name | None = None
    source: Name | None = None
    start_time: LenientTime = None
    user_properties: JsonObject | None = None
    metadata: JsonObject | None = None
    config: JsonObject | None = None
    inputs: JsonObject | None = None


class PostEventBatchRequest(StrictBody):
    """``POST /v1/events/batch``."""

    events: list[PostEventRequest]
    single_session: StrictBool = False
    session_properties: SessionProperties | None = None


class UpdateEventRequest(BaseModel):
    """``PUT /v1/events/{event_id}``: the one lenient v1 write; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    metadata: JsonObject | None = None
    feedback: JsonObject | None = None
    metrics: JsonObject | None = None
    config: JsonObject | None = None
    user_properties: JsonObject | None = None
    outputs: JsonObject | None = Field(None, description="Replaces the stored outputs; null keeps them.")
    duration: Number | None = None
    end_time: Number | None = None
    children_ids: list[Uuid] | None = Field(None, description="Set only when non-empty.")


# Responses -------------------------------------------------------------------------------------


class ResponseBody(BaseModel):
    model_config = ConfigDict(extra="allow")


class EventRecord(ResponseBody):
    """A stored event as returned by reads (passthrough: more keys may appear). Every JSON object
    field is an object (an event never given outputs reads ``{}``) and ``end_time`` is whole
    milliseconds, the shape both HoneyHive SDKs (Python and TypeScript) accept; the NDJSON
    export keeps the stored values as sent."""

    event_id: str
    session_id: str
    parent_id: str | None = None
    children_ids: list[str] = []
    event_type: str | None = None
    event_name: str | None = None
    source: str | None = None
    config: JsonObject | None = None
    inputs: JsonObject | None = None
    outputs: JsonObject | None = None
    error: str | None = None
    start_time: float | None = None
    end_time: int | None = None
    duration: float | None = None
    metadata: JsonObject | None = None
    feedback: JsonObject | None = None
    metrics: JsonObject | None = None
    user_properties: JsonObject | None = None
    org_id: str
    workspace_id: str
    project_id: str
    tenant: str | None = None


class SessionTreeNode(EventRecord):
    children: list[SessionTreeNode] = []
    orphan: bool | None = Field(None, description="Set when the event's parent is not in the session.")


class SuccessResponse(ResponseBody):
    success: bool = True


class PostEventResponse(ResponseBody):
    success: bool = True
    event_id: str


class PostEventBatchResponse(ResponseBody):
    success: bool = True
    event_ids: list[str]
    session_id: str | None = None


class DeleteResponse(ResponseBody):
    success: bool = True
    deleted: str


class GetEventResponse(ResponseBody):
    event: EventRecord


class ErrorResponse(ResponseBody):
    statusCode: int
    message: str
    success: bool = False
    errorCode: str
    errors: list[dict[str, Any]] | None = None


class HealthResponse(ResponseBody):
    status: str
