// One session: the event tree and a waterfall side by side, and the selected event's details.
//
// Tree and waterfall are two cells of the same rows, so they always scroll together. The rows are
// virtualised: every row has the same height, the scroller holds a spacer as tall as all rows,
// and only the rows in view (plus a margin) exist in the DOM. A 10,000-event session therefore
// costs a few dozen row elements, whatever its size.

import { getEvent, getSession } from "./api.js";
import { cssToken, copyButton, el, fmtCostCell, fmtDuration, fmtInt, fmtTime, notice, typeBadge } from "./dom.js";
import { eventLink, renderEventDetail } from "./event_detail.js";
import { rowUsage } from "./model_usage.js";

export const ROW_HEIGHT = 28;
const OVERSCAN = 10;

function sessionPath(sessionId, eventId) {
  const base = `#/sessions/${encodeURIComponent(sessionId)}`;
  return eventId && eventId !== sessionId ? `${base}/events/${encodeURIComponent(eventId)}` : base;
}

/** Every node by id, with its parent id, in one pass (no recursion: trees can be deep). */
function indexTree(root) {
  const byId = new Map();
  const stack = [[root, null]];
  let errors = 0;
  let end = root.end_time;
  while (stack.length) {
    const [node, parentId] = stack.pop();
    byId.set(node.event_id, { node, parentId });
    if (node.error && node !== root) errors += 1;
    if (typeof node.end_time === "number" && node.end_time > end) end = node.end_time;
    const children = node.children || [];
    for (let i = children.length - 1; i >= 0; i -= 1) stack.push([children[i], node.event_id]);
  }
  return { byId, errors, end };
}

/** The rows in display order: depth-first, children of collapsed nodes left out. */
function visibleRows(root, collapsed) {
  const rows = [];
  const stack = [[root, 0]];
  while (stack.length) {
    const [node, depth] = stack.pop();
    rows.push({ node, depth });
    const children = node.children || [];
    if (children.length && !collapsed.has(node.event_id)) {
      for (let i = children.length - 1; i >= 0; i -= 1) stack.push([children[i], depth + 1]);
    }
  }
  return rows;
}

