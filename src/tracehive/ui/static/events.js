// Search over all the project's events (POST /v1/events/search), newest first, with the same
// filter bar and date range as the sessions list. A row opens the event inside its session.
// Session rows (event_type "session") are hidden unless "Show session rows" is ticked: an OTLP
// trace's root span and its session row would otherwise show the same call twice.

import { searchEvents } from "./api.js";
import { el, fmtAgo, fmtCostCell, fmtDuration, fmtInt, notice, timeStamp, typeBadge } from "./dom.js";
import { firstTracePanel, noMatchPanel, projectName } from "./empty_state.js";
import { searchDateRange, toApiFilter } from "./filter_bar.js";
import { mountListPage } from "./list_page.js";
import { readListState } from "./url_state.js";

const DEFAULTS = { sort: "start_time", order: "desc", limit: 50, range: "all", flags: ["sessions"] };
const NOT_SESSIONS = { field: "event_type", operator: "is not", value: "session" };
// [label, class]; the classes let the narrow layout drop the low-value columns.
const HEADINGS = [["Started", "col-time"], ["Type", "col-type"], ["Name", "col-name"], ["Session", "col-session"],
  ["Duration", "num"], ["Tokens", "num col-tokens"], ["Cost", "num col-cost"], ["Error", "col-error"]];
const PAGE_SIZES = [25, 50, 100, 200];

function eventHref(event) {
  const session = encodeURIComponent(event.session_id);
  if (event.event_id === event.session_id) return `#/sessions/${session}`;
  return `#/sessions/${session}/events/${encodeURIComponent(event.event_id)}`;
}

function metadataNumber(event, key) {
  const value = event.metadata && event.metadata[key];
  return typeof value === "number" ? value : undefined;
}

export function createEventsView(container, route) {
  const state = readListState(route.query, DEFAULTS);
  let inflight = null;
  let disposed = false;

  const summary = el("span", { className: "muted", attrs: { role: "status" } });
  const errorBox = el("div");
  const tbody = el("tbody");
  const table = el("table", { className: "grid events-table" },
    el("thead", {}, el("tr", {}, HEADINGS.map(([label, className]) => el("th", { className, text: label, attrs: { scope: "col" } })))),
    tbody);
  const sessionsBox = el("input", { type: "checkbox", id: "events-sessions", checked: state.flags.sessions });
  const sessionsToggle = el("label", { className: "check session-rows", htmlFor: "events-sessions", title: "Rows of event_type session: one per session, beside its events" },
    sessionsBox, "Show session rows");
  const { reload, renderPager, narrowed, clearFilters, showEmpty } = mountListPage(container, {
    title: "Events", status: summary, table, errorBox, state, path: "/events", defaults: DEFAULTS,
    pageSizes: PAGE_SIZES, noun: null, load, controls: [sessionsToggle],
  });
  sessionsBox.addEventListener("change", () => {
    state.flags.sessions = sessionsBox.checked;
    reload();
  });

  // No rows: say why. Ask once more with no filter at all; if the project has rows, they are
  // filtered away (by the user, or only session rows exist and those are hidden).
  async function renderEmpty(signal) {
    let panel;
    const all = narrowed() || state.page > 1 || !state.flags.sessions
      ? (await searchEvents({ limit: 1 }, signal)).count ?? 0
      : 0;
    if (!all) panel = firstTracePanel({ noun: "events", project: await projectName() });
    else if (narrowed() || state.page > 1) panel = noMatchPanel({ noun: "events", onClear: clearFilters });
    else {
      panel = el("section", { className: "empty-state no-match", attrs: { role: "status" } },
        el("p", { text: "There are only session rows so far, and they are hidden." }),
        el("button", { type: "button", className: "btn", text: "Show session rows", on: { click: () => sessionsBox.click() } }));
    }
    if (disposed || signal.aborted) return;
    tbody.replaceChildren();
    showEmpty(panel);
  }

  function renderRows(events) {
    showEmpty(null);
    tbody.replaceChildren(...events.map((event) => {
      const href = eventHref(event);
      const row = el("tr", { className: `clickable${event.error ? " has-error" : ""}`, dataset: { eventId: event.event_id } },
        el("td", { className: "col-time", title: fmtAgo(event.start_time) }, timeStamp(event.start_time)),
        el("td", { className: "col-type" }, typeBadge(event.event_type)),
        el("td", { className: "col-name" }, el("a", { href, text: event.event_name || "(unnamed)" })),
        el("td", { className: "col-id col-session" }, el("a", { href: `#/sessions/${encodeURIComponent(event.session_id)}`, text: String(event.session_id).slice(0, 8), title: event.session_id })),
        el("td", { className: "num", text: fmtDuration(event.duration) }),
        el("td", { className: "num col-tokens", text: fmtInt(metadataNumber(event, "total_tokens")) }),
        el("td", { className: "num col-cost", text: fmtCostCell(metadataNumber(event, "cost")) }),
        el("td", { className: "col-error" }, event.error ? el("span", { className: "badge badge-error", text: "error", title: String(event.error).slice(0, 300) }) : null));
      row.addEventListener("click", (e) => {
        if (!e.target.closest("a")) location.hash = href;
      });
      return row;
    }));
  }

  async function load() {
    if (inflight) inflight.abort();
    const controller = new AbortController();
    inflight = controller;
    const body = { limit: state.limit, page: state.page };
    const filters = state.filters.map(toApiFilter);
    if (!state.flags.sessions) filters.push(NOT_SESSIONS);
    if (filters.length) body.filters = filters;
    const dateRange = searchDateRange(state.range);
    if (dateRange) body.dateRange = dateRange;
    table.classList.add("loading");
    try {
      const reply = await searchEvents(body, controller.signal);
      if (disposed || controller.signal.aborted) return;
      errorBox.replaceChildren();
      const total = reply.count ?? reply.totalEvents ?? 0;
      summary.textContent = `${fmtInt(total)} ${total === 1 ? "event" : "events"}`;
      if ((reply.events || []).length) renderRows(reply.events);
      else await renderEmpty(controller.signal);
      renderPager(total);
    } catch (error) {
      if (error.name === "AbortError" || disposed) return;
      errorBox.replaceChildren(notice("error", `Could not search events: ${error.message}`));
      tbody.replaceChildren();
      summary.textContent = "";
    } finally {
      if (inflight === controller) inflight = null;
      table.classList.remove("loading");
    }
  }

  load();
  return {
    dispose() {
      disposed = true;
      if (inflight) inflight.abort();
    },
  };
}
