"""Request and response bodies of the configuration routes (``/v1/configurations*``): prompt and
model configurations, as honeyhive 1.7.0 sends and reads them (its generated
``CreateConfigurationRequest``, ``UpdateConfigurationRequest`` and ``ConfigurationItem``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tracehive.experiments.fields import JsonObject, Label, LabelList, LenientBody, Name, OpenBody, Text
from tracehive.model.wire import ResponseBody


class TemplateMessage(OpenBody):
    role: Label
    content: Text


class ResponseFormat(OpenBody):
    type: Label


class SelectedFunction(OpenBody):
    id: Label
    name: Label
    description: Text | None = None
    parameters: JsonObject | None = None


class ConfigurationParameters(OpenBody):
    """The model call: ``call_type`` (e.g. chat, completion) and ``model`` are required; keys
    beyond the known ones are the provider's and kept as sent."""

    call_type: Label
    model: Label
    hyperparameters: JsonObject | None = None
    responseFormat: ResponseFormat | None = None  # the wire's camelCase names, here and below
    selectedFunctions: Annotated[list[SelectedFunction | None], Field(max_length=1000)] | None = None
    functionCallParams: Label | None = None
    forceFunction: JsonObject | None = None
    template: Annotated[list[TemplateMessage], Field(max_length=10_000)] | Text | None = Field(
        None, description="Chat messages {role, content}, or a completion prompt string.")


class CreateConfigurationRequest(LenientBody):
    """``POST /v1/configurations``."""

    name: Name
    type: Label | None = Field(None, description="Defaults to LLM.")
    provider: Label
    parameters: ConfigurationParameters
    env: LabelList | None = Field(None, description="Environments it is deployed to (e.g. dev, staging, prod).")
    tags: LabelList | None = None
    user_properties: JsonObject | None = None


class UpdateConfigurationRequest(LenientBody):
    """``PUT /v1/configurations/{configId}``: ``name`` is required (the SDK's model says so); the
    other fields sent replace the stored ones."""

    name: Name
    type: Label | None = None
    provider: Label | None = None
    parameters: ConfigurationParameters | None = None
    env: LabelList | None = None
    tags: LabelList | None = None
    user_properties: JsonObject | None = None


# Responses -------------------------------------------------------------------------------------


class ConfigurationItem(ResponseBody):
    id: str
    name: str
    type: str
    provider: str
    parameters: JsonObject = Field(description="As sent: call_type, model, hyperparameters, template, ...")
    env: list[str]
    tags: list[str]
    user_properties: JsonObject | None = None
    created_at: str
    updated_at: str | None = None


class GetConfigurationsResponse(ResponseBody):
    configurations: list[ConfigurationItem]


class CreateConfigurationResponse(ResponseBody):
    acknowledged: bool
    insertedId: str  # the wire's camelCase name, here and below


class UpdateConfigurationResponse(ResponseBody):
    acknowledged: bool
    modifiedCount: int = Field(description="1 when something changed, else 0.")
    upsertedId: str | None = Field(description="Always null: an unknown id is a 404, never an insert.")
    upsertedCount: int
    matchedCount: int


class DeleteConfigurationResponse(ResponseBody):
    acknowledged: bool
    deletedCount: int
