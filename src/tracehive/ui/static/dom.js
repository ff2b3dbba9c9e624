// Small DOM helpers. Every piece of text goes in through textContent (never innerHTML), so data
// from traces is always shown as text, whatever it contains.

/**
 * el("div", {className: "x", text: "hi", title, attrs: {role: "row"}, dataset: {id}, on: {click}}, ...children)
 * Children may be nodes, strings (added as text), arrays of those, or null/undefined/false (skipped).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  applyProps(node, props);
  append(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** The same for SVG elements; ``attrs`` are set as attributes (x, y, fill...). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

function applyProps(node, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (name === "className") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else if (name === "attrs") {
      for (const [attr, attrValue] of Object.entries(value)) {
        if (attrValue !== undefined && attrValue !== null && attrValue !== false) node.setAttribute(attr, String(attrValue));
      }
    } else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else node[name] = value; // plain properties: title, href, type, value, disabled, hidden...
  }
}

/** Replace ``node``'s children (same rules as el(): null/false skipped, strings as text). */
export function setChildren(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Formatting -----------------------------------------------------------------------------------

const INT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function fmtInt(value) {
  return typeof value === "number" && Number.isFinite(value) ? INT.format(value) : "—";
}

/** Milliseconds as "850 ms", "1.24 s", "2m 05s", "1h 02m". */
export function fmtDuration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
  const abs = Math.abs(ms);
  if (ms === 0) return "0 ms";
  if (abs < 1) return `${ms.toFixed(2)} ms`;
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(abs < 10_000 ? 2 : 1)} s`;
  const totalSeconds = Math.round(ms / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (hours) return `${hours}h ${String(minutes).padStart(2, "0")}m`;
  return `${minutes}m ${String(seconds).padStart(2, "0")}s`;
}

/** Dollars with enough digits for LLM prices (fractions of a cent). */
export function fmtCost(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  if (value === 0) return "$0";
  if (Math.abs(value) >= 1) return `$${value.toFixed(2)}`;
  return `$${Number(value.toPrecision(3))}`;
}

/**
 * A cost in a table cell: "—" when there is none. The server sums metadata.cost and answers 0 when
 * no event carried one, so 0 there means "not known" rather than "free"; "$0" would mislead.
 * (fmtCost itself still says "$0": chart axes and totals need a real zero.)
 */
export function fmtCostCell(value) {
  return value === 0 ? "—" : fmtCost(value);
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** Unix ms as local "YYYY-MM-DD HH:MM:SS" (sortable, unambiguous). */
export function fmtTime(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * fmtTime's text as two unbreakable halves (date, clock): a narrow table cell can put the clock
 * under the date without breaking the date at its dashes.
 */
export function timeStamp(ms) {
  const text = fmtTime(ms);
  const cut = text.indexOf(" ");
  if (cut < 0) return el("span", { className: "stamp", text });
  return el("span", { className: "stamp" }, el("span", { text: text.slice(0, cut) }), " ", el("span", { text: text.slice(cut + 1) }));
}

/** "3 min ago", for titles next to absolute times. */
export function fmtAgo(ms, now = Date.now()) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "";
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/** A badge for an event type, coloured by CSS class ``type-<event_type>``. */
export function typeBadge(eventType) {
  const type = String(eventType || "event");
  return el("span", { className: `badge type-badge type-${cssToken(type)}`, text: type });
}

/** A string safe to use in a class name (event types are free text in legacy data). */
export function cssToken(text) {
  return String(text).toLowerCase().replace(/[^a-z0-9_-]/g, "_").slice(0, 40);
}

/** Copy text to the clipboard; resolves to whether it worked (clipboard needs a secure origin). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** A button that copies ``text()`` and says so for a moment. */
export function copyButton(label, text) {
  const button = el("button", { type: "button", className: "btn btn-small", text: label });
  button.addEventListener("click", async () => {
    const ok = await copyText(text());
    button.textContent = ok ? "Copied" : "Copy failed: select the address bar";
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

/** A message box; ``kind`` is "error", "info" or "empty". */
export function notice(kind, text) {
  return el("div", { className: `notice notice-${kind}`, text, attrs: { role: kind === "error" ? "alert" : "status" } });
}
