// A small SVG line chart: one line per group over time buckets, with axes, grid, a legend and a
// tooltip (<title>) per point. All text goes in as text nodes.

import { el, svg } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 220;
const MARGIN = { left: 60, right: 14, top: 12, bottom: 26 };

// Colours are theme.css variables, so lines follow the light or dark theme. They are set through
// element.style (the policy allows no style attributes, and SVG presentation attributes take no var()).
export const TYPE_COLORS = { model: "var(--model)", tool: "var(--tool)", chain: "var(--chain)", session: "var(--session)" };
const PALETTE = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => `var(--series-${n})`);

export function groupColor(group, index) {
  return TYPE_COLORS[group] || PALETTE[index % PALETTE.length];
}

export function groupLabel(group) {
  if (group === null || group === undefined) return "(none)";
  return typeof group === "string" ? group : JSON.stringify(group);
}

/** A round tick step (1, 2 or 5 times a power of ten) giving at most four steps up to ``value``. */
function niceStep(value) {
  if (!(value > 0)) return 0.25;
  const rough = value / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  for (const step of [1, 2, 5, 10]) {
    if (step * magnitude >= rough) return step * magnitude;
  }
  return 10 * magnitude;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function timeLabel(ms, spanMs, bucketMs) {
  const d = new Date(ms);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const md = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  if (spanMs <= 36 * 3_600_000) return hm;
  if (bucketMs && bucketMs < 86_400_000) return `${md} ${hm}`;
  return md;
}

/**
 * lineChart({rows, buckets, bucketMs, value, format, fillZero}) → element.
 * rows: [{bucket, group, value, count}]; buckets: every bucket start to draw (sorted);
 * value(row) → number | null; fillZero: a group without a row in a bucket counts 0 (counts, sums)
 * rather than being a gap (percentiles).
 */
export function lineChart({ rows, buckets, bucketMs, value, format, fillZero }) {
  const groups = new Map();
  for (const row of rows) {
    const key = groupLabel(row.group);
    if (!groups.has(key)) groups.set(key, { raw: row.group, points: new Map() });
    const v = value(row);
    if (typeof v === "number" && Number.isFinite(v)) groups.get(key).points.set(row.bucket, v);
  }
  const names = [...groups.keys()].sort();
  const series = names.map((name, i) => {
    const { points } = groups.get(name);
    const values = buckets.map((bucket) => (points.has(bucket) ? points.get(bucket) : fillZero ? 0 : null));
    return { name, color: groupColor(name, i), values, total: [...points.values()].reduce((a, b) => a + b, 0) };
  });
  const maxValue = Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const yStep = niceStep(maxValue);
  const yTicks = Math.max(1, Math.ceil(maxValue / yStep));
  const yMax = yStep * yTicks;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const first = buckets[0] ?? 0;
  const last = buckets[buckets.length - 1] ?? first;
  const x = (t) => MARGIN.left + (last === first ? plotW / 2 : ((t - first) / (last - first)) * plotW);
  const y = (v) => MARGIN.top + plotH - (v / yMax) * plotH;

  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart-svg", role: "img" });
  // Grid and y labels.
  for (let i = 0; i <= yTicks; i += 1) {
    const v = yStep * i;
    chart.append(
      svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v), class: i === 0 ? "chart-axis" : "chart-gridline" }),
      svg("text", { x: MARGIN.left - 6, y: y(v) + 4, "text-anchor": "end", class: "chart-label" }, format(v)));
  }
  // X labels: about six, evenly spread over the buckets.
  const spanMs = last - first;
  const step = Math.max(1, Math.ceil(buckets.length / 6));
  for (let i = 0; i < buckets.length; i += step) {
    chart.append(svg("text", { x: x(buckets[i]), y: HEIGHT - 8, "text-anchor": "middle", class: "chart-label" }, timeLabel(buckets[i], spanMs, bucketMs)));
  }
  // Lines, broken where a percentile has no value.
  for (const s of series) {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(buckets[i]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    if (d) {
      const line = svg("path", { d, fill: "none", "stroke-width": 2, class: "chart-line", "data-group": s.name });
      line.style.stroke = s.color;
      chart.append(line);
    }
    s.values.forEach((v, i) => {
      if (v === null || (fillZero && v === 0)) return;
      const point = svg("circle", { cx: x(buckets[i]), cy: y(v), r: 3, class: "chart-point", "data-group": s.name },
        svg("title", {}, `${s.name} · ${new Date(buckets[i]).toLocaleString()} · ${format(v)}`));
      point.style.fill = s.color;
      chart.append(point);
    });
  }
  const legend = el("ul", { className: "legend" }, series.map((s) => {
    const swatch = el("span", { className: "swatch" });
    swatch.style.backgroundColor = s.color;
    return el("li", { className: "legend-item" }, swatch, el("span", { text: s.name }));
  }));
  return el("div", { className: "chart" }, chart, legend);
}
