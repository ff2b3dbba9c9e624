// The selected event: what it is (and, for model calls, what it used), its error, its
// conversation (model events), the annotation form, and every JSON field as a collapsible view
// with a raw-JSON toggle and a copy button.

import { el, copyButton, fmtDuration, fmtTime, notice, typeBadge } from "./dom.js";
import { jsonView } from "./json_view.js";
import { conversationOf, renderConversation } from "./conversation.js";
import { isModelEvent, usageHeader } from "./model_usage.js";
import { annotateSection } from "./annotate.js";

const SECTIONS = [
  ["inputs", "Inputs"], ["outputs", "Outputs"], ["config", "Config"], ["metadata", "Metadata"],
  ["metrics", "Metrics"], ["feedback", "Feedback"], ["user_properties", "User properties"],
];

// Fields the session tree adds to events (they are not part of the event as stored).
const TREE_FIELDS = ["children", "orphan", "flattened"];

// Sections shown as raw JSON: remembered while the page is open, so the choice holds from event
// to event.
const rawSections = new Set();

export function eventLink(sessionId, eventId) {
  const base = `${location.origin}${location.pathname}`;
  if (!eventId || eventId === sessionId) return `${base}#/sessions/${encodeURIComponent(sessionId)}`;
  return `${base}#/sessions/${encodeURIComponent(sessionId)}/events/${encodeURIComponent(eventId)}`;
}

/** The event as read, without the tree's own fields: what "Copy JSON" copies. */
export function eventAsRead(event) {
  const copy = { ...event };
  for (const name of TREE_FIELDS) delete copy[name];
  return copy;
}

const toJson = (value) => JSON.stringify(value === undefined ? null : value, null, 2);

function isEmpty(value) {
  if (value === null || value === undefined) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === "object") return Object.keys(value).length === 0;
  return false;
}

function sizeLabel(value) {
  if (isEmpty(value)) return "empty";
  if (Array.isArray(value)) return `${value.length} items`;
  if (typeof value === "object") {
    const n = Object.keys(value).length;
    return n === 1 ? "1 key" : `${n} keys`;
  }
  return "";
}

function section(title, body, { open = true, extraClass = "", note = "" } = {}) {
  const details = el("details", { className: `section ${extraClass}`, open },
    el("summary", {}, el("span", { className: "section-title", text: title }), note ? el("span", { className: "section-note", text: note }) : null),
    el("div", { className: "section-body" }, body));
  return details;
}

/** A JSON field's body: tools (raw toggle, copy) over the collapsible view or the raw text. */
function jsonBody(key, title, value) {
  if (isEmpty(value)) return el("span", { className: "muted", text: "empty" });
  const view = el("div", { className: "section-json" });
  const raw = el("button", {
    type: "button", className: "btn btn-small raw-toggle", text: "Raw JSON",
    attrs: { "aria-label": `${title}: raw JSON`, "aria-pressed": String(rawSections.has(key)) },
  });
  const draw = () => {
    const on = rawSections.has(key);
    raw.setAttribute("aria-pressed", String(on));
    // The raw text is built only when asked for: a big payload costs nothing until then.
    view.replaceChildren(on ? el("pre", { className: "raw-json", text: toJson(value) }) : jsonView(value, { openDepth: 2 }));
  };
  raw.addEventListener("click", () => {
    if (rawSections.has(key)) rawSections.delete(key);
    else rawSections.add(key);
    draw();
  });
  const copy = copyButton("Copy", () => toJson(value));
  copy.setAttribute("aria-label", `Copy ${title} JSON`); // the name stays while it says "Copied"
  draw();
  return [el("div", { className: "section-tools" }, raw, copy), view];
}

function fact(label, value) {
  return el("div", { className: "fact" }, el("dt", { text: label }), el("dd", {}, value));
}

/**
 * The detail panel for ``event`` (a tree node: its ``children`` are not shown). ``onSaved``
 * gets the event as read back after an annotation; without it the panel redraws itself.
 */
export function renderEventDetail(event, { sessionId, nameOf, onSaved } = {}) {
  const parentName = event.parent_id && nameOf && nameOf(event.parent_id);
  const model = isModelEvent(event);
  const facts = el("dl", { className: "facts" },
    fact("Type", typeBadge(event.event_type)),
    fact("Started", el("span", { text: fmtTime(event.start_time) })),
    model ? null : fact("Duration", el("span", { text: fmtDuration(event.duration) })), // model events: "Latency" above
    event.source ? fact("Source", el("span", { text: event.source })) : null,
    fact("Event id", el("code", { text: event.event_id })),
    event.parent_id && event.parent_id !== sessionId
      ? fact("Parent", parentName
        ? el("a", { href: `#/sessions/${encodeURIComponent(sessionId)}/events/${encodeURIComponent(event.parent_id)}`, text: parentName })
        : el("code", { text: event.parent_id }))
      : null);

  const notes = [];
  if (event.orphan) notes.push(notice("info", "Its parent is not in this session (not arrived yet, or deleted), so it is shown under the session."));
  if (event.flattened) notes.push(notice("info", "Nested too deep to show at its real depth: listed under an ancestor."));

  let panel = null;
  const saved = onSaved || ((readBack) => {
    panel.replaceWith(renderEventDetail({ ...readBack, orphan: event.orphan, flattened: event.flattened }, { sessionId, nameOf }));
  });

  const copyJson = copyButton("Copy JSON", () => toJson(eventAsRead(event)));
  copyJson.setAttribute("aria-label", "Copy event JSON"); // a name that stays while it says "Copied"
  const conversation = conversationOf(event);
  const parts = [
    el("div", { className: "detail-head" },
      el("h2", { className: "detail-title", text: event.event_name || "(unnamed event)" }),
      el("div", { className: "detail-actions" }, copyJson, copyButton("Copy link", () => eventLink(sessionId, event.event_id)))),
    model ? usageHeader(event) : null,
    facts,
    ...notes,
    event.error ? el("div", { className: "error-box", attrs: { role: "note" } },
      el("div", { className: "error-title", text: "Error" }), el("pre", { className: "error-text", text: String(event.error) })) : null,
    annotateSection(event, { onSaved: saved }),
    conversation ? section("Conversation", renderConversation(conversation), { extraClass: "section-conversation", note: `${conversation.length} messages` }) : null,
    ...SECTIONS.map(([key, title]) => {
      const value = event[key];
      const empty = isEmpty(value);
      return section(title, jsonBody(key, title, value), {
        open: !empty && !(conversation && key === "inputs"), extraClass: `section-${key}`, note: sizeLabel(value),
      });
    }),
  ];
  panel = el("div", { className: "event-detail", dataset: { eventId: event.event_id } }, parts);
  return panel;
}
