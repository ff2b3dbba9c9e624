// Two runs side by side: per metric the old and new aggregates, their difference and how many
// datapoints improved, degraded or stayed the same (GET /v1/runs/{new}/compare-with/{old}); per
// datapoint both runs' values with the changed cells marked (GET /v1/runs/compare/events). Higher
// is better, as the server counts it.

import { compareRunEvents, compareRuns } from "./api.js";
import { el, fmtInt, notice } from "./dom.js";
import {
  compareHref, createPager, fmtMetric, fmtPercent, fmtSigned, jsonCell, numeric, pageOf, runHref,
  sessionHref, writeQuery,
} from "./exp_common.js";

const DEFAULT_LIMIT = 25;

/** "improved" / "degraded" / "same" / "" for one datapoint of one metric. */
function changeOf(metric, datapointId, oldValue, newValue) {
  if (metric) {
    if (metric.improved.includes(datapointId)) return "improved";
    if (metric.degraded.includes(datapointId)) return "degraded";
    if (metric.same.includes(datapointId)) return "same";
  }
  const before = numeric(oldValue);
  const after = numeric(newValue);
  if (before === null || after === null) return "";
  return after > before ? "improved" : after < before ? "degraded" : "same";
}

function signClass(value) {
  if (typeof value !== "number" || value === 0) return "";
  return value > 0 ? " improved" : " degraded";
}

