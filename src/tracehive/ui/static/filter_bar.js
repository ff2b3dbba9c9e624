// The filter bar: filters in the API's own language ({field, operator, value}, ANDed), shown as
// removable chips, added with a field box that suggests the field paths seen in the project
// (GET /v1/events/schema), an operator list and a value box. Plus the date-range picker.

import { el, setChildren } from "./dom.js";
import { eventSchema } from "./api.js";

export const OPERATORS = [
  "is", "is not", "contains", "not contains", "greater than", "less than", "after", "before", "exists", "not exists",
];
const VALUELESS = new Set(["exists", "not exists"]);

// Always offered, whatever the schema sample saw: the event columns.
const COLUMNS = [
  "event_name", "event_type", "source", "error", "duration", "start_time", "end_time",
  "session_id", "event_id", "parent_id",
];

let schemaFields = null; // Promise<Map<name, Set<event_type>>>, fetched once per page load

function fieldSuggestions() {
  if (!schemaFields) {
    schemaFields = eventSchema()
      .then((reply) => {
        const fields = new Map(COLUMNS.map((name) => [name, new Set()]));
        for (const field of reply.fields || []) {
          if (!fields.has(field.name)) fields.set(field.name, new Set());
          if (field.event_type) fields.get(field.name).add(field.event_type);
        }
        return fields;
      })
      .catch(() => {
        schemaFields = null; // try again next time; columns still work
        return new Map(COLUMNS.map((name) => [name, new Set()]));
      });
  }
  return schemaFields;
}

/** Forget the cached schema (after signing in as another project). */
export function resetSchemaCache() {
  schemaFields = null;
}

export function describeFilter(filter) {
  return VALUELESS.has(filter.operator) ? `${filter.field} ${filter.operator}` : `${filter.field} ${filter.operator} ${filter.value}`;
}

/** A filter as the API takes it: no value for exists / not exists. */
export function toApiFilter(filter) {
  const out = { field: filter.field, operator: filter.operator };
  if (!VALUELESS.has(filter.operator)) out.value = filter.value;
  return out;
}

/**
 * createFilterBar({filters, onChange}) → element. ``onChange(filters)`` gets the new list whenever
 * a filter is added or removed.
 */
export function createFilterBar({ filters = [], onChange }) {
  let current = filters.slice();
  const chips = el("div", { className: "filter-chips", attrs: { "aria-label": "Active filters" } });
  const fieldInput = el("input", {
    type: "text", className: "input filter-field", placeholder: "field, e.g. event_name",
    attrs: { "aria-label": "Filter field", autocomplete: "off", spellcheck: "false" },
  });
  const suggestions = el("ul", { className: "suggestions", hidden: true, attrs: { role: "listbox", "aria-label": "Field suggestions" } });
  const operatorSelect = el("select", { className: "input filter-operator", attrs: { "aria-label": "Filter operator" } },
    OPERATORS.map((op) => el("option", { value: op, text: op })));
  const valueInput = el("input", {
    type: "text", className: "input filter-value", placeholder: "value",
    attrs: { "aria-label": "Filter value", spellcheck: "false" },
  });
  const addButton = el("button", { type: "button", className: "btn", text: "Add filter" });
  const message = el("span", { className: "filter-message", attrs: { role: "status" } });

  function renderChips() {
    setChildren(chips,
      current.map((filter, index) =>
        el("span", { className: "chip" },
          el("span", { className: "chip-text", text: describeFilter(filter) }),
          el("button", {
            type: "button", className: "chip-remove", text: "×", title: "Remove this filter",
            attrs: { "aria-label": `Remove filter ${describeFilter(filter)}` },
            on: { click: () => { current.splice(index, 1); renderChips(); onChange(current.slice()); } },
          }))),
      current.length > 1
        ? el("button", { type: "button", className: "link-button", text: "Clear all",
            on: { click: () => { current = []; renderChips(); onChange([]); } } })
        : null,
    );
  }

  function add() {
    const field = fieldInput.value.trim();
    const operator = operatorSelect.value;
    const value = valueInput.value.trim();
    if (!field) {
      message.textContent = "Choose a field first.";
      fieldInput.focus();
      return;
    }
    if (!VALUELESS.has(operator) && value === "") {
      message.textContent = `'${operator}' needs a value.`;
      valueInput.focus();
      return;
    }
    message.textContent = "";
    current.push({ field, operator, value: VALUELESS.has(operator) ? null : value });
    fieldInput.value = "";
    valueInput.value = "";
    hideSuggestions();
    renderChips();
    onChange(current.slice());
  }

  // Suggestions -------------------------------------------------------------------------------
  let active = -1;
  let items = [];

  async function showSuggestions() {
    const fields = await fieldSuggestions();
    const typed = fieldInput.value.trim().toLowerCase();
    items = [...fields.entries()].filter(([name]) => name.toLowerCase().includes(typed)).slice(0, 12);
    active = -1;
    suggestions.replaceChildren(
      ...items.map(([name, types], index) =>
        el("li", {
          className: "suggestion", attrs: { role: "option" },
          on: { mousedown: (event) => { event.preventDefault(); choose(index); } },
        },
          el("span", { className: "suggestion-name", text: name }),
          types.size ? el("span", { className: "suggestion-types", text: [...types].sort().join(", ") }) : null)),
    );
    suggestions.hidden = items.length === 0 || document.activeElement !== fieldInput;
  }

  function hideSuggestions() {
    suggestions.hidden = true;
    active = -1;
  }

  function choose(index) {
    fieldInput.value = items[index][0];
    hideSuggestions();
    operatorSelect.focus();
  }

  function highlight(index) {
    active = (index + items.length) % items.length;
    [...suggestions.children].forEach((item, i) => item.classList.toggle("active", i === active));
  }

  fieldInput.addEventListener("focus", showSuggestions);
  fieldInput.addEventListener("input", showSuggestions);
  fieldInput.addEventListener("blur", () => setTimeout(hideSuggestions, 100));
  fieldInput.addEventListener("keydown", (event) => {
    if (suggestions.hidden || !items.length) {
      if (event.key === "Enter") add();
      return;
    }
    if (event.key === "ArrowDown") { event.preventDefault(); highlight(active + 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); highlight(active - 1); }
    else if (event.key === "Enter" && active >= 0) { event.preventDefault(); choose(active); }
    else if (event.key === "Enter") { hideSuggestions(); add(); }
    else if (event.key === "Escape") hideSuggestions();
  });
  operatorSelect.addEventListener("change", () => {
    valueInput.disabled = VALUELESS.has(operatorSelect.value);
  });
  valueInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") add();
  });
  addButton.addEventListener("click", add);

  renderChips();
  return el("div", { className: "filter-bar" },
    el("div", { className: "filter-editor" },
      el("div", { className: "field-box" }, fieldInput, suggestions),
      operatorSelect, valueInput, addButton, message),
    chips);
}

