// What the sessions list and the events search share: the page frame (title, status, date range,
// filter bar, table, pager), the URL state they keep, the pager itself, and the place where an
// empty result is explained instead of showing an empty table.

import { el, fmtInt } from "./dom.js";
import { createDateRange, createFilterBar } from "./filter_bar.js";
import { writeListState } from "./url_state.js";

// Mounts the frame into `container`. `load()` fetches the current page; it is called again
// whenever the range, the filters, the page or the page size change (and the URL is updated).
// `controls` are extra toolbar elements (the events page's "Show session rows").
export function mountListPage(container, { title, status, table, errorBox, state, path, defaults, pageSizes, noun, load, controls = [] }) {
  const pager = el("div", { className: "pager" });
  const tableWrap = el("div", { className: "table-wrap" }, table);
  const emptyBox = el("div", { className: "empty-box", hidden: true });
  const toolbar = el("div", { className: "toolbar" });
  const save = () => writeListState(path, state, defaults);
  const reload = () => {
    state.page = 1;
    save();
    load();
  };

  // Built again when the filters are cleared from outside the bar (the bar keeps its own list).
  function renderToolbar() {
    toolbar.replaceChildren(
      createDateRange({ range: state.range, onChange: (range) => { state.range = range; reload(); } }),
      createFilterBar({ filters: state.filters, onChange: (filters) => { state.filters = filters; reload(); } }),
      ...controls);
  }
  renderToolbar();

  container.append(el("section", { className: "page list-page" },
    el("div", { className: "page-head" }, el("h1", { text: title }), status),
    toolbar, errorBox, emptyBox, tableWrap, pager));

  // `total` = every match; `noun` = [singular, plural] when the pager should name the total.
  function renderPager(total) {
    const pages = Math.max(1, Math.ceil(total / state.limit));
    const go = (page) => { state.page = page; save(); load(); };
    const sizeSelect = el("select", { className: "input", attrs: { "aria-label": "Rows per page" } },
      pageSizes.map((size) => el("option", { value: size, text: `${size} per page` })));
    sizeSelect.value = String(state.limit);
    sizeSelect.addEventListener("change", () => { state.limit = Number(sizeSelect.value); reload(); });
    const counted = noun ? ` · ${fmtInt(total)} ${total === 1 ? noun[0] : noun[1]}` : "";
    pager.replaceChildren(
      el("button", { type: "button", className: "btn", text: "‹ Previous", disabled: state.page <= 1, on: { click: () => go(state.page - 1) } }),
      el("span", { className: "pager-text", text: `Page ${fmtInt(state.page)} of ${fmtInt(pages)}${counted}` }),
      el("button", { type: "button", className: "btn", text: "Next ›", disabled: state.page >= pages, on: { click: () => go(state.page + 1) } }),
      sizeSelect);
  }

  /** Whether the user narrowed the list (filters or a date range), as opposed to an empty project. */
  function narrowed() {
    return state.filters.length > 0 || state.range.kind !== (defaults.range || "all");
  }

  /** Back to every row: no filters, all time. */
  function clearFilters() {
    state.filters = [];
    state.range = { kind: defaults.range || "all" };
    renderToolbar();
    reload();
  }

  /** Show `node` in place of the table and pager (an empty state), or the table again with null. */
  function showEmpty(node) {
    emptyBox.replaceChildren(...(node ? [node] : []));
    emptyBox.hidden = !node;
    tableWrap.hidden = Boolean(node);
    pager.hidden = Boolean(node);
  }

  return { save, reload, renderPager, narrowed, clearFilters, showEmpty };
}
