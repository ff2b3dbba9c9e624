// The event detail's "Annotate" section: feedback (rating, thumbs up/down, comment) and custom
// metrics (name + number or true/false) for the selected event, or for the session when the
// session itself is selected (its event id is the session id).
//
// Saving is PUT /v1/events/{id} with the key the UI signed in with; the server merges feedback and
// metrics key by key. The route answers only {success}, so the event is then read back and the
// panel is drawn again from what the server stored, not from what the form holds.

import { getEvent, updateEvent } from "./api.js";
import { el, notice } from "./dom.js";

let keepOpen = false; // stays open from event to event while someone reviews a session
const flashes = new Map(); // event id → "Feedback saved.", shown once by the re-rendered panel
let formCount = 0; // unique ids for label/for pairs

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const present = (value) => value !== undefined && value !== null;

/** Why the server refused, in words (it reports its reason as the contract's message). */
export function refusalMessage(error) {
  if (!error || typeof error.status !== "number") return `Could not save: ${error}`;
  if (error.status === 0) return error.message;
  if (error.status === 401) return `The server no longer accepts this API key (${error.message}).`;
  if (error.status === 403) return `This API key may not change events (HTTP 403: ${error.message}).`;
  if (error.status === 404) return `The server has no such event (HTTP 404: ${error.message}); it may have been deleted.`;
  return `The server refused the change (HTTP ${error.status}): ${error.message}`;
}

function summaryNote(feedback, metrics) {
  const parts = [];
  if (typeof feedback.rating === "number") parts.push(`rating ${feedback.rating}`);
  if (feedback.liked === true) parts.push("thumbs up");
  if (feedback.liked === false) parts.push("thumbs down");
  if (typeof feedback.comment === "string" && feedback.comment) parts.push("comment");
  const count = Object.values(metrics).filter(present).length;
  if (count) parts.push(count === 1 ? "1 metric" : `${count} metrics`);
  return parts.length ? parts.join(" · ") : "none yet";
}

