// The sessions list: sortable columns, date range, filter bar, pagination, and polling so that
// new sessions show up without a reload.

import { searchSessions } from "./api.js";
import { el, fmtAgo, fmtCostCell, fmtDuration, fmtInt, fmtTime, notice, timeStamp } from "./dom.js";
import { firstTracePanel, noMatchPanel, projectName } from "./empty_state.js";
import { searchDateRange, toApiFilter } from "./filter_bar.js";
import { mountListPage } from "./list_page.js";
import { readListState } from "./url_state.js";

const POLL_MS = 3000;
const DEFAULTS = { sort: "start_time", order: "desc", limit: 25, range: "all" };
const PAGE_SIZES = [10, 25, 50, 100];

// [label, sort key (null = not sortable), class, cell(session)]
const COLUMNS = [
  ["Name", "event_name", "col-name", nameCell],
  ["Source", null, "col-source", (s) => el("td", { className: "col-source", text: s.source || "—" })],
  ["Started", "start_time", "col-time", (s) => el("td", { className: "col-time", title: fmtAgo(s.start_time) }, timeStamp(s.start_time))],
  ["Duration", "duration", "num", (s) => el("td", { className: "num", text: fmtDuration(s.duration) })],
  ["Events", "num_events", "num", (s) => el("td", { className: "num col-events", text: fmtInt(s.num_events) })],
  ["Cost", "cost", "num", (s) => el("td", { className: "num col-cost", text: fmtCostCell(s.cost) })],
  ["Tokens", "total_tokens", "num col-tokens", (s) => el("td", { className: "num col-tokens", text: fmtInt(s.total_tokens) })],
  ["Error", null, "col-flag", (s) => el("td", { className: "col-flag" },
    s.has_error ? el("span", { className: "badge badge-error", text: "error", title: "At least one event of this session failed" }) : null)],
  ["Feedback", null, "col-flag", (s) => el("td", { className: "col-flag" },
    s.has_feedback ? el("span", { className: "badge badge-feedback", text: "feedback", title: "This session has feedback" }) : null)],
];

function sessionHref(session) {
  return `#/sessions/${encodeURIComponent(session.session_id)}`;
}

function nameCell(session) {
  return el("td", { className: "col-name" },
    el("a", { href: sessionHref(session), text: session.event_name || "(unnamed session)" }));
}

export function createSessionsView(container, route) {
  const state = readListState(route.query, DEFAULTS);
  let lastReply = "";
  let seen = null; // session ids already shown, to highlight the ones that arrive
  let inflight = null;
  let disposed = false;

  const live = el("span", { className: "live", attrs: { role: "status" } });
  const errorBox = el("div");
  const headRow = el("tr");
  const tbody = el("tbody");
  const table = el("table", { className: "grid sessions-table" }, el("thead", {}, headRow), tbody);
  const { reload, renderPager, narrowed, clearFilters, showEmpty } = mountListPage(container, {
    title: "Sessions", status: live, table, errorBox, state, path: "/sessions", defaults: DEFAULTS,
    pageSizes: PAGE_SIZES, noun: ["session", "sessions"], load,
  });

  function renderHead() {
    headRow.replaceChildren(...COLUMNS.map(([label, key, className]) => {
      if (!key) return el("th", { className, text: label, attrs: { scope: "col" } });
      const sorted = state.sort === key;
      const th = el("th", { className: `${className} sortable`, attrs: { scope: "col", "aria-sort": sorted ? (state.order === "asc" ? "ascending" : "descending") : "none" } },
        el("button", { type: "button", className: "sort-button", title: `Sort by ${label.toLowerCase()}`, attrs: { "aria-label": `Sort by ${label.toLowerCase()}` } },
          label, el("span", { className: "sort-arrow", text: sorted ? (state.order === "asc" ? " ▲" : " ▼") : "" })));
      th.firstChild.addEventListener("click", () => {
        if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
        else {
          state.sort = key;
          state.order = key === "event_name" ? "asc" : "desc";
        }
        renderHead();
        reload();
      });
      return th;
    }));
  }

  // No rows: say why. A filtered list that is empty may still be an empty project, so ask once
  // more without the filters before offering to clear them.
  async function renderEmpty(signal) {
    let empty = !narrowed() && state.page === 1;
    if (!empty) {
      const all = await searchSessions({ limit: 1 }, signal);
      empty = !(all.sessions || []).length;
    }
    const panel = empty
      ? firstTracePanel({ noun: "sessions", project: await projectName() })
      : noMatchPanel({ noun: "sessions", onClear: clearFilters });
    if (disposed || signal.aborted) return;
    tbody.replaceChildren();
    showEmpty(panel);
  }

  function renderRows(sessions, highlightNew) {
    showEmpty(null);
    tbody.replaceChildren(...sessions.map((session) => {
      const row = el("tr", { className: "clickable", dataset: { sessionId: session.session_id } },
        COLUMNS.map(([, , , cell]) => cell(session)));
      if (session.has_error) row.classList.add("has-error");
      if (highlightNew && seen && !seen.has(session.session_id)) row.classList.add("row-new");
      row.addEventListener("click", (event) => {
        if (event.target.closest("a")) return; // the link navigates by itself
        location.hash = sessionHref(session);
      });
      return row;
    }));
    seen = new Set([...(seen || []), ...sessions.map((s) => s.session_id)]);
  }

  async function load({ quiet = false } = {}) {
    if (quiet && inflight) return; // a poll never overtakes a real request
    if (inflight) inflight.abort();
    const controller = new AbortController();
    inflight = controller;
    const body = { sort_by: state.sort, sort_order: state.order, limit: state.limit, page: state.page };
    if (state.filters.length) body.filters = state.filters.map(toApiFilter);
    const dateRange = searchDateRange(state.range);
    if (dateRange) body.dateRange = dateRange;
    if (!quiet) table.classList.add("loading");
    try {
      const reply = await searchSessions(body, controller.signal);
      if (disposed || controller.signal.aborted) return;
      errorBox.replaceChildren();
      const text = JSON.stringify(reply);
      if (text !== lastReply) {
        if ((reply.sessions || []).length) renderRows(reply.sessions, quiet);
        else await renderEmpty(controller.signal);
        if (disposed || controller.signal.aborted) return;
        lastReply = text; // only once shown: an interrupted render is done again by the next poll
        renderPager(reply.totalSessions ?? (reply.sessions || []).length);
      }
      live.textContent = `Live · updated ${fmtTime(Date.now()).slice(11)}`;
    } catch (error) {
      if (error.name === "AbortError" || disposed) return;
      errorBox.replaceChildren(notice("error", `Could not load sessions: ${error.message}`));
      if (!quiet) tbody.replaceChildren();
    } finally {
      if (inflight === controller) inflight = null;
      table.classList.remove("loading");
    }
  }

  renderHead();
  load();
  const timer = setInterval(() => {
    if (!document.hidden) load({ quiet: true });
  }, POLL_MS);

  return {
    dispose() {
      disposed = true;
      clearInterval(timer);
      if (inflight) inflight.abort();
    },
  };
}