export function createSessionView(container, route) {
  const sessionId = route.sessionId;
  let disposed = false;
  const controller = new AbortController();

  let root = null;
  let index = null; // {byId, errors, end}
  let rows = [];
  let rowIndexById = new Map();
  const collapsed = new Set();
  let selectedId = null;
  let t0 = 0;
  let span = 1;
  let frame = 0;
  let rendered = [-1, -1];

  const head = el("div", { className: "session-head" }, el("p", { className: "muted", text: "Loading session…" }));
  const axis = el("div", { className: "wf-axis" });
  const spacer = el("div", { className: "trace-spacer" });
  const layer = el("div", { className: "trace-rows", attrs: { role: "tree", "aria-label": "Events of this session" } });
  spacer.append(layer);
  const scroller = el("div", { className: "trace-scroll", tabIndex: 0 }, spacer);
  const detail = el("aside", { className: "detail-pane", attrs: { "aria-label": "Event details" } });
  const tracePane = el("div", { className: "trace-pane" },
    el("div", { className: "trace-header" },
      el("div", { className: "tree-col-head" },
        el("span", { text: "Event" }),
        el("span", { className: "tree-actions" },
          el("button", { type: "button", className: "link-button", text: "Expand all", on: { click: () => { collapsed.clear(); relayout(); } } }),
          el("button", { type: "button", className: "link-button", text: "Collapse all", on: { click: collapseAll } }))),
      axis),
    scroller);
  const page = el("section", { className: "session-page" }, head, el("div", { className: "split" }, tracePane, detail));
  container.append(page);

  // Rows ---------------------------------------------------------------------------------------

  function rowElement(row, position) {
    const { node, depth } = row;
    const children = node.children || [];
    const isCollapsed = collapsed.has(node.event_id);
    const typeClass = `type-${cssToken(node.event_type)}`;
    const toggle = children.length
      ? el("button", {
        type: "button", className: "toggle", text: isCollapsed ? "▸" : "▾", tabIndex: -1,
        attrs: { "aria-label": `${isCollapsed ? "Expand" : "Collapse"} ${node.event_name || "event"}` },
        on: { click: (event) => { event.stopPropagation(); toggleNode(node.event_id); } },
      })
      : el("span", { className: "toggle-spacer" });
    const tree = el("div", { className: "tree-cell" }, toggle, typeBadge(node.event_type),
      el("span", { className: "event-name", text: node.event_name || "(unnamed)" }),
      node.error ? el("span", { className: "error-mark", text: "!", title: String(node.error).slice(0, 300) }) : null,
      isCollapsed ? el("span", { className: "child-count", text: fmtInt(children.length) }) : null,
      rowUsage(node), // model events: tokens and cost
      el("span", { className: "row-duration", text: fmtDuration(node.duration) }));
    tree.style.paddingLeft = `${6 + Math.min(depth, 40) * 14}px`;

    const start = typeof node.start_time === "number" ? node.start_time : t0;
    const duration = typeof node.duration === "number" && node.duration > 0 ? node.duration : 0;
    const bar = el("div", { className: `wf-bar ${typeClass}${node.error ? " wf-error" : ""}`, title: `${node.event_name} · starts +${fmtDuration(start - t0)} · ${fmtDuration(duration)}` });
    bar.style.left = `${Math.max(0, Math.min(100, ((start - t0) / span) * 100))}%`;
    bar.style.width = `${Math.max(0, Math.min(100, (duration / span) * 100))}%`;
    const waterfall = el("div", { className: "wf-cell" }, bar);

    const element = el("div", {
      className: `trace-row${node.event_id === selectedId ? " selected" : ""}${node.error ? " has-error" : ""}`,
      dataset: { eventId: node.event_id, row: String(position) },
      attrs: { role: "treeitem", "aria-level": depth + 1, "aria-selected": node.event_id === selectedId ? "true" : "false", "aria-expanded": children.length ? String(!isCollapsed) : null },
    }, tree, waterfall);
    element.addEventListener("click", () => select(node.event_id, { updateUrl: true }));
    return element;
  }

  function renderWindow(force = false) {
    frame = 0;
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(rows.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    if (!force && first === rendered[0] && last === rendered[1]) return;
    rendered = [first, last];
    layer.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const elements = [];
    for (let i = first; i < last; i += 1) elements.push(rowElement(rows[i], i));
    layer.replaceChildren(...elements);
  }

  function scheduleRender() {
    if (!frame) frame = requestAnimationFrame(() => renderWindow());
  }

  function relayout() {
    rows = visibleRows(root, collapsed);
    rowIndexById = new Map(rows.map((row, i) => [row.node.event_id, i]));
    spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    renderWindow(true);
  }

  function toggleNode(eventId) {
    if (collapsed.has(eventId)) collapsed.delete(eventId);
    else collapsed.add(eventId);
    relayout();
  }

  function collapseAll() {
    for (const { node } of index.byId.values()) {
      if (node !== root && node.children && node.children.length) collapsed.add(node.event_id);
    }
    relayout();
  }

  function scrollToRow(eventId) {
    const position = rowIndexById.get(eventId);
    if (position === undefined) return;
    const top = position * ROW_HEIGHT;
    const height = scroller.clientHeight || 600;
    if (top < scroller.scrollTop || top + ROW_HEIGHT > scroller.scrollTop + height) {
      scroller.scrollTop = Math.max(0, top - height / 3);
    }
    renderWindow(true);
  }

  // Selection ----------------------------------------------------------------------------------

  const nameOf = (eventId) => {
    const entry = index && index.byId.get(eventId);
    return entry ? entry.node.event_name || "(unnamed)" : null;
  };

  function select(eventId, { updateUrl = false, scroll = false } = {}) {
    const entry = index.byId.get(eventId);
    if (!entry) {
      showMissing(eventId);
      return;
    }
    selectedId = eventId;
    // Reveal it: expand every collapsed ancestor.
    let opened = false;
    for (let parent = entry.parentId; parent; parent = index.byId.get(parent).parentId) {
      if (collapsed.delete(parent)) opened = true;
    }
    if (opened) relayout();
    for (const element of layer.children) {
      const on = element.dataset.eventId === eventId;
      element.classList.toggle("selected", on);
      element.setAttribute("aria-selected", on ? "true" : "false");
    }
    if (scroll) scrollToRow(eventId);
    showDetail(entry.node);
    detail.scrollTop = 0;
    if (updateUrl) history.replaceState(null, "", sessionPath(sessionId, eventId));
  }

  function showDetail(node) {
    const { children, ...event } = node;
    detail.replaceChildren(renderEventDetail(event, { sessionId, nameOf, onSaved: (readBack) => annotated(node, readBack) }));
  }

  // An annotation was saved: the tree's copy of the event takes what the server read back, and
  // the panel (if the event is still selected) and its row are drawn again from it.
  function annotated(node, readBack) {
    const rollups = node === root ? node.metadata : null; // the tree's session totals are not stored on the event
    Object.assign(node, readBack, { children: node.children });
    if (rollups) node.metadata = { ...rollups, ...(readBack.metadata || {}) };
    renderWindow(true);
    if (selectedId !== node.event_id) return;
    const scrollTop = detail.scrollTop; // stay at the form
    showDetail(node);
    detail.scrollTop = scrollTop;
  }

  async function showMissing(eventId) {
    selectedId = null;
    detail.replaceChildren(el("p", { className: "muted", text: "Looking for the event…" }));
    try {
      const event = await getEvent(eventId, controller.signal);
      if (disposed) return;
      if (event.session_id !== sessionId) {
        location.replace(sessionPath(event.session_id, event.event_id));
        return;
      }
      const late = notice("info", "This event arrived after the session was loaded; refresh to place it in the tree.");
      const draw = (shown) => detail.replaceChildren(late, renderEventDetail(shown, { sessionId, nameOf, onSaved: draw }));
      draw(event);
    } catch (error) {
      if (error.name === "AbortError" || disposed) return;
      detail.replaceChildren(notice("error", `Event ${eventId} is not in this session (${error.message}).`));
    }
  }

  function moveSelection(step) {
    const position = rowIndexById.get(selectedId);
    const next = position === undefined ? 0 : Math.max(0, Math.min(rows.length - 1, position + step));
    if (rows[next]) select(rows[next].node.event_id, { updateUrl: true, scroll: true });
  }

  scroller.addEventListener("scroll", scheduleRender, { passive: true });
  scroller.addEventListener("keydown", (event) => {
    if (!root) return;
    if (event.key === "ArrowDown") { event.preventDefault(); moveSelection(1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); moveSelection(-1); }
    else if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && selectedId) {
      const node = index.byId.get(selectedId).node;
      if (node.children && node.children.length && (event.key === "ArrowLeft") !== collapsed.has(selectedId)) {
        event.preventDefault();
        toggleNode(selectedId);
      }
    }
  });
  const resize = new ResizeObserver(() => { if (root) scheduleRender(); });
  resize.observe(scroller);

  // Header and axis ----------------------------------------------------------------------------

  function renderHead() {
    const meta = root.metadata || {};
    const stat = (label, value, className = "") => el("div", { className: `stat ${className}` }, el("span", { className: "stat-label", text: label }), el("span", { className: "stat-value", text: value }));
    const numEvents = typeof meta.num_events === "number" ? meta.num_events : index.byId.size - 1;
    head.replaceChildren(
      el("div", { className: "session-title-row" },
        el("a", { href: "#/sessions", className: "back-link", text: "← Sessions" }),
        el("h1", { className: "session-title", text: root.event_name || "(unnamed session)" }),
        root.source ? el("span", { className: "badge", text: root.source }) : null,
        index.errors ? el("span", { className: "badge badge-error", text: index.errors === 1 ? "1 error" : `${fmtInt(index.errors)} errors` }) : null,
        meta.has_feedback ? el("span", { className: "badge badge-feedback", text: "feedback" }) : null,
        el("span", { className: "spacer" }),
        copyButton("Copy link", () => eventLink(sessionId, null)),
        el("button", { type: "button", className: "btn btn-small", text: "Refresh", on: { click: load } })),
      el("div", { className: "stats" },
        stat("Events", `${fmtInt(numEvents)} ${numEvents === 1 ? "event" : "events"}`, "stat-events"),
        stat("Started", fmtTime(root.start_time)),
        stat("Duration", fmtDuration(root.duration)),
        stat("Cost", fmtCostCell(meta.cost)), // the roll-up is 0 when no event had a cost: "—", not "$0"
        stat("Tokens", fmtInt(meta.total_tokens)),
        stat("Session id", sessionId, "stat-id")));
  }

  function renderAxis() {
    const ticks = [0, 0.25, 0.5, 0.75, 1];
    axis.replaceChildren(...ticks.map((fraction) => {
      const tick = el("span", { className: "wf-tick", text: fmtDuration(span * fraction) });
      tick.style.left = `${fraction * 100}%`;
      return tick;
    }));
  }

  // Loading ------------------------------------------------------------------------------------

  async function load() {
    try {
      const tree = await getSession(sessionId, controller.signal);
      if (disposed) return;
      root = tree;
      index = indexTree(root);
      t0 = typeof root.start_time === "number" ? root.start_time : 0;
      span = Math.max(1, (index.end || t0) - t0);
      renderHead();
      renderAxis();
      relayout();
      const wanted = selectedId || route.eventId || sessionId;
      select(index.byId.has(wanted) ? wanted : sessionId, { scroll: Boolean(route.eventId) });
      if (route.eventId && !index.byId.has(route.eventId)) showMissing(route.eventId);
    } catch (error) {
      if (error.name === "AbortError" || disposed) return;
      head.replaceChildren(el("a", { href: "#/sessions", className: "back-link", text: "← Sessions" }),
        notice("error", error.status === 404 ? `Session ${sessionId} was not found in this project.` : `Could not load the session: ${error.message}`));
      tracePane.hidden = true;
      detail.hidden = true;
    }
  }

  load();

  return {
    // Moving between events of the same session (back button, a link in the details) keeps the
    // tree as it is and only changes the selection.
    update(next) {
      if (next.sessionId !== sessionId || !root) return false;
      route.eventId = next.eventId;
      select(next.eventId || sessionId, { scroll: true });
      return true;
    },
    dispose() {
      disposed = true;
      controller.abort();
      resize.disconnect();
      if (frame) cancelAnimationFrame(frame);
    },
  };
}
