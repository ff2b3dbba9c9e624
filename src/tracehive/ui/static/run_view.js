// One experiment run: its summary and one row per datapoint of GET /v1/runs/{id}/result, with
// the datapoint's inputs, output and ground truth taken from its session (GET /v1/sessions/{id}:
// the session event holds the datapoint's inputs, the function's outputs and
// feedback.ground_truth; the event carrying the metrics and the stored datapoint fill the gaps),
// each metric's value, pass/fail, and a link to the session view.

import { getDatapoints, getRunResult, getSession, listRuns } from "./api.js";
import { el, fmtInt, fmtTime, notice } from "./dom.js";
import {
  compareHref, createPager, datasetHref, fmtMetric, isoMs, jsonCell, mapLimit, metricNames, pageOf,
  runDataset, sessionHref, statusBadge, verdictBadge, writeQuery,
} from "./exp_common.js";

const DEFAULT_LIMIT = 25;
const SESSIONS_AT_ONCE = 4;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const isEmpty = (value) => value === null || value === undefined
  || (typeof value === "object" && Object.keys(value).length === 0);
const firstFilled = (...values) => values.find((value) => !isEmpty(value));

/** The event of the session tree carrying the datapoint's metrics (the function's chain span). */
function metricEvent(root, eventNames) {
  const stack = [...(root.children || [])];
  let fallback = null;
  while (stack.length) {
    const node = stack.shift();
    if (node.metrics && Object.keys(node.metrics).length) {
      if (eventNames.has(node.event_name)) return node;
      fallback = fallback || node;
    }
    stack.push(...(node.children || []));
  }
  return fallback;
}

/** {inputs, output, groundTruth} of one datapoint from its session tree and stored datapoint. */
function contentOf(point, root, stored) {
  const event = root ? metricEvent(root, new Set(point.metrics.map((m) => m.event_name))) : null;
  const feedback = (node) => (node && node.feedback ? node.feedback.ground_truth : undefined);
  return {
    inputs: firstFilled(root && root.inputs, stored && stored.inputs, event && event.inputs),
    output: firstFilled(root && root.outputs, event && event.outputs),
    groundTruth: firstFilled(feedback(root), feedback(event), stored && stored.ground_truth),
  };
}

