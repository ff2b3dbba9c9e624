// The selected event: what it is, its error, its conversation (model events), and every JSON
// field as a collapsible view.

import { el, copyButton, fmtDuration, fmtTime, notice, typeBadge } from "./dom.js";
import { jsonView } from "./json_view.js";
import { conversationOf, renderConversation } from "./conversation.js";

const SECTIONS = [
  ["inputs", "Inputs"], ["outputs", "Outputs"], ["config", "Config"], ["metadata", "Metadata"],
  ["metrics", "Metrics"], ["feedback", "Feedback"], ["user_properties", "User properties"],
];

export function eventLink(sessionId, eventId) {
  const base = `${location.origin}${location.pathname}`;
  if (!eventId || eventId === sessionId) return `${base}#/sessions/${encodeURIComponent(sessionId)}`;
  return `${base}#/sessions/${encodeURIComponent(sessionId)}/events/${encodeURIComponent(eventId)}`;
}

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

function fact(label, value) {
  return el("div", { className: "fact" }, el("dt", { text: label }), el("dd", {}, value));
}

/** The detail panel for ``event`` (a tree node: its ``children`` are not shown). */
export function renderEventDetail(event, { sessionId, nameOf }) {
  const parentName = event.parent_id && nameOf(event.parent_id);
  const facts = el("dl", { className: "facts" },
    fact("Type", typeBadge(event.event_type)),
    fact("Started", el("span", { text: fmtTime(event.start_time) })),
    fact("Duration", el("span", { text: fmtDuration(event.duration) })),
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

  const conversation = conversationOf(event);
  const parts = [
    el("div", { className: "detail-head" },
      el("h2", { className: "detail-title", text: event.event_name || "(unnamed event)" }),
      copyButton("Copy link", () => eventLink(sessionId, event.event_id))),
    facts,
    ...notes,
    event.error ? el("div", { className: "error-box", attrs: { role: "note" } },
      el("div", { className: "error-title", text: "Error" }), el("pre", { className: "error-text", text: String(event.error) })) : null,
    conversation ? section("Conversation", renderConversation(conversation), { extraClass: "section-conversation", note: `${conversation.length} messages` }) : null,
    ...SECTIONS.map(([key, title]) => {
      const value = event[key];
      const empty = isEmpty(value);
      return section(title, empty ? el("span", { className: "muted", text: "empty" }) : jsonView(value, { openDepth: 2 }), {
        open: !empty && !(conversation && key === "inputs"), extraClass: `section-${key}`, note: sizeLabel(value),
      });
    }),
  ];
  return el("div", { className: "event-detail", dataset: { eventId: event.event_id } }, parts);
}
