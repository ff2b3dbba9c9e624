// Model events' chat messages as a conversation: ``inputs.chat_history`` (a list of {role,
// content}), then the answer from ``outputs`` (``{role, content}``, ``outputs.content``,
// ``outputs.messages`` or ``outputs.choices``, the shapes the SDKs and span mapping store).

import { el } from "./dom.js";
import { jsonView } from "./json_view.js";

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

function contentNode(content) {
  if (content === null || content === undefined) return null;
  if (typeof content === "string") return el("div", { className: "message-text", text: content });
  if (Array.isArray(content)) {
    // Multi-part content: text parts as text, anything else (images, audio) as JSON.
    return el("div", {}, content.map((part) => {
      if (typeof part === "string") return el("div", { className: "message-text", text: part });
      if (isObject(part) && typeof part.text === "string") return el("div", { className: "message-text", text: part.text });
      if (isObject(part) && part.type === "text" && typeof part.content === "string") return el("div", { className: "message-text", text: part.content });
      return jsonView(part, { openDepth: 1 });
    }));
  }
  if (typeof content === "object") return jsonView(content, { openDepth: 2 });
  return el("div", { className: "message-text", text: String(content) });
}

export function renderConversation(messages) {
  return el("div", { className: "conversation", attrs: { "aria-label": "Conversation" } },
    messages.map((m) => el("div", { className: `message role-${String(m.role).replace(/[^a-z_-]/gi, "_")}${m.isOutput ? " message-output" : ""}` },
      el("div", { className: "message-role" },
        el("span", { text: m.role }),
        m.isOutput ? el("span", { className: "message-tag", text: "output" }) : null),
      contentNode(m.content),
      m.extra ? el("div", { className: "message-extra" }, jsonView(m.extra, { openDepth: 1 })) : null)));
}