export function createRunView(container, route) {
  const runId = route.runId;
  const controller = new AbortController();
  const paging = pageOf(route.query, DEFAULT_LIMIT);
  let result = null;
  let metrics = [];
  let pageController = null;

  const head = el("div", { className: "run-head" }, el("p", { className: "muted", text: "Loading the run…" }));
  const summaryBox = el("div");
  const headRow = el("tr");
  const tbody = el("tbody");
  const table = el("table", { className: "grid datapoints-table" }, el("thead", {}, headRow), tbody);
  const pager = createPager({ sizes: [10, 25, 50, 100], noun: ["datapoint", "datapoints"], onChange: (next) => { Object.assign(paging, next); showPage(); } });
  const body = el("div", { hidden: true }, el("h2", { className: "section-heading", text: "Datapoints" }),
    el("div", { className: "table-wrap" }, table), pager.element);
  container.append(el("section", { className: "page run-page" }, head, summaryBox, body));

  function renderHead(run) {
    const created = isoMs(run.created_at);
    const stat = (label, value, className = "") => el("div", { className: `stat ${className}` },
      el("span", { className: "stat-label", text: label }), el("span", { className: "stat-value", text: value }));
    const dataset = runDataset(run);
    const compareSelect = el("select", { className: "input compare-with", attrs: { "aria-label": "Compare with another run" } },
      el("option", { value: "", text: "Compare with…" }));
    fillCompareChoices(compareSelect, run);
    compareSelect.addEventListener("change", () => {
      const option = compareSelect.selectedOptions[0];
      if (!option || !option.value) return;
      const otherIsNewer = (isoMs(option.dataset.created) ?? 0) > (created ?? 0);
      location.hash = otherIsNewer ? compareHref(option.value, runId) : compareHref(runId, option.value);
    });
    head.replaceChildren(
      el("div", { className: "session-title-row" },
        el("a", { href: "#/experiments", className: "back-link", text: "← Experiments" }),
        el("h1", { className: "run-title", text: run.name || run.run_id }),
        statusBadge(run.status),
        el("span", { className: "spacer" }), compareSelect),
      el("div", { className: "stats" },
        stat("Dataset", dataset || "—", "stat-dataset"),
        stat("Created", fmtTime(created)),
        stat("Datapoints", fmtInt(result.datapoints.length), "stat-datapoints"),
        stat("Passed", fmtInt(result.passed.length), "stat-passed"),
        stat("Failed", fmtInt(result.failed.length), "stat-failed"),
        stat("Run id", run.run_id, "stat-id")));
    if (run.dataset_id) {
      const value = head.querySelector(".stat-dataset .stat-value");
      value.replaceChildren(el("a", { href: datasetHref(run.dataset_id), text: dataset }));
    }
  }

  async function fillCompareChoices(select, run) {
    try {
      const reply = await listRuns({ limit: 100, sort_by: "created_at", sort_order: "desc" }, controller.signal);
      for (const other of reply.evaluations || []) {
        if (other.run_id === run.run_id) continue;
        select.append(el("option", { value: other.run_id, text: other.name || other.run_id, dataset: { created: other.created_at || "" } }));
      }
    } catch (error) {
      if (error.name !== "AbortError") select.title = `Could not list the runs: ${error.message}`;
    }
  }

  function renderSummary() {
    const details = result.metrics.details || [];
    const fn = result.metrics.aggregation_function || "average";
    if (!details.length) {
      summaryBox.replaceChildren(notice("info", "This run has no metric values (yet)."));
      return;
    }
    const range = (r) => (r ? [r.min !== null && r.min !== undefined ? `≥ ${fmtMetric(r.min)}` : "", r.max !== null && r.max !== undefined ? `≤ ${fmtMetric(r.max)}` : ""].filter(Boolean).join(" and ") : "—");
    summaryBox.replaceChildren(el("h2", { className: "section-heading", text: "Metrics" }),
      el("div", { className: "table-wrap" }, el("table", { className: "grid metrics-table" },
        el("thead", {}, el("tr", {}, ["Metric", "Event", fn[0].toUpperCase() + fn.slice(1), "Values", "Passing range", "Passed", "Failed"]
          .map((label, i) => el("th", { className: i >= 2 && i !== 4 ? "num" : "", text: label, attrs: { scope: "col" } })))),
        el("tbody", {}, details.map((d) => el("tr", { dataset: { metric: d.metric_name } },
          el("td", { className: "col-name", text: d.metric_name }),
          el("td", { className: "muted", text: `${d.event_name} (${d.event_type})` }),
          el("td", { className: "num col-aggregate", text: fmtMetric(d.aggregate) }),
          el("td", { className: "num", text: fmtInt(d.values.length) }),
          el("td", { text: range(d.passing_range) }),
          el("td", { className: "num", text: fmtInt(d.datapoints.passed.length) }),
          el("td", { className: "num", text: fmtInt(d.datapoints.failed.length) })))))));
  }

  function renderTableHead() {
    const th = (text, className = "") => el("th", { className, text, attrs: { scope: "col" } });
    headRow.replaceChildren(th("Datapoint", "col-id"), th("Inputs"), th("Output"), th("Ground truth"),
      ...metrics.map((name) => th(name, "num col-metric")), th("Result"), th("Session"));
  }

  function metricCell(point, name) {
    const value = point.metrics.find((m) => m.name === name);
    if (!value) return el("td", { className: "num col-metric muted", dataset: { metric: name }, text: "—" });
    const verdict = value.passed === true ? " metric-pass" : value.passed === false ? " metric-fail" : "";
    return el("td", { className: `num col-metric${verdict}`, dataset: { metric: name }, text: fmtMetric(value.value),
      title: value.passed === null ? "measured (no passing range)" : value.passed ? "passed" : "failed" });
  }

  function pointRow(point) {
    const waiting = () => el("td", { className: "json-cell muted", text: "…" });
    const row = el("tr", { className: point.passed ? "" : "has-failures", dataset: { datapointId: point.datapoint_id || "", sessionId: point.session_id } },
      el("td", { className: "col-id mono", text: point.datapoint_id || "—", title: point.datapoint_id || "no datapoint id" }),
      waiting(), waiting(), waiting(),
      metrics.map((name) => metricCell(point, name)),
      el("td", { className: "col-verdict" }, verdictBadge(point.passed),
        !point.passed && !point.metrics.some((m) => m.passed === false) ? el("span", { className: "muted small", text: " errored" }) : null),
      el("td", { className: "col-session" }, el("a", { href: sessionHref(point.session_id), text: "Open session", title: point.session_id })));
    return row;
  }

  function fillRow(row, content) {
    const cells = row.children;
    cells[1].replaceWith(jsonCell(content.inputs, "col-inputs"));
    cells[2].replaceWith(jsonCell(content.output, "col-output"));
    cells[3].replaceWith(jsonCell(content.groundTruth, "col-truth"));
  }

  async function showPage() {
    if (pageController) pageController.abort();
    const current = new AbortController();
    pageController = current;
    writeQuery(`/experiments/${encodeURIComponent(runId)}`, paging, { page: 1, limit: DEFAULT_LIMIT });
    const points = result.datapoints.slice((paging.page - 1) * paging.limit, paging.page * paging.limit);
    pager.render({ ...paging, total: result.datapoints.length });
    if (!points.length) {
      tbody.replaceChildren(el("tr", {}, el("td", { className: "empty-row", attrs: { colspan: 6 + metrics.length } }, "This run has no datapoints.")));
      return;
    }
    const rows = points.map(pointRow);
    tbody.replaceChildren(...rows);
    const storedIds = points.map((p) => p.datapoint_id).filter((id) => typeof id === "string" && UUID.test(id));
    const stored = new Map();
    const datapointsLoaded = storedIds.length
      ? getDatapoints(storedIds, current.signal).then((reply) => {
        for (const dp of reply.datapoints || []) stored.set(dp.id, dp);
      }).catch(() => {}) // inline (EXT-) datasets have no stored datapoints: the session suffices
      : Promise.resolve();
    const sessions = mapLimit(points, SESSIONS_AT_ONCE, (point) => getSession(point.session_id, current.signal), current.signal);
    const [loaded] = await Promise.all([sessions, datapointsLoaded]);
    if (current.signal.aborted) return;
    points.forEach((point, i) => {
      const root = loaded[i] && loaded[i].ok ? loaded[i].value : null;
      fillRow(rows[i], contentOf(point, root, stored.get(point.datapoint_id)));
      if (loaded[i] && !loaded[i].ok) rows[i].lastChild.title = `Could not load the session: ${loaded[i].error.message}`;
    });
  }

  async function load() {
    try {
      result = await getRunResult(runId, controller.signal);
      document.title = `${result.run_object.name || runId} · tracehive`;
      metrics = metricNames(result.metrics.details);
      renderHead(result.run_object);
      renderSummary();
      renderTableHead();
      body.hidden = false;
      await showPage();
    } catch (error) {
      if (error.name === "AbortError") return;
      head.replaceChildren(el("a", { href: "#/experiments", className: "back-link", text: "← Experiments" }),
        notice("error", error.status === 404 ? `Run ${runId} was not found in this project.` : `Could not load the run: ${error.message}`));
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