// Date range ---------------------------------------------------------------------------------

export const RANGES = [
  ["all", "All time"], ["1h", "Last hour"], ["24h", "Last 24 hours"], ["7d", "Last 7 days"],
  ["30d", "Last 30 days"], ["custom", "Custom…"],
];
const RANGE_MS = { "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000 };

/** {start, end} in Unix ms for a range choice (relative ranges end now), or null for all time. */
export function resolveRange(range, now = Date.now()) {
  if (!range || range.kind === "all") return null;
  if (range.kind === "custom") {
    const start = range.from ? Date.parse(range.from) : 0;
    const end = range.to ? Date.parse(range.to) : now;
    if (!Number.isFinite(start) || !Number.isFinite(end)) return null;
    return { start, end };
  }
  const width = RANGE_MS[range.kind];
  return width ? { start: now - width, end: now } : null;
}

/** The search routes' {start_time, end_time}. */
export function searchDateRange(range) {
  const resolved = resolveRange(range);
  if (!resolved) return undefined;
  return { start_time: new Date(resolved.start).toISOString(), end_time: new Date(resolved.end).toISOString() };
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

/** createDateRange({range, onChange}) → element; range = {kind, from?, to?} (from/to local datetimes). */
export function createDateRange({ range = { kind: "all" }, onChange }) {
  const select = el("select", { className: "input", attrs: { "aria-label": "Date range" } },
    RANGES.map(([value, label]) => el("option", { value, text: label })));
  select.value = range.kind;
  const from = el("input", { type: "datetime-local", className: "input", attrs: { "aria-label": "From" } });
  const to = el("input", { type: "datetime-local", className: "input", attrs: { "aria-label": "To" } });
  from.value = range.from || "";
  to.value = range.to || "";
  const custom = el("span", { className: "custom-range", hidden: range.kind !== "custom" }, from, "–", to);

  const emit = () => {
    const kind = select.value;
    custom.hidden = kind !== "custom";
    if (kind === "custom" && !from.value) {
      from.value = toLocalInput(Date.now() - 86_400_000);
      to.value = toLocalInput(Date.now());
    }
    onChange(kind === "custom" ? { kind, from: from.value, to: to.value } : { kind });
  };
  select.addEventListener("change", emit);
  from.addEventListener("change", emit);
  to.addEventListener("change", emit);
  return el("div", { className: "date-range" }, select, custom);
}
