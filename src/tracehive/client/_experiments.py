"""The experiment calls as data (``Op``): datasets, datapoints and runs.

Like ``_ops``, each function builds the request ``Client`` and ``AsyncClient`` both send: the body
validated with the server's own request model (a bad field fails before anything is sent, naming
it), the path (ids quoted), the query and the response parser. Reads unwrap the wire's envelope
(``{"datasets": [...]}``, ``{"datapoint": [dp]}``, ``{"evaluation": run}``); writes answer the
wire's response as it is, except where it is the object itself (a run, an updated dataset).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from tracehive.client._base import body_of, merge, new_id, validate
from tracehive.client._ops import Op
from tracehive.client.errors import NotFoundError, ValidationError
from tracehive.experiments.datapoint_models import (
    CreateDatapointRequest,
    CreateDatapointResponse,
    Datapoint,
    DeleteDatapointResponse,
    GetDatapointResponse,
    GetDatapointsResponse,
    UpdateDatapointRequest,
    UpdateDatapointResponse,
)
from tracehive.experiments.dataset_models import (
    AddDatapointsRequest,
    AddDatapointsResponse,
    CreateDatasetRequest,
    CreateDatasetResponse,
    Dataset,
    DeleteDatasetResponse,
    GetDatasetsResponse,
    RemoveDatapointResponse,
    UpdateDatasetRequest,
    UpdateDatasetResponse,
)
from tracehive.experiments.run_models import (
    CompareEventsResponse,
    CompareResponse,
    CreateRunRequest,
    CreateRunResponse,
    DeleteRunResponse,
    ListRunsResponse,
    ResultResponse,
    RunMetricsResponse,
    RunObject,
    RunResponse,
    UpdateRunRequest,
)

DEFAULT_AGGREGATE = "average"


def _model(model: type[BaseModel]) -> Callable[[Any], Any]:
    return model.model_validate


def _id(value: str) -> str:
    """An id as one path segment (a ``/`` or ``?`` in it cannot reach another route)."""
    return quote(str(value), safe="")


def _query(**values: Any) -> list[tuple[str, str]]:
    """The given (non-None) query parameters; a sequence repeats its name with ``[]``, as the
    HoneyHive SDK sends lists (``run_ids[]=a&run_ids[]=b``). An empty sequence is sent as one
    empty value, which matches nothing: it must not read as "no filter" (every record)."""
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out.extend((f"{name}[]", str(v)) for v in value or [""])
        else:
            out.append((name, str(value)))
    return out


# Datasets ---------------------------------------------------------------------------------------


def dataset_create(request: Any, fields: Mapping[str, Any]) -> Op[CreateDatasetResponse]:
    body = body_of(validate(CreateDatasetRequest, merge(request, fields)))
    return Op("POST", "/v1/datasets", body, _model(CreateDatasetResponse))


def dataset_list(dataset_id: str | None, name: str | None) -> Op[list[Dataset]]:
    return Op("GET", "/v1/datasets", None, lambda data: GetDatasetsResponse.model_validate(data).datasets,
              _query(dataset_id=dataset_id, name=name))


def dataset_get(dataset_id: str) -> Op[Dataset]:
    def parse(data: Any) -> Dataset:
        found = GetDatasetsResponse.model_validate(data).datasets
        if not found:  # the list route answers an empty list, not a 404, for an unknown id
            raise NotFoundError(404, "NOT_FOUND", f"no dataset with id {dataset_id} in this project", body=data)
        return found[0]

    return Op("GET", "/v1/datasets", None, parse, _query(dataset_id=dataset_id))


def dataset_update(dataset_id: str, request: Any, fields: Mapping[str, Any]) -> Op[Dataset]:
    body = body_of(validate(UpdateDatasetRequest, merge(request, fields)))
    return Op("PUT", f"/v1/datasets/{_id(dataset_id)}", body,
              lambda data: UpdateDatasetResponse.model_validate(data).result)


def dataset_delete(dataset_id: str) -> Op[DeleteDatasetResponse]:
    return Op("DELETE", f"/v1/datasets/{_id(dataset_id)}", None, _model(DeleteDatasetResponse))


def dataset_add_datapoints(
    dataset_id: str, data: Sequence[Mapping[str, Any]], mapping: Mapping[str, Any] | BaseModel
) -> Op[AddDatapointsResponse]:
    rows = [dict(row) for row in data]
    body = body_of(validate(AddDatapointsRequest, {"data": rows, "mapping": merge(mapping, {})}))
    return Op("POST", f"/v1/datasets/{_id(dataset_id)}/datapoints", body, _model(AddDatapointsResponse))


def dataset_remove_datapoint(dataset_id: str, datapoint_id: str) -> Op[RemoveDatapointResponse]:
    return Op("DELETE", f"/v1/datasets/{_id(dataset_id)}/datapoints/{_id(datapoint_id)}", None,
              _model(RemoveDatapointResponse))


# Datapoints -------------------------------------------------------------------------------------


def datapoint_create(request: Any, fields: Mapping[str, Any]) -> Op[CreateDatapointResponse]:
    body = body_of(validate(CreateDatapointRequest, merge(request, fields)))
    return Op("POST", "/v1/datapoints", body, _model(CreateDatapointResponse))


def datapoint_list(datapoint_ids: Sequence[str] | None, dataset_name: str | None) -> Op[list[Datapoint]]:
    ids = list(datapoint_ids) if datapoint_ids is not None else None
    return Op("GET", "/v1/datapoints", None, lambda data: GetDatapointsResponse.model_validate(data).datapoints,
              _query(datapoint_ids=ids, dataset_name=dataset_name))


def datapoint_get(datapoint_id: str) -> Op[Datapoint]:
    def parse(data: Any) -> Datapoint:
        found = GetDatapointResponse.model_validate(data).datapoint
        if not found:
            raise NotFoundError(404, "NOT_FOUND", f"no datapoint with id {datapoint_id} in this project", body=data)
        return found[0]

    return Op("GET", f"/v1/datapoints/{_id(datapoint_id)}", None, parse)


def datapoint_update(datapoint_id: str, request: Any, fields: Mapping[str, Any]) -> Op[UpdateDatapointResponse]:
    body = body_of(validate(UpdateDatapointRequest, merge(request, fields)))
    return Op("PUT", f"/v1/datapoints/{_id(datapoint_id)}", body, _model(UpdateDatapointResponse))


def datapoint_delete(datapoint_id: str) -> Op[DeleteDatapointResponse]:
    return Op("DELETE", f"/v1/datapoints/{_id(datapoint_id)}", None, _model(DeleteDatapointResponse))


# Runs -------------------------------------------------------------------------------------------


def run_create(request: Any, fields: Mapping[str, Any]) -> tuple[Op[RunObject], str | None]:
    """The op, and the ``run_id`` when it was made here (not the caller's).

    A made id cannot already exist, so a 409 for it can only mean that an earlier attempt of this
    very call was stored and its answer lost: the caller then reads the run instead."""
    data = merge(request, fields)
    made = None
    if not data.get("run_id"):
        made = data["run_id"] = new_id()
    body = body_of(validate(CreateRunRequest, data))
    return Op("POST", "/v1/runs", body, lambda d: CreateRunResponse.model_validate(d).evaluation), made


def run_list(
    dataset_id: str | None,
    run_ids: Sequence[str] | None,
    name: str | None,
    status: str | None,
    sort_by: str | None,
    sort_order: str | None,
    page: int | None,
    limit: int | None,
) -> Op[ListRunsResponse]:
    ids = list(run_ids) if run_ids is not None else None
    if ids == []:
        raise ValidationError(0, "CLIENT_VALIDATION_ERROR", "run_ids: empty (pass None for every run)",
                              field="run_ids")
    params = _query(dataset_id=dataset_id, run_ids=ids, name=name, status=status, sort_by=sort_by,
                    sort_order=sort_order, page=page, limit=limit)
    return Op("GET", "/v1/runs", None, _model(ListRunsResponse), params)


def run_get(run_id: str) -> Op[RunObject]:
    return Op("GET", f"/v1/runs/{_id(run_id)}", None, lambda data: RunResponse.model_validate(data).evaluation)


def run_update(run_id: str, request: Any, fields: Mapping[str, Any]) -> Op[RunObject]:
    body = body_of(validate(UpdateRunRequest, merge(request, fields)))
    return Op("PUT", f"/v1/runs/{_id(run_id)}", body, lambda data: RunResponse.model_validate(data).evaluation)


def run_delete(run_id: str) -> Op[DeleteRunResponse]:
    return Op("DELETE", f"/v1/runs/{_id(run_id)}", None, _model(DeleteRunResponse))


def run_result(run_id: str, aggregate_function: str) -> Op[ResultResponse]:
    return Op("GET", f"/v1/runs/{_id(run_id)}/result", None, _model(ResultResponse),
              _query(aggregate_function=aggregate_function))


def run_compare(new_run_id: str, old_run_id: str, aggregate_function: str) -> Op[CompareResponse]:
    return Op("GET", f"/v1/runs/{_id(new_run_id)}/compare-with/{_id(old_run_id)}", None, _model(CompareResponse),
              _query(aggregate_function=aggregate_function))


def run_compare_events(
    run_id_1: str,
    run_id_2: str,
    event_name: str | None,
    event_type: str | None,
    limit: int | None,
    page: int | None,
) -> Op[CompareEventsResponse]:
    params = _query(run_id_1=run_id_1, run_id_2=run_id_2, event_name=event_name, event_type=event_type,
                    limit=limit, page=page)
    return Op("GET", "/v1/runs/compare/events", None, _model(CompareEventsResponse), params)


def run_metrics(run_id: str) -> Op[RunMetricsResponse]:
    return Op("GET", f"/v1/runs/{_id(run_id)}/metrics", None, _model(RunMetricsResponse))
