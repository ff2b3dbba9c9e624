// The experiments list: the project's runs (GET /v1/runs), each with its pass/fail counts and
// metric aggregates from its result (GET /v1/runs/{id}/result, a few at a time), sortable, paged,
// and two of them can be picked to open the compare view.

import { getRunResult, listRuns } from "./api.js";
import { el, fmtAgo, fmtInt, fmtTime, notice } from "./dom.js";
import {
  compareHref, createPager, fmtMetric, isoMs, mapLimit, metricNames, pageOf, runDataset, runHref,
  statusBadge, writeQuery,
} from "./exp_common.js";

const PATH = "/experiments";
const DEFAULTS = { sort: "created_at", order: "desc", limit: 25 };
const SORTS = ["created_at", "name", "status"];
const RESULTS_AT_ONCE = 3;
const ALL_PAGE = 1000; // the route's largest page: sorting by status fetches every run
const MAX_PAGES = 50;

export function createExperimentsView(container, route) {
  const query = route.query;
  const state = {
    sort: SORTS.includes(query.get("sort")) ? query.get("sort") : DEFAULTS.sort,
    order: ["asc", "desc"].includes(query.get("order")) ? query.get("order") : DEFAULTS.order,
    ...pageOf(query, DEFAULTS.limit),
  };
  let loadController = null;
  let runs = [];
  let total = 0;
  const results = new Map(); // run id -> {result} | {error}
  const selected = new Map(); // run id -> run, in the order picked (at most two)
  let frame = 0;

  const summary = el("span", { className: "muted", attrs: { role: "status" } });
  const errorBox = el("div");
  const headRow = el("tr");
  const tbody = el("tbody");
  const table = el("table", { className: "grid runs-table" }, el("thead", {}, headRow), tbody);
  const picked = el("span", { className: "compare-picked muted" });
  const compareButton = el("button", { type: "button", className: "btn btn-primary btn-compare", text: "Compare selected", disabled: true, on: { click: openCompare } });
  const pager = createPager({ sizes: [10, 25, 50, 100], noun: ["run", "runs"], onChange: ({ page, limit }) => { state.page = page; state.limit = limit; save(); load(); } });

  container.append(el("section", { className: "page" },
    el("div", { className: "page-head" }, el("h1", { text: "Experiments" }), summary, el("span", { className: "spacer" }),
      el("button", { type: "button", className: "btn btn-small", text: "Refresh", on: { click: () => load() } })),
    el("div", { className: "toolbar toolbar-row compare-bar" }, compareButton, picked),
    errorBox,
    el("div", { className: "table-wrap" }, table),
    pager.element));

  function save() {
    writeQuery(PATH, { sort: state.sort, order: state.order, page: state.page, limit: state.limit },
      { sort: DEFAULTS.sort, order: DEFAULTS.order, page: 1, limit: DEFAULTS.limit });
  }

  // Selection for the compare view ------------------------------------------------------------

  function toggleSelected(run, on) {
    if (on) {
      selected.set(run.run_id, run);
      while (selected.size > 2) selected.delete(selected.keys().next().value); // keep the latest two
    } else selected.delete(run.run_id);
    renderPicked();
    for (const box of tbody.querySelectorAll("input.pick")) box.checked = selected.has(box.dataset.runId);
  }

  function renderPicked() {
    const list = [...selected.values()];
    compareButton.disabled = list.length !== 2;
    picked.textContent = list.length
      ? `Selected: ${list.map((r) => r.name || r.run_id).join(" and ")}${list.length === 1 ? " (pick one more)" : ""}`
      : "Tick two runs to compare them.";
  }

  function openCompare() {
    const list = [...selected.values()];
    if (list.length !== 2) return;
    // The newer run is "new": its values are compared against the older one's.
    const [older, newer] = [...list].sort((a, b) => (isoMs(a.created_at) ?? 0) - (isoMs(b.created_at) ?? 0));
    location.hash = compareHref(newer.run_id, older.run_id);
  }

  // Table --------------------------------------------------------------------------------------

  function metricColumns() {
    return metricNames(...runs.map((run) => {
      const entry = results.get(run.run_id);
      return entry && entry.result ? entry.result.metrics && entry.result.metrics.details : [];
    }));
  }

  function sortHeader(label, key, className) {
    const sorted = state.sort === key;
    const button = el("button", { type: "button", className: "sort-button", attrs: { "aria-label": `Sort by ${label.toLowerCase()}` } },
      label, el("span", { className: "sort-arrow", text: sorted ? (state.order === "asc" ? " ▲" : " ▼") : "" }));
    button.addEventListener("click", () => {
      if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
      else {
        state.sort = key;
        state.order = key === "created_at" ? "desc" : "asc";
      }
      state.page = 1;
      save();
      load();
    });
    return el("th", { className: `${className} sortable`, attrs: { scope: "col", "aria-sort": sorted ? (state.order === "asc" ? "ascending" : "descending") : "none" } }, button);
  }

  function render() {
    frame = 0;
    const metrics = metricColumns();
    const th = (text, className = "") => el("th", { className, text, attrs: { scope: "col" } });
    headRow.replaceChildren(
      el("th", { className: "col-pick", attrs: { scope: "col" } }, el("span", { className: "visually-hidden", text: "Compare" })),
      sortHeader("Name", "name", "col-name"), th("Dataset"), sortHeader("Status", "status", ""),
      sortHeader("Created", "created_at", "col-time"), th("Datapoints", "num"), th("Passed", "num"), th("Failed", "num"),
      ...metrics.map((name) => el("th", { className: "num col-metric", text: name, title: `${name}: aggregate over the run's datapoints`, attrs: { scope: "col" } })));
    if (!runs.length) {
      tbody.replaceChildren(el("tr", {}, el("td", { className: "empty-row", attrs: { colspan: 8 + metrics.length } },
        "No experiment runs yet. Run evaluate() from the HoneyHive SDK against this server and its runs show up here.")));
      return;
    }
    tbody.replaceChildren(...runs.map((run) => runRow(run, metrics)));
  }

  function runRow(run, metrics) {
    const entry = results.get(run.run_id);
    const result = entry && entry.result;
    const pending = !entry;
    const count = (value) => (pending ? "…" : result ? fmtInt(value) : "—");
    const created = isoMs(run.created_at);
    const box = el("input", { type: "checkbox", className: "pick", checked: selected.has(run.run_id), dataset: { runId: run.run_id },
      attrs: { "aria-label": `Select ${run.name || run.run_id} to compare` } });
    box.addEventListener("change", () => toggleSelected(run, box.checked));
    const details = (result && result.metrics && result.metrics.details) || [];
    const dataset = runDataset(run);
    const row = el("tr", { className: "clickable", dataset: { runId: run.run_id } },
      el("td", { className: "col-pick" }, box),
      el("td", { className: "col-name" }, el("a", { href: runHref(run.run_id), text: run.name || run.run_id, title: run.run_id })),
      el("td", { className: "col-dataset", text: dataset || "—", title: run.dataset_id || "" }),
      el("td", { className: "col-status" }, statusBadge(run.status)),
      el("td", { className: "col-time", text: fmtTime(created), title: fmtAgo(created) }),
      el("td", { className: "num col-datapoints", text: count(result && result.datapoints.length) }),
      el("td", { className: "num col-passed", text: count(result && result.passed.length) }),
      el("td", { className: "num col-failed", text: count(result && result.failed.length) }),
      metrics.map((name) => {
        const detail = details.find((d) => d.metric_name === name);
        return el("td", { className: "num col-metric", dataset: { metric: name }, text: pending ? "…" : detail ? fmtMetric(detail.aggregate) : "—",
          title: detail ? `${result.metrics.aggregation_function || "average"} of ${detail.values.length} values (${detail.event_name})` : "" });
      }));
    if (entry && entry.error) row.title = `Could not load the result: ${entry.error.message}`;
    if (result && result.failed.length) row.classList.add("has-failures");
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, input, label")) return;
      location.hash = runHref(run.run_id);
    });
    return row;
  }

  const scheduleRender = () => {
    if (!frame) frame = requestAnimationFrame(render);
  };

  // Loading ------------------------------------------------------------------------------------

  async function fetchPage(signal) {
    if (state.sort !== "status") {
      const reply = await listRuns({ page: state.page, limit: state.limit, sort_by: state.sort, sort_order: state.order }, signal);
      return { shown: reply.evaluations || [], count: reply.pagination ? reply.pagination.total : (reply.evaluations || []).length };
    }
    // The route sorts by name and times only: for status, fetch them all and sort here.
    const all = [];
    for (let page = 1; page <= MAX_PAGES; page += 1) {
      const reply = await listRuns({ page, limit: ALL_PAGE, sort_by: "created_at", sort_order: "desc" }, signal);
      all.push(...(reply.evaluations || []));
      if (!reply.pagination || !reply.pagination.has_next) break;
    }
    const direction = state.order === "asc" ? 1 : -1;
    all.sort((a, b) => direction * String(a.status || "").localeCompare(String(b.status || "")));
    return { shown: all.slice((state.page - 1) * state.limit, state.page * state.limit), count: all.length };
  }

  async function load() {
    if (loadController) loadController.abort();
    const current = new AbortController();
    loadController = current;
    table.classList.add("loading");
    try {
      const { shown, count } = await fetchPage(current.signal);
      if (current.signal.aborted) return;
      runs = shown;
      total = count;
      results.clear();
      errorBox.replaceChildren();
      summary.textContent = `${fmtInt(total)} ${total === 1 ? "run" : "runs"}`;
      pager.render({ page: state.page, limit: state.limit, total });
      render();
      table.classList.remove("loading");
      await mapLimit(runs, RESULTS_AT_ONCE, async (run) => {
        try {
          results.set(run.run_id, { result: await getRunResult(run.run_id, current.signal) });
        } catch (error) {
          if (error.name === "AbortError") throw error;
          results.set(run.run_id, { error });
        }
        if (!current.signal.aborted) scheduleRender();
      }, current.signal);
    } catch (error) {
      if (error.name === "AbortError" || current.signal.aborted) return;
      errorBox.replaceChildren(notice("error", `Could not load the runs: ${error.message}`));
      runs = [];
      tbody.replaceChildren();
    } finally {
      if (loadController === current) table.classList.remove("loading");
    }
  }

  renderPicked();
  load();
  return {
    dispose() {
      if (loadController) loadController.abort();
      if (frame) cancelAnimationFrame(frame);
    },
  };
}