export function createCompareView(container, route) {
  const { newRunId, oldRunId } = route;
  const controller = new AbortController();
  const paging = pageOf(route.query, DEFAULT_LIMIT);
  let comparison = null;
  let pageController = null;

  const head = el("div", { className: "run-head" }, el("p", { className: "muted", text: "Comparing the runs…" }));
  const metricsBox = el("div");
  const headRows = [el("tr"), el("tr")];
  const tbody = el("tbody");
  const table = el("table", { className: "grid compare-table" }, el("thead", {}, headRows), tbody);
  const errorBox = el("div");
  const pager = createPager({ sizes: [10, 25, 50, 100], noun: ["datapoint", "datapoints"], onChange: (next) => { Object.assign(paging, next); loadEvents(); } });
  const body = el("div", { hidden: true }, el("h2", { className: "section-heading", text: "Datapoints in both runs" }),
    errorBox, el("div", { className: "table-wrap" }, table), pager.element);
  container.append(el("section", { className: "page compare-page" }, head, metricsBox, body));

  const runName = (run) => (run && (run.name || run.run_id)) || "";

  function renderHead() {
    const { old_run: oldRun, new_run: newRun } = comparison;
    const side = (label, run, className) => el("div", { className: `stat compare-side ${className}` },
      el("span", { className: "stat-label", text: label }),
      el("a", { className: "stat-value", href: runHref(run.run_id), text: runName(run), title: run.run_id }));
    head.replaceChildren(
      el("div", { className: "session-title-row" },
        el("a", { href: "#/experiments", className: "back-link", text: "← Experiments" }),
        el("h1", { className: "run-title", text: "Compare runs" }),
        el("span", { className: "spacer" }),
        el("a", { className: "btn btn-small", href: compareHref(oldRunId, newRunId), text: "Swap old and new" })),
      el("div", { className: "stats" },
        side("Old (baseline)", oldRun, "compare-old"),
        side("New", newRun, "compare-new"),
        el("div", { className: "stat" }, el("span", { className: "stat-label", text: "Datapoints in both" }),
          el("span", { className: "stat-value", text: fmtInt(comparison.commonDatapoints.length) }))));
  }

  function renderMetrics() {
    const metrics = comparison.metrics;
    if (!metrics.length) {
      metricsBox.replaceChildren(notice("info", "Neither run has metric values to compare."));
      return;
    }
    const th = (text, className = "") => el("th", { className, text, attrs: { scope: "col" } });
    metricsBox.replaceChildren(el("h2", { className: "section-heading", text: "Metrics" }),
      el("div", { className: "table-wrap" }, el("table", { className: "grid compare-metrics" },
        el("thead", {}, el("tr", {}, th("Metric"), th("Old", "num"), th("New", "num"), th("Difference", "num"), th("Change", "num"),
          th("Improved", "num"), th("Degraded", "num"), th("Same", "num"), th("Compared", "num"))),
        el("tbody", {}, metrics.map((m) => el("tr", { dataset: { metric: m.metric_name } },
          el("td", { className: "col-name", text: m.metric_name }),
          el("td", { className: "num col-old", text: fmtMetric(m.old_aggregate) }),
          el("td", { className: "num col-new", text: fmtMetric(m.new_aggregate) }),
          el("td", { className: `num col-difference${signClass(m.difference)}`, text: fmtSigned(m.difference) }),
          el("td", { className: `num col-change${signClass(m.percentage_change)}`, text: fmtPercent(m.percentage_change) || "—" }),
          el("td", { className: `num col-improved${m.improved_count ? " improved" : ""}`, text: fmtInt(m.improved_count) }),
          el("td", { className: `num col-degraded${m.degraded_count ? " degraded" : ""}`, text: fmtInt(m.degraded_count) }),
          el("td", { className: "num col-same", text: fmtInt(m.same_count) }),
          el("td", { className: "num", text: fmtInt(m.found_count) })))))));
  }

  function renderTableHead() {
    const names = comparison.metrics.map((m) => m.metric_name);
    const th = (text, className = "", attrs = {}) => el("th", { className, text, attrs: { scope: "col", ...attrs } });
    headRows[0].replaceChildren(th("Datapoint", "col-id", { rowspan: 2 }), th("Inputs", "", { rowspan: 2 }),
      ...names.map((name) => th(name, "metric-group", { colspan: 2, scope: "colgroup" })),
      th("Output", "metric-group", { colspan: 2, scope: "colgroup" }), th("Sessions", "", { rowspan: 2 }));
    const pair = (className) => [th("old", className), th("new", className)];
    headRows[1].replaceChildren(...names.flatMap(() => pair("num sub-head")), ...pair("sub-head"));
  }

  function datapointRow({ datapoint_id: dp, event_1: newEvent, event_2: oldEvent }) {
    const oldMetrics = (oldEvent && oldEvent.metrics) || {};
    const newMetrics = (newEvent && newEvent.metrics) || {};
    const cells = comparison.metrics.flatMap((metric) => {
      const name = metric.metric_name;
      const change = changeOf(metric, dp, oldMetrics[name], newMetrics[name]);
      const title = change ? `${name}: ${change}` : "";
      return [
        el("td", { className: `num metric-old${change && change !== "same" ? " changed" : ""}`, dataset: { metric: name }, text: fmtMetric(oldMetrics[name]) }),
        el("td", { className: `num metric-new${change ? ` ${change}` : ""}`, dataset: { metric: name }, text: fmtMetric(newMetrics[name]), title }),
      ];
    });
    return el("tr", { dataset: { datapointId: dp } },
      el("td", { className: "col-id mono", text: dp, title: dp }),
      jsonCell(newEvent && newEvent.inputs, "col-inputs"),
      cells,
      jsonCell(oldEvent && oldEvent.outputs, "col-output-old"),
      jsonCell(newEvent && newEvent.outputs, "col-output-new"),
      el("td", { className: "col-sessions" },
        oldEvent ? el("a", { href: sessionHref(oldEvent.session_id), text: "old", title: oldEvent.session_id }) : null,
        " · ",
        newEvent ? el("a", { href: sessionHref(newEvent.session_id), text: "new", title: newEvent.session_id }) : null));
  }

  async function loadEvents() {
    if (pageController) pageController.abort();
    const current = new AbortController();
    pageController = current;
    writeQuery(`/experiments/${encodeURIComponent(newRunId)}/compare/${encodeURIComponent(oldRunId)}`, paging, { page: 1, limit: DEFAULT_LIMIT });
    table.classList.add("loading");
    try {
      const reply = await compareRunEvents(newRunId, oldRunId, paging, current.signal);
      if (current.signal.aborted) return;
      errorBox.replaceChildren();
      const rows = reply.events || [];
      const columns = 5 + 2 * comparison.metrics.length;
      tbody.replaceChildren(...(rows.length ? rows.map(datapointRow)
        : [el("tr", {}, el("td", { className: "empty-row", attrs: { colspan: columns } }, "The two runs have no datapoint in common."))]));
      pager.render({ ...paging, total: reply.totalEvents || 0 });
    } catch (error) {
      if (error.name === "AbortError" || current.signal.aborted) return;
      errorBox.replaceChildren(notice("error", `Could not load the datapoints: ${error.message}`));
    } finally {
      if (pageController === current) table.classList.remove("loading");
    }
  }

  async function load() {
    try {
      comparison = await compareRuns(newRunId, oldRunId, controller.signal);
      document.title = `${runName(comparison.new_run)} vs ${runName(comparison.old_run)} · tracehive`;
      renderHead();
      renderMetrics();
      renderTableHead();
      body.hidden = false;
      await loadEvents();
    } catch (error) {
      if (error.name === "AbortError") return;
      head.replaceChildren(el("a", { href: "#/experiments", className: "back-link", text: "← Experiments" }),
        notice("error", error.status === 404 ? `Could not compare: ${error.message}` : `Could not compare the runs: ${error.message}`));
    }
  }

  load();
  return {
    dispose() {
      controller.abort();
      if (pageController) pageController.abort();
    },
  };
}
