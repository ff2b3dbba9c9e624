// Collapsible JSON: objects and arrays are <details> nodes whose children are built only when
// first opened, so a huge payload costs nothing until someone looks inside it.

import { el } from "./dom.js";

const LONG_STRING = 1500;

/** A view of ``value``; levels below ``openDepth`` start open. */
export function jsonView(value, { openDepth = 2 } = {}) {
  const root = el("div", { className: "json" });
  const entries = value !== null && typeof value === "object" ? Object.entries(value) : [];
  // A non-empty object or array shows its members directly: the panel's title already names it.
  if (entries.length) {
    for (const [key, child] of entries) root.append(node(Array.isArray(value) ? Number(key) : key, child, 0, openDepth));
  } else {
    root.append(node(null, value, 0, openDepth));
  }
  return root;
}

function node(key, value, depth, openDepth) {
  if (value !== null && typeof value === "object") return branch(key, value, depth, openDepth);
  return el("div", { className: "json-row" }, keyLabel(key), leaf(value));
}

function keyLabel(key) {
  if (key === null) return null;
  return el("span", { className: "json-key", text: typeof key === "number" ? `${key}` : key }, el("span", { className: "json-colon", text: ": " }));
}

function leaf(value) {
  if (value === null) return el("span", { className: "json-null", text: "null" });
  if (typeof value === "boolean") return el("span", { className: "json-bool", text: String(value) });
  if (typeof value === "number") return el("span", { className: "json-number", text: String(value) });
  if (typeof value === "string") return stringLeaf(value);
  return el("span", { text: String(value) });
}

function stringLeaf(text) {
  const span = el("span", { className: "json-string" });
  if (text.length <= LONG_STRING) {
    span.textContent = `"${text}"`;
    return span;
  }
  span.textContent = `"${text.slice(0, LONG_STRING)}…`;
  const more = el("button", { type: "button", className: "link-button", text: `show all ${text.length.toLocaleString("en-US")} characters` });
  more.addEventListener("click", () => {
    span.textContent = `"${text}"`;
    more.remove();
  });
  return el("span", {}, span, " ", more);
}

function summaryText(value) {
  if (Array.isArray(value)) return value.length === 1 ? "[1 item]" : `[${value.length} items]`;
  const size = Object.keys(value).length;
  return size === 1 ? "{1 key}" : `{${size} keys}`;
}

function branch(key, value, depth, openDepth) {
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  if (entries.length === 0) {
    return el("div", { className: "json-row" }, keyLabel(key), el("span", { className: "json-empty", text: Array.isArray(value) ? "[]" : "{}" }));
  }
  const details = el("details", { className: "json-branch" });
  const summary = el("summary", {}, keyLabel(key), el("span", { className: "json-size", text: summaryText(value) }));
  const body = el("div", { className: "json-children" });
  details.append(summary, body);
  let built = false;
  const build = () => {
    if (built) return;
    built = true;
    for (const [childKey, childValue] of entries) body.append(node(childKey, childValue, depth + 1, openDepth));
  };
  details.addEventListener("toggle", () => {
    if (details.open) build();
  });
  if (depth < openDepth) {
    build();
    details.open = true;
  }
  return details;
}
