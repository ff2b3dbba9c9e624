// Page state (filters, date range, sort, page) kept in the hash's query string, so that a list
// view as filtered is a link that can be shared or bookmarked.

function positiveInt(text, fallback) {
  const n = Number.parseInt(text ?? "", 10);
  return Number.isFinite(n) && n >= 1 ? n : fallback;
}

function parseFilters(text) {
  if (!text) return [];
  try {
    const parsed = JSON.parse(text);
    return Array.isArray(parsed)
      ? parsed.filter((f) => f && typeof f.field === "string" && typeof f.operator === "string")
      : [];
  } catch {
    return [];
  }
}

/** State from a route's query; ``defaults`` fill what the link does not say. */
export function readListState(query, defaults) {
  return {
    filters: parseFilters(query.get("filters")),
    range: {
      kind: query.get("range") || defaults.range || "all",
      from: query.get("from") || undefined,
      to: query.get("to") || undefined,
    },
    sort: query.get("sort") || defaults.sort,
    order: query.get("order") === "asc" || query.get("order") === "desc" ? query.get("order") : defaults.order,
    page: positiveInt(query.get("page"), 1),
    limit: positiveInt(query.get("limit"), defaults.limit),
    // On/off switches a page declares in defaults.flags (e.g. the events page's "sessions"): off
    // unless the link says name=1.
    flags: Object.fromEntries((defaults.flags || []).map((name) => [name, query.get(name) === "1"])),
  };
}

/** Put ``state`` in the address bar without a navigation (no hashchange, no reload). */
export function writeListState(path, state, defaults) {
  const query = new URLSearchParams();
  if (state.filters.length) query.set("filters", JSON.stringify(state.filters));
  if (state.range.kind !== (defaults.range || "all")) query.set("range", state.range.kind);
  if (state.range.kind === "custom") {
    if (state.range.from) query.set("from", state.range.from);
    if (state.range.to) query.set("to", state.range.to);
  }
  if (state.sort && state.sort !== defaults.sort) query.set("sort", state.sort);
  if (state.order && state.order !== defaults.order) query.set("order", state.order);
  if (state.page !== 1) query.set("page", String(state.page));
  if (state.limit !== defaults.limit) query.set("limit", String(state.limit));
  for (const [name, on] of Object.entries(state.flags || {})) if (on) query.set(name, "1");
  const text = query.toString();
  history.replaceState(null, "", `#${path}${text ? `?${text}` : ""}`);
}
