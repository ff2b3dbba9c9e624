"""Pydantic building blocks shared by the dataset, datapoint, configuration and metric bodies.

Requests are lenient about keys we do not know (the SDK's models allow extras, and a newer SDK
may send more) and strict about the types of the keys we do: ``"1"`` is not a number and ``1`` is
not a string, so a wrong type is a 400 naming the field rather than a silent conversion.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from tracehive.model.wire import MAX_ID_LENGTH, MAX_NAME_LENGTH

# The most datapoints one dataset holds, and so the most ids one list names: a dataset is one
# record, and reading its datapoints back must fit one store listing (``storage.records.MAX_LIST``).
MAX_DATASET_DATAPOINTS = 10_000
# Free text (descriptions, metric criteria such as a Python function or an LLM prompt).
MAX_TEXT_LENGTH = 1 << 20

JsonObject = dict[str, Any]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
Label = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
Text = Annotated[str, Field(max_length=MAX_TEXT_LENGTH)]
IdList = Annotated[list[Id], Field(max_length=MAX_DATASET_DATAPOINTS)]
LabelList = Annotated[list[Label], Field(max_length=1000)]


class LenientBody(BaseModel):
    """A request body: unknown keys ignored, known ones type-checked without coercion."""

    model_config = ConfigDict(extra="ignore", strict=True)


class OpenBody(BaseModel):
    """A nested object that is the user's own content (model parameters, a metric threshold):
    known keys are type-checked, unknown ones are kept as sent."""

    model_config = ConfigDict(extra="allow", strict=True)
