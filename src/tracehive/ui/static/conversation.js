// Model events' chat messages as a conversation: ``inputs.chat_history`` (a list of {role,
// content}), then the answer from ``outputs`` (``{role, content}``, ``outputs.content``,
// ``outputs.messages`` or ``outputs.choices``, the shapes the SDKs and span mapping store).
// Message text is drawn as Markdown (markdown.js: safe by construction); the "Raw" toggle shows
// the text exactly as stored.

import { el } from "./dom.js";
import { jsonView } from "./json_view.js";
import { renderMarkdown } from "./markdown.js";

// Raw or Markdown, remembered while the page is open: whoever prefers the raw text keeps it from
// event to event.
let showRaw = false;

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function message(raw, defaultRole, isOutput) {
  if (typeof raw === "string") return { role: defaultRole, content: raw, extra: null, isOutput };
  if (!isObject(raw)) return null;
  const inner = isObject(raw.message) ? raw.message : raw; // choices: {index, message: {...}}
  const { role, content, ...rest } = inner;
  const extra = {};
  for (const key of ["tool_calls", "function_call", "tool_call_id", "name"]) {
    if (rest[key] !== undefined && rest[key] !== null) extra[key] = rest[key];
  }
  if (content === undefined && !Object.keys(extra).length) return null;
  return {
    role: typeof role === "string" && role ? role : defaultRole,
    content,
    extra: Object.keys(extra).length ? extra : null,
    isOutput,
  };
}

function outputMessages(outputs) {
  if (typeof outputs === "string") return [message(outputs, "assistant", true)];
  if (!isObject(outputs)) return [];
  if (Array.isArray(outputs.messages)) return outputs.messages.map((m) => message(m, "assistant", true));
  if (Array.isArray(outputs.choices)) return outputs.choices.map((m) => message(m, "assistant", true));
  if ("content" in outputs || "role" in outputs || "tool_calls" in outputs) return [message(outputs, "assistant", true)];
  return [];
}

/** The event's conversation, or null when it has no chat history. */
export function conversationOf(event) {
  const history = event && event.inputs && event.inputs.chat_history;
  if (!Array.isArray(history) || history.length === 0) return null;
  const messages = history.map((m) => message(m, "user", false));
  messages.push(...outputMessages(event.outputs));
  const kept = messages.filter(Boolean);
  return kept.length ? kept : null;
}

/** A text part: its Markdown, or the text itself when Raw is on (``texts`` collects it for the toggle). */
function textNode(source, texts) {
  const holder = el("div", { className: "message-text" });
  texts.push({ holder, source });
  drawText(holder, source);
  return holder;
}

function drawText(holder, source) {
  holder.classList.toggle("message-raw", showRaw);
  holder.replaceChildren(showRaw ? source : renderMarkdown(source));
}

function contentNode(content, texts) {
  if (content === null || content === undefined) return null;
  if (typeof content === "string") return textNode(content, texts);
  if (Array.isArray(content)) {
    // Multi-part content: text parts as text, anything else (images, audio) as JSON.
    return el("div", {}, content.map((part) => {
      if (typeof part === "string") return textNode(part, texts);
      if (isObject(part) && typeof part.text === "string") return textNode(part.text, texts);
      if (isObject(part) && part.type === "text" && typeof part.content === "string") return textNode(part.content, texts);
      return jsonView(part, { openDepth: 1 });
    }));
  }
  if (typeof content === "object") return jsonView(content, { openDepth: 2 });
  return textNode(String(content), texts);
}

export function renderConversation(messages) {
  const texts = [];
  const list = messages.map((m) => el("div", { className: `message role-${String(m.role).replace(/[^a-z_-]/gi, "_")}${m.isOutput ? " message-output" : ""}` },
    el("div", { className: "message-role" },
      el("span", { text: m.role }),
      m.isOutput ? el("span", { className: "message-tag", text: "output" }) : null),
    contentNode(m.content, texts),
    m.extra ? el("div", { className: "message-extra" }, jsonView(m.extra, { openDepth: 1 })) : null));
  const raw = el("button", {
    type: "button", className: "btn btn-small raw-toggle", text: "Raw",
    title: "Show the messages' text exactly as stored, not as Markdown",
    attrs: { "aria-pressed": String(showRaw) },
  });
  raw.addEventListener("click", () => {
    showRaw = !showRaw;
    raw.setAttribute("aria-pressed", String(showRaw));
    for (const { holder, source } of texts) drawText(holder, source);
  });
  return el("div", { className: "conversation-wrap" },
    texts.length ? el("div", { className: "conversation-tools" }, raw) : null,
    el("div", { className: "conversation", attrs: { "aria-label": "Conversation" } }, list));
}
