// What a model call used: model, tokens, cost and latency, read from the event the way the SDKs
// and span mapping store them (config.model; metadata.prompt_tokens, completion_tokens,
// total_tokens, cost; metadata.cost_computed when the server priced the call from its price
// table). Drawn twice: as the event detail's header, and compactly in the session tree's rows.

import { el, fmtCost, fmtDuration, fmtInt } from "./dom.js";

const number = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** {model, responseModel, prompt, completion, total, cost, costComputed, latency}; missing values are null. */
export function usageOf(event) {
  const meta = (event && event.metadata) || {};
  const config = (event && event.config) || {};
  const prompt = number(meta.prompt_tokens);
  const completion = number(meta.completion_tokens);
  // A total is worth showing even when only its parts were recorded.
  const total = number(meta.total_tokens) ?? (prompt !== null && completion !== null ? prompt + completion : null);
  return {
    model: typeof config.model === "string" && config.model ? config.model : null,
    responseModel: typeof meta.response_model === "string" && meta.response_model ? meta.response_model : null,
    prompt,
    completion,
    total,
    cost: number(meta.cost),
    costComputed: meta.cost_computed === true,
    latency: number(event && event.duration),
  };
}

export const isModelEvent = (event) => Boolean(event) && event.event_type === "model";

const COMPUTED_TITLE = "Computed by tracehive from its price table (the app did not report a cost)";

/** "12", "9.8k", "1.2M": token counts in a tree row, where space is short. */
export function fmtCompact(value) {
  if (value === null || value === undefined) return "—";
  const abs = Math.abs(value);
  if (abs < 1000) return fmtInt(value);
  if (abs < 1_000_000) return `${Number((value / 1000).toFixed(abs < 10_000 ? 1 : 0))}k`;
  return `${Number((value / 1_000_000).toFixed(1))}M`;
}

/** A cost, "—" when there is none (never "$0" for a missing value), with the "computed" hint. */
function costNode(usage) {
  return el("span", { className: "usage-cost" },
    el("span", { className: "usage-cost-value", text: fmtCost(usage.cost) }),
    usage.cost !== null && usage.costComputed
      ? el("span", { className: "usage-computed", text: "computed", title: COMPUTED_TITLE })
      : null);
}

function item(field, label, ...value) {
  return el("div", { className: "usage-item", dataset: { field } },
    el("dt", { text: label }), el("dd", {}, value));
}

/** The header strip of a model event's detail: model, tokens, cost, latency. */
export function usageHeader(event) {
  const usage = usageOf(event);
  const answeredBy = usage.responseModel && usage.responseModel !== usage.model
    ? el("span", { className: "usage-note", text: `answered by ${usage.responseModel}` })
    : null;
  return el("dl", { className: "model-usage", attrs: { "aria-label": "Model usage" } },
    item("model", "Model", el("code", { text: usage.model ?? "—" }), answeredBy),
    item("prompt-tokens", "Prompt tokens", fmtInt(usage.prompt)),
    item("completion-tokens", "Completion tokens", fmtInt(usage.completion)),
    item("total-tokens", "Total tokens", fmtInt(usage.total)),
    item("cost", "Cost", costNode(usage)),
    item("latency", "Latency", fmtDuration(usage.latency)));
}

/** Tokens and cost of a model event for its tree row ("976 tok · $0.00046"), or null for other events. */
export function rowUsage(node) {
  if (!isModelEvent(node)) return null;
  const usage = usageOf(node);
  const tokens = usage.total === null ? "—" : `${fmtCompact(usage.total)} tok`;
  const cost = fmtCost(usage.cost);
  const title = [
    usage.total === null ? "no token counts" : `${fmtInt(usage.total)} tokens`
      + (usage.prompt !== null || usage.completion !== null ? ` (${fmtInt(usage.prompt)} prompt, ${fmtInt(usage.completion)} completion)` : ""),
    usage.cost === null ? "no cost" : `cost ${cost}${usage.costComputed ? " (computed)" : ""}`,
  ].join(" · ");
  return el("span", { className: "row-usage", title },
    el("span", { className: "row-tokens", text: tokens }),
    el("span", { className: `row-cost${usage.costComputed ? " row-cost-computed" : ""}`, text: cost }));
}
