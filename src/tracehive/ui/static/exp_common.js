// What the experiments pages share: links, number formats, badges, JSON cells, a pager and a
// bounded-concurrency map (one request per run or session, a few at a time).

import { el, fmtInt } from "./dom.js";
import { jsonView } from "./json_view.js";

export const runHref = (runId) => `#/experiments/${encodeURIComponent(runId)}`;
export const compareHref = (newId, oldId) => `#/experiments/${encodeURIComponent(newId)}/compare/${encodeURIComponent(oldId)}`;
export const sessionHref = (sessionId) => `#/sessions/${encodeURIComponent(sessionId)}`;
export const datasetHref = (datasetId) => `#/datasets/${encodeURIComponent(datasetId)}`;

/** ISO time (as the runs and datasets routes answer) to Unix ms; undefined if unreadable. */
export function isoMs(text) {
  const ms = typeof text === "string" ? Date.parse(text) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/** A metric value: booleans as words, numbers with at most 4 significant digits. */
export function fmtMetric(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return String(value);
  if (typeof value === "number" && Number.isFinite(value)) {
    if (Number.isInteger(value)) return fmtInt(value);
    return String(Number(value.toPrecision(4)));
  }
  return String(value);
}

/** A difference with its sign: "+0.05", "−0.1", "0". */
export function fmtSigned(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  if (value === 0) return "0";
  return `${value > 0 ? "+" : "−"}${fmtMetric(Math.abs(value))}`;
}

export function fmtPercent(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "";
  return `${value > 0 ? "+" : value < 0 ? "−" : ""}${Number(Math.abs(value).toPrecision(3))}%`;
}

/** A number from a metric value (booleans as 0/1, as the server aggregates them). */
export function numeric(value) {
  if (typeof value === "boolean") return value ? 1 : 0;
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** The run's dataset as the user knows it: its name, else the id the SDK kept. */
export function runDataset(run) {
  const metadata = (run && run.metadata) || {};
  return run.dataset_name || run.dataset_id || (typeof metadata.offline_dataset_id === "string" ? metadata.offline_dataset_id : "") || "";
}

export function statusBadge(status) {
  const text = String(status || "unknown");
  return el("span", { className: `badge status-badge status-${text.replace(/[^a-z]/g, "")}`, text });
}

/** "pass" / "fail" / nothing (a number without a passing range is measured, not judged). */
export function verdictBadge(passed) {
  if (passed === true) return el("span", { className: "badge verdict verdict-pass", text: "pass" });
  if (passed === false) return el("span", { className: "badge verdict verdict-fail", text: "fail" });
  return null;
}

const PREVIEW = 160;

/** One line saying what a JSON value holds: "question: Capital of France? · lang: en". */
export function preview(value) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "object") return String(value);
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  if (!entries.length) return "";
  const show = (v) => (typeof v === "string" ? v : JSON.stringify(v));
  const text = entries.length === 1 && !Array.isArray(value)
    ? show(entries[0][1])
    : entries.map(([k, v]) => `${k}: ${show(v)}`).join(" · ");
  return text.length > PREVIEW ? `${text.slice(0, PREVIEW)}…` : text;
}

/** A table cell with a one-line preview that opens into the full JSON view. */
export function jsonCell(value, className = "") {
  const text = preview(value);
  if (!text) return el("td", { className: `json-cell ${className}`.trim() }, el("span", { className: "muted", text: "—" }));
  if (value === null || typeof value !== "object") {
    return el("td", { className: `json-cell ${className}`.trim() }, el("span", { className: "cell-text", text }));
  }
  const full = JSON.stringify(value);
  const title = full.length > 1000 ? `${full.slice(0, 1000)}…` : full;
  const details = el("details", { className: "json-peek" }, el("summary", { className: "cell-text", text, title }));
  let built = false;
  details.addEventListener("toggle", () => {
    if (details.open && !built) {
      built = true;
      details.append(jsonView(value, { openDepth: 1 }));
    }
  });
  return el("td", { className: `json-cell ${className}`.trim() }, details);
}

/** A pager: ‹ Previous · Page n of m · Next › and a page size; onChange({page, limit}). */
export function createPager({ sizes = [10, 25, 50, 100], noun = ["item", "items"], onChange }) {
  const element = el("div", { className: "pager" });
  function render({ page, limit, total }) {
    const pages = Math.max(1, Math.ceil(total / limit));
    const size = el("select", { className: "input", attrs: { "aria-label": "Rows per page" } },
      [...new Set([...sizes, limit])].sort((a, b) => a - b).map((n) => el("option", { value: n, text: `${n} per page` })));
    size.value = String(limit);
    size.addEventListener("change", () => onChange({ page: 1, limit: Number(size.value) }));
    element.replaceChildren(
      el("button", { type: "button", className: "btn", text: "‹ Previous", disabled: page <= 1, on: { click: () => onChange({ page: page - 1, limit }) } }),
      el("span", { className: "pager-text", text: `Page ${fmtInt(page)} of ${fmtInt(pages)} · ${fmtInt(total)} ${total === 1 ? noun[0] : noun[1]}` }),
      el("button", { type: "button", className: "btn", text: "Next ›", disabled: page >= pages, on: { click: () => onChange({ page: page + 1, limit }) } }),
      size);
  }
  return { element, render };
}

/** fn(item, i) for every item, at most ``limit`` at a time; resolves to the results in order
 * ({ok, value} or {ok: false, error}), never rejects unless the signal aborts. */
export async function mapLimit(items, limit, fn, signal) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      if (signal && signal.aborted) return;
      const i = next;
      next += 1;
      try {
        results[i] = { ok: true, value: await fn(items[i], i) };
      } catch (error) {
        if (error && error.name === "AbortError") return;
        results[i] = { ok: false, error };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Page and limit from a route's query (positive integers), with defaults. */
export function pageOf(query, defaultLimit) {
  const int = (text, fallback) => {
    const n = Number.parseInt(text ?? "", 10);
    return Number.isFinite(n) && n >= 1 ? n : fallback;
  };
  return { page: int(query.get("page"), 1), limit: int(query.get("limit"), defaultLimit) };
}

/** Replace the hash's query without a navigation (the view already shows that state). */
export function writeQuery(path, values, defaults = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === null || value === "" || value === defaults[name]) continue;
    query.set(name, String(value));
  }
  const text = query.toString();
  history.replaceState(null, "", `#${path}${text ? `?${text}` : ""}`);
}

/** Metric columns keyed by name, in first-seen order, from result ``metrics.details`` lists. */
export function metricNames(...detailLists) {
  const names = [];
  for (const details of detailLists) {
    for (const detail of details || []) {
      if (detail && typeof detail.metric_name === "string" && !names.includes(detail.metric_name)) names.push(detail.metric_name);
    }
  }
  return names;
}
