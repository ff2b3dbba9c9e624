// Datasets (GET /v1/datasets) and, for the selected one, its datapoints in dataset order
// (GET /v1/datapoints?datapoint_ids[]=..., one page of ids at a time): inputs, ground truth,
// history and metadata.

import { getDatapoints, listDatasets } from "./api.js";
import { el, fmtAgo, fmtInt, fmtTime, notice, setChildren } from "./dom.js";
import { createPager, datasetHref, isoMs, jsonCell, pageOf, writeQuery } from "./exp_common.js";

const DEFAULT_LIMIT = 25;

export function createDatasetsView(container, route) {
  const controller = new AbortController();
  let datasets = null;
  let selectedId = route.datasetId || null;
  let paging = pageOf(route.query, DEFAULT_LIMIT);
  let pageController = null;

  const summary = el("span", { className: "muted", attrs: { role: "status" } });
  const errorBox = el("div");
  const listBody = el("tbody");
  const listTable = el("table", { className: "grid datasets-table" },
    el("thead", {}, el("tr", {}, ["Name", "Description", "Datapoints", "Created"].map((label, i) =>
      el("th", { className: i === 2 ? "num" : "", text: label, attrs: { scope: "col" } })))),
    listBody);
  const detail = el("div", { className: "dataset-detail" });
  const pager = createPager({ sizes: [10, 25, 50, 100], noun: ["datapoint", "datapoints"], onChange: (next) => { paging = next; showDatapoints(); } });
  container.append(el("section", { className: "page" },
    el("div", { className: "page-head" }, el("h1", { text: "Datasets" }), summary),
    errorBox,
    el("div", { className: "table-wrap" }, listTable),
    detail));

  function renderList() {
    summary.textContent = `${fmtInt(datasets.length)} ${datasets.length === 1 ? "dataset" : "datasets"}`;
    if (!datasets.length) {
      listBody.replaceChildren(el("tr", {}, el("td", { className: "empty-row", attrs: { colspan: 4 } },
        "No datasets yet. Create one with the HoneyHive SDK (client.datasets) or POST /v1/datasets.")));
      return;
    }
    listBody.replaceChildren(...datasets.map((dataset) => {
      const created = isoMs(dataset.created_at);
      const row = el("tr", { className: `clickable${dataset.id === selectedId ? " selected" : ""}`, dataset: { datasetId: dataset.id } },
        el("td", { className: "col-name" }, el("a", { href: datasetHref(dataset.id), text: dataset.name || dataset.id, title: dataset.id })),
        el("td", { className: "col-description", text: dataset.description || "" }),
        el("td", { className: "num col-count", text: fmtInt((dataset.datapoints || []).length) }),
        el("td", { className: "col-time", text: fmtTime(created), title: fmtAgo(created) }));
      row.addEventListener("click", (event) => {
        if (!event.target.closest("a")) location.hash = datasetHref(dataset.id);
      });
      return row;
    }));
  }

  function markSelected() {
    for (const row of listBody.querySelectorAll("tr[data-dataset-id]")) {
      row.classList.toggle("selected", row.dataset.datasetId === selectedId);
    }
  }

  async function showDatapoints() {
    if (pageController) pageController.abort();
    markSelected();
    if (!selectedId) {
      setChildren(detail, datasets.length ? el("p", { className: "muted pick-hint", text: "Pick a dataset to see its datapoints." }) : null);
      return;
    }
    const dataset = datasets.find((d) => d.id === selectedId);
    if (!dataset) {
      detail.replaceChildren(notice("error", `Dataset ${selectedId} was not found in this project.`));
      return;
    }
    const current = new AbortController();
    pageController = current;
    writeQuery(`/datasets/${encodeURIComponent(selectedId)}`, paging, { page: 1, limit: DEFAULT_LIMIT });
    const ids = (dataset.datapoints || []).slice((paging.page - 1) * paging.limit, paging.page * paging.limit);
    const tbody = el("tbody");
    const table = el("table", { className: "grid dataset-datapoints" },
      el("thead", {}, el("tr", {}, ["Datapoint", "Inputs", "Ground truth", "History", "Metadata", "Created"].map((label) =>
        el("th", { text: label, attrs: { scope: "col" } })))),
      tbody);
    pager.render({ ...paging, total: (dataset.datapoints || []).length });
    setChildren(detail,
      el("div", { className: "page-head dataset-head" }, el("h2", { text: dataset.name || dataset.id }),
        el("span", { className: "muted mono", text: dataset.id })),
      dataset.description ? el("p", { className: "muted", text: dataset.description }) : null,
      el("div", { className: "table-wrap" }, table), pager.element);
    if (!ids.length) {
      tbody.append(el("tr", {}, el("td", { className: "empty-row", attrs: { colspan: 6 } }, "This dataset has no datapoints.")));
      return;
    }
    table.classList.add("loading");
    try {
      const reply = await getDatapoints(ids, current.signal);
      if (current.signal.aborted) return;
      const byId = new Map((reply.datapoints || []).map((dp) => [dp.id, dp]));
      tbody.replaceChildren(...ids.map((id) => {
        const dp = byId.get(id);
        if (!dp) return el("tr", { dataset: { datapointId: id } }, el("td", { className: "col-id mono", text: id }),
          el("td", { className: "muted", attrs: { colspan: 5 }, text: "(missing: the datapoint was deleted)" }));
        const created = isoMs(dp.created_at);
        return el("tr", { dataset: { datapointId: id } },
          el("td", { className: "col-id mono", text: id, title: id }),
          jsonCell(dp.inputs, "col-inputs"), jsonCell(dp.ground_truth, "col-truth"),
          jsonCell(dp.history && dp.history.length ? dp.history : null, "col-history"), jsonCell(dp.metadata, "col-metadata"),
          el("td", { className: "col-time", text: fmtTime(created), title: fmtAgo(created) }));
      }));
    } catch (error) {
      if (error.name === "AbortError" || current.signal.aborted) return;
      tbody.replaceChildren(el("tr", {}, el("td", { attrs: { colspan: 6 } }, notice("error", `Could not load the datapoints: ${error.message}`))));
    } finally {
      table.classList.remove("loading");
    }
  }

  async function load() {
    try {
      const reply = await listDatasets(controller.signal);
      datasets = reply.datasets || [];
      errorBox.replaceChildren();
      renderList();
      await showDatapoints();
    } catch (error) {
      if (error.name === "AbortError") return;
      errorBox.replaceChildren(notice("error", `Could not load the datasets: ${error.message}`));
    }
  }

  load();
  return {
    // Picking another dataset keeps the list and only changes the datapoints shown.
    update(next) {
      if (!datasets) return false;
      selectedId = next.datasetId || null;
      paging = pageOf(next.query, DEFAULT_LIMIT);
      showDatapoints();
      return true;
    },
    dispose() {
      controller.abort();
      if (pageController) pageController.abort();
    },
  };
}
