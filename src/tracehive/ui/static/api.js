// The REST API, as the UI uses it. Every data request carries the pasted key as a bearer token;
// errors come back as ApiError with the contract body's message.

const KEY_STORAGE = "tracehive.apiKey";

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status; // 0 = the server could not be reached
    this.body = body;
  }
}

export function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || null;
  } catch {
    return null; // storage disabled: the user signs in again on each load
  }
}

export function storeKey(key) {
  localStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  try {
    localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* nothing stored */
  }
}

// Called when the stored key stops working (revoked while the UI is open).
let unauthorizedHandler = () => {};
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

async function request(method, path, { body, key, signal } = {}) {
  const apiKey = key ?? storedKey();
  const headers = { Accept: "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "Cannot reach the tracehive server. Is `tracehive serve` running?");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = data && typeof data.message === "string" ? data.message : `HTTP ${response.status} from ${path}`;
    const error = new ApiError(response.status, message, data);
    // Only for the stored key: a key being tried on the sign-in screen reports its own error.
    if (response.status === 401 && key === undefined) unauthorizedHandler(error);
    throw error;
  }
  return data;
}

/** {project_id, project_name, key_kind} of ``key`` (or the stored key). */
export function whoami(key) {
  return request("GET", "/v1/whoami", { key });
}

/** body: {filters, dateRange, sort_by, sort_order, limit, page} → {sessions, totalSessions, page, limit} */
export function searchSessions(body, signal) {
  return request("POST", "/v1/sessions/search", { body, signal });
}

/** The session event as the root of its tree (nested ``children``), roll-ups in its metadata. */
export function getSession(sessionId, signal) {
  return request("GET", `/v1/sessions/${encodeURIComponent(sessionId)}`, { signal });
}

/** One event (the route answers {event: {...}}). */
export async function getEvent(eventId, signal) {
  const reply = await request("GET", `/v1/events/${encodeURIComponent(eventId)}`, { signal });
  return reply && reply.event ? reply.event : reply;
}

/**
 * Merge ``fields`` ({feedback, metrics, ...}: objects merged key by key into the stored ones; a
 * null value is stored as null) into an event or, with the session id, into the session event.
 * The route answers only {success}: read the event back to see what was stored.
 */
export function updateEvent(eventId, fields, signal) {
  return request("PUT", `/v1/events/${encodeURIComponent(eventId)}`, { body: fields, signal });
}

/** body: {filters, dateRange, limit, page} → {events, count}, newest first. */
export function searchEvents(body, signal) {
  return request("POST", "/v1/events/search", { body, signal });
}

/** {fields: [{name, event_type}], ...}: the field paths seen, for the filter bar's suggestions. */
export function eventSchema(signal) {
  return request("GET", "/v1/events/schema", { signal });
}

/**
 * params: {metric, aggregation, bucket, groupBy, dateRange: {$gte, $lte}, filters: [...]}
 * → {events: [{bucket, bucket_iso, group, value, count}]}
 */
export function chart(params, signal) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    query.set(name, typeof value === "object" ? JSON.stringify(value) : String(value));
  }
  return request("GET", `/v1/events/chart?${query}`, { signal });
}

// Experiments ------------------------------------------------------------------------------------

function queryString(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) for (const item of value) query.append(`${name}[]`, String(item));
    else query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

const runPath = (runId) => `/v1/runs/${encodeURIComponent(runId)}`;

/** params: {page, limit, sort_by, sort_order, name, status, dataset_id} → {evaluations, pagination, metrics} */
export function listRuns(params, signal) {
  return request("GET", `/v1/runs${queryString(params)}`, { signal });
}

/** {status, success, passed, failed, metrics: {aggregation_function, details}, datapoints, run_object} */
export function getRunResult(runId, signal) {
  return request("GET", `${runPath(runId)}/result`, { signal });
}

/** Per metric: old/new aggregate, difference, improved/degraded/same datapoint ids. */
export function compareRuns(newRunId, oldRunId, signal) {
  return request("GET", `${runPath(newRunId)}/compare-with/${encodeURIComponent(oldRunId)}`, { signal });
}

/** {events: [{datapoint_id, event_1 (new run), event_2 (old run)}], totalEvents} */
export function compareRunEvents(newRunId, oldRunId, { page, limit } = {}, signal) {
  return request("GET", `/v1/runs/compare/events${queryString({ run_id_1: newRunId, run_id_2: oldRunId, page, limit })}`, { signal });
}

/** {datasets: [{id, name, description, datapoints: [ids], created_at}]} */
export function listDatasets(signal) {
  return request("GET", "/v1/datasets", { signal });
}

/** {datapoints: [{id, inputs, history, ground_truth, metadata, linked_event, created_at}]}, in the order asked. */
export function getDatapoints(ids, signal) {
  return request("GET", `/v1/datapoints${queryString({ datapoint_ids: ids })}`, { signal });
}
