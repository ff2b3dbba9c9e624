// Charts over time from GET /v1/events/chart, grouped by event type: events, p50 and p95
// latency, cost and tokens.

import { chart } from "./api.js";
import { el, fmtCost, fmtDuration, fmtInt, notice } from "./dom.js";
import { lineChart } from "./svg_chart.js";

const RANGES = [["1h", "Last hour", 3_600_000], ["24h", "Last 24 hours", 86_400_000], ["7d", "Last 7 days", 7 * 86_400_000], ["30d", "Last 30 days", 30 * 86_400_000]];
const BUCKET_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000, week: 7 * 86_400_000 };
const AUTO_BUCKET = { "1h": "minute", "24h": "hour", "7d": "hour", "30d": "day" };
const WEEK_ORIGIN = -3 * 86_400_000; // the API's weeks start on Monday (1970-01-01 was a Thursday)

function compactNumber(v) {
  return Math.abs(v) >= 10_000 ? `${Number((v / 1000).toPrecision(3))}k` : fmtInt(Math.round(v * 100) / 100);
}

// [title, request, value(row), format, fillZero, total label]
const CHARTS = [
  { id: "events", title: "Events", request: { metric: "duration", aggregation: "count" }, value: (r) => r.count, format: compactNumber, fillZero: true, total: (t) => `${fmtInt(t)} events` },
  { id: "latency-p50", title: "Latency p50", request: { metric: "duration", aggregation: "p50" }, value: (r) => r.value, format: fmtDuration, fillZero: false },
  { id: "latency-p95", title: "Latency p95", request: { metric: "duration", aggregation: "p95" }, value: (r) => r.value, format: fmtDuration, fillZero: false },
  { id: "cost", title: "Cost", request: { metric: "metadata.cost", aggregation: "sum" }, value: (r) => r.value, format: fmtCost, fillZero: true, total: (t) => `${fmtCost(t)} total` },
  { id: "tokens", title: "Tokens", request: { metric: "metadata.total_tokens", aggregation: "sum" }, value: (r) => r.value, format: compactNumber, fillZero: true, total: (t) => `${fmtInt(t)} tokens` },
];

function bucketStart(ms, bucket) {
  const width = BUCKET_MS[bucket];
  const origin = bucket === "week" ? WEEK_ORIGIN : 0;
  return ms - ((((ms - origin) % width) + width) % width);
}

function allBuckets(start, end, bucket) {
  const out = [];
  for (let t = bucketStart(start, bucket); t <= end && out.length < 5000; t += BUCKET_MS[bucket]) out.push(t);
  return out;
}

export function createChartsView(container, route) {
  const query = route.query;
  const state = {
    range: RANGES.some(([k]) => k === query.get("range")) ? query.get("range") : "24h",
    bucket: BUCKET_MS[query.get("bucket")] ? query.get("bucket") : "auto",
    sessions: query.get("sessions") === "1",
  };
  const controller = { current: null };
  let disposed = false;

  const rangeSelect = el("select", { className: "input", attrs: { "aria-label": "Chart range" } },
    RANGES.map(([value, label]) => el("option", { value, text: label })));
  rangeSelect.value = state.range;
  const bucketSelect = el("select", { className: "input", attrs: { "aria-label": "Bucket" } },
    [["auto", "Auto bucket"], ["minute", "Per minute"], ["hour", "Per hour"], ["day", "Per day"], ["week", "Per week"]]
      .map(([value, label]) => el("option", { value, text: label })));
  bucketSelect.value = state.bucket;
  const sessionsBox = el("input", { type: "checkbox", checked: state.sessions, id: "chart-sessions" });
  const errorBox = el("div");
  const grid = el("div", { className: "chart-grid" });

  container.append(el("section", { className: "page" },
    el("div", { className: "page-head" }, el("h1", { text: "Charts" }), el("span", { className: "muted", text: "Grouped by event type" })),
    el("div", { className: "toolbar toolbar-row" }, rangeSelect, bucketSelect,
      el("label", { className: "check", htmlFor: "chart-sessions" }, sessionsBox, "Include session events")),
    errorBox, grid));

  const changed = () => {
    state.range = rangeSelect.value;
    state.bucket = bucketSelect.value;
    state.sessions = sessionsBox.checked;
    const params = new URLSearchParams();
    if (state.range !== "24h") params.set("range", state.range);
    if (state.bucket !== "auto") params.set("bucket", state.bucket);
    if (state.sessions) params.set("sessions", "1");
    history.replaceState(null, "", `#/charts${params.toString() ? `?${params}` : ""}`);
    load();
  };
  rangeSelect.addEventListener("change", changed);
  bucketSelect.addEventListener("change", changed);
  sessionsBox.addEventListener("change", changed);

  async function load() {
    if (controller.current) controller.current.abort();
    const abort = new AbortController();
    controller.current = abort;
    const end = Date.now();
    const start = end - RANGES.find(([k]) => k === state.range)[2];
    const bucket = state.bucket === "auto" ? AUTO_BUCKET[state.range] : state.bucket;
    const buckets = allBuckets(start, end, bucket);
    const common = {
      bucket,
      groupBy: "event_type",
      dateRange: { $gte: new Date(start).toISOString(), $lte: new Date(end).toISOString() },
      filters: state.sessions ? undefined : [{ field: "event_type", operator: "is not", value: "session", type: "string" }],
    };
    grid.classList.add("loading");
    try {
      const replies = await Promise.all(CHARTS.map((spec) => chart({ ...spec.request, ...common }, abort.signal)));
      if (disposed || abort.signal.aborted) return;
      errorBox.replaceChildren();
      grid.replaceChildren(...CHARTS.map((spec, i) => {
        const rows = replies[i].events || [];
        const total = spec.total ? rows.reduce((sum, row) => sum + (spec.value(row) || 0), 0) : null;
        return el("article", { className: "card chart-card", dataset: { chart: spec.id }, attrs: { "aria-label": spec.title } },
          el("div", { className: "card-head" },
            el("h2", { text: spec.title }),
            total !== null ? el("span", { className: "muted chart-total", text: spec.total(total) }) : null),
          rows.length
            ? lineChart({ rows, buckets, bucketMs: BUCKET_MS[bucket], value: spec.value, format: spec.format, fillZero: spec.fillZero })
            : el("p", { className: "muted chart-empty", text: "No events in this range." }));
      }));
    } catch (error) {
      if (error.name === "AbortError" || disposed) return;
      errorBox.replaceChildren(notice("error", `Could not load the charts: ${error.message}`));
    } finally {
      grid.classList.remove("loading");
    }
  }

  load();
  return {
    dispose() {
      disposed = true;
      if (controller.current) controller.current.abort();
    },
  };
}
