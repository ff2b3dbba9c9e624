// Search over all the project's events (POST /v1/events/search), newest first, with the same
// filter bar and date range as the sessions list. A row opens the event inside its session.

import { searchEvents } from "./api.js";
import { el, fmtAgo, fmtCost, fmtDuration, fmtInt, fmtTime, notice, typeBadge } from "./dom.js";
import { searchDateRange, toApiFilter } from "./filter_bar.js";
import { mountListPage } from "./list_page.js";
import { readListState } from "./url_state.js";

const DEFAULTS = { sort: "start_time", order: "desc", limit: 50, range: "all" };
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
    el("thead", {}, el("tr", {}, ["Started", "Type", "Name", "Session", "Duration", "Tokens", "Cost", "Error"].map((label, i) =>
      el("th", { className: i >= 4 && i <= 6 ? "num" : "", text: label, attrs: { scope: "col" } })))),
    tbody);
  const { renderPager } = mountListPage(container, {
    title: "Events", status: summary, table, errorBox, state, path: "/events", defaults: DEFAULTS,
    pageSizes: PAGE_SIZES, noun: null, load,
  });

  function renderRows(events) {
    if (!events.length) {
      tbody.replaceChildren(el("tr", {}, el("td", { className: "empty-row", attrs: { colspan: 8 } },
        state.filters.length || state.range.kind !== "all" ? "No events match these filters." : "No events yet.")));
      return;
    }
    tbody.replaceChildren(...events.map((event) => {
      const href = eventHref(event);
      const row = el("tr", { className: `clickable${event.error ? " has-error" : ""}`, dataset: { eventId: event.event_id } },
        el("td", { className: "col-time", text: fmtTime(event.start_time), title: fmtAgo(event.start_time) }),
        el("td", {}, typeBadge(event.event_type)),
        el("td", { className: "col-name" }, el("a", { href, text: event.event_name || "(unnamed)" })),
        el("td", { className: "col-id" }, el("a", { href: `#/sessions/${encodeURIComponent(event.session_id)}`, text: String(event.session_id).slice(0, 8), title: event.session_id })),
        el("td", { className: "num", text: fmtDuration(event.duration) }),
        el("td", { className: "num", text: fmtInt(metadataNumber(event, "total_tokens")) }),
        el("td", { className: "num", text: fmtCost(metadataNumber(event, "cost")) }),
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
    if (state.filters.length) body.filters = state.filters.map(toApiFilter);
    const dateRange = searchDateRange(state.range);
    if (dateRange) body.dateRange = dateRange;
    table.classList.add("loading");
    try {
      const reply = await searchEvents(body, controller.signal);
      if (disposed || controller.signal.aborted) return;
      errorBox.replaceChildren();
      const total = reply.count ?? reply.totalEvents ?? 0;
      summary.textContent = `${fmtInt(total)} ${total === 1 ? "event" : "events"}`;
      renderRows(reply.events || []);
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