/** "0.8" → 0.8, "true"/"false" → booleans, anything else → undefined. */
export function parseMetricValue(text) {
  const trimmed = String(text).trim();
  if (/^(true|false)$/i.test(trimmed)) return trimmed.toLowerCase() === "true";
  if (trimmed === "") return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

function field(id, label, control) {
  control.id = id;
  return el("div", { className: "annotate-field" }, el("label", { htmlFor: id, text: label }), control);
}

/** The section for ``event``; ``onSaved(readBack)`` gets the event as the server now stores it. */
export function annotateSection(event, { onSaved }) {
  const eventId = event.event_id;
  const feedback = isObject(event.feedback) ? event.feedback : {};
  const metrics = isObject(event.metrics) ? event.metrics : {};
  const ids = `annotate-${(formCount += 1)}`;
  const subject = event.event_type === "session" ? "session" : "event";

  const status = el("div", { className: "annotate-status", attrs: { role: "status" } });
  const problem = el("div", { className: "annotate-problem" });
  const say = (text) => { status.textContent = text; problem.replaceChildren(); };
  const fail = (text) => { status.textContent = ""; problem.replaceChildren(notice("error", text)); };

  // Feedback ---------------------------------------------------------------------------------
  const rating = el("input", { className: "input annotate-rating", type: "number", step: "any", placeholder: "1–5", value: typeof feedback.rating === "number" ? String(feedback.rating) : "" });
  const comment = el("textarea", { className: "input annotate-comment", rows: 3, placeholder: "What was good or wrong?", value: typeof feedback.comment === "string" ? feedback.comment : "" });
  let liked = typeof feedback.liked === "boolean" ? feedback.liked : null;
  const thumb = (value, label, symbol) => el("button", {
    type: "button", className: "btn btn-small thumb", text: symbol,
    attrs: { "aria-label": label, "aria-pressed": String(liked === value), title: label },
    on: { click: () => { liked = liked === value ? null : value; paintThumbs(); } }, // a second click clears it
  });
  // Words rather than emoji: a system without an emoji font would show empty boxes.
  const up = thumb(true, "Thumbs up", "▲ Up");
  const down = thumb(false, "Thumbs down", "▼ Down");
  const paintThumbs = () => {
    up.setAttribute("aria-pressed", String(liked === true));
    down.setAttribute("aria-pressed", String(liked === false));
  };
  const saveFeedback = el("button", { type: "submit", className: "btn btn-small btn-save", text: "Save feedback" });
  const feedbackForm = el("form", { className: "annotate-form", attrs: { "aria-label": `Feedback on this ${subject}` } },
    el("fieldset", {},
      el("legend", { text: "Feedback" }),
      field(`${ids}-rating`, "Rating", rating),
      el("div", { className: "annotate-field" },
        el("span", { className: "annotate-label", text: "Thumbs", attrs: { "aria-hidden": "true" } }),
        el("div", { className: "thumbs", attrs: { role: "group", "aria-label": "Thumbs" } }, up, down)),
      field(`${ids}-comment`, "Comment", comment),
      el("div", { className: "annotate-actions" }, saveFeedback)));

  // Metric -----------------------------------------------------------------------------------
  const known = Object.keys(metrics);
  const names = el("datalist", { id: `${ids}-names` }, known.map((name) => el("option", { value: name })));
  const metricName = el("input", { className: "input", type: "text", placeholder: "e.g. accuracy", autocomplete: "off", attrs: { list: `${ids}-names` } });
  const metricValue = el("input", { className: "input", type: "text", placeholder: "0.8, true or false", autocomplete: "off" });
  metricName.addEventListener("change", () => {
    // Naming a metric the event already has shows its value, ready to edit.
    const current = metrics[metricName.value.trim()];
    if ((typeof current === "number" || typeof current === "boolean") && !metricValue.value) metricValue.value = String(current);
  });
  const saveMetric = el("button", { type: "submit", className: "btn btn-small btn-save", text: "Save metric" });
  const metricForm = el("form", { className: "annotate-form", attrs: { "aria-label": `Custom metric of this ${subject}` } },
    el("fieldset", {},
      el("legend", { text: "Custom metric" }),
      field(`${ids}-metric-name`, "Metric name", metricName), names,
      field(`${ids}-metric-value`, "Metric value", metricValue),
      el("div", { className: "annotate-actions" }, saveMetric)));

  // Saving -----------------------------------------------------------------------------------
  const buttons = [saveFeedback, saveMetric];
  async function save(fields, what) {
    buttons.forEach((button) => (button.disabled = true));
    say("Saving…");
    try {
      await updateEvent(eventId, fields);
    } catch (error) {
      buttons.forEach((button) => (button.disabled = false));
      fail(refusalMessage(error));
      return;
    }
    let readBack;
    try {
      readBack = await getEvent(eventId);
    } catch (error) {
      buttons.forEach((button) => (button.disabled = false));
      fail(`Saved, but reading the ${subject} back failed: ${error.message}. Refresh to see it.`);
      return;
    }
    flashes.set(eventId, `${what} saved.`);
    keepOpen = true;
    onSaved(readBack);
  }

  feedbackForm.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const patch = {};
    // Only what changed is sent: the merge leaves the other keys (ground_truth...) as they are.
    if (rating.validity.badInput) return fail("The rating must be a number.");
    const ratingText = rating.value.trim();
    if (ratingText === "") {
      if (present(feedback.rating)) patch.rating = null;
    } else if (Number(ratingText) !== feedback.rating) patch.rating = Number(ratingText);
    if (liked !== (typeof feedback.liked === "boolean" ? feedback.liked : null)) patch.liked = liked;
    const text = comment.value.trim();
    if (text === "") {
      if (present(feedback.comment)) patch.comment = null;
    } else if (text !== feedback.comment) patch.comment = text;
    if (!Object.keys(patch).length) return say("Nothing changed.");
    return save({ feedback: patch }, "Feedback");
  });

  metricForm.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const name = metricName.value.trim();
    if (!name) return fail("Name the metric first.");
    const value = parseMetricValue(metricValue.value);
    if (value === undefined) return fail("A metric value is a number, true or false.");
    return save({ metrics: { [name]: value } }, `Metric ${name}`);
  });

  const flash = flashes.get(eventId);
  flashes.delete(eventId);
  if (flash) say(flash);

  const details = el("details", { className: "section section-annotate", open: keepOpen || Boolean(flash) },
    el("summary", {}, el("span", { className: "section-title", text: "Annotate" }), el("span", { className: "section-note", text: summaryNote(feedback, metrics) })),
    el("div", { className: "section-body annotate-body" }, feedbackForm, metricForm, status, problem));
  details.addEventListener("toggle", () => { keepOpen = details.open; });
  return details;
}
