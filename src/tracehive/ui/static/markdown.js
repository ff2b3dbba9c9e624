// Chat message text as Markdown, built as DOM nodes: headings, paragraphs, emphasis, code spans,
// fenced code, lists, blockquotes, rules and links. Messages come from traces, so they are data,
// not markup: every piece of text goes in through textContent (via el()), raw HTML stays text, and
// only http(s) and mailto URLs become links (anything else shows its source text). Images become
// links too, so opening a message never fetches anything. Written for this app, not a full
// CommonMark parser: what it does not know (tables, HTML, indented code) is shown as text.

import { el } from "./dom.js";

const MAX_SOURCE = 200_000; // longer texts are shown as plain text: parsing them would stall the panel
const MAX_DEPTH = 12; // nested quotes and lists deeper than this are shown as text
const SAFE_SCHEMES = new Set(["http:", "https:", "mailto:"]);

/** The normalised URL when ``raw`` is an absolute http(s)/mailto URL, else null. */
export function safeUrl(raw) {
  let url;
  try {
    url = new URL(String(raw).trim());
  } catch {
    return null; // relative or malformed: no base to resolve it against, so no link
  }
  return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
}

function link(href, children, { title, image = false } = {}) {
  // target=_blank with noopener/noreferrer: the trace's link cannot reach back into this page.
  return el("a", {
    href, title: title || null, className: image ? "md-link md-image" : "md-link",
    attrs: { rel: "noopener noreferrer nofollow", target: "_blank", referrerpolicy: "no-referrer" },
  }, children);
}

/** A <div class="md"> for ``source``. */
export function renderMarkdown(source) {
  const text = String(source ?? "");
  if (text.length > MAX_SOURCE) return el("div", { className: "md md-too-long", text });
  const lines = text.replace(/\r\n?/g, "\n").split("\n").map((line) => line.replace(/^\t+/, (tabs) => "    ".repeat(tabs.length)));
  return el("div", { className: "md" }, blocks(lines, 0));
}

// Blocks ---------------------------------------------------------------------------------------

// A backtick fence's info string has no backticks ("```x```" on one line is a code span).
const FENCE = /^( {0,3})(?:(`{3,})([^`]*)|(~{3,})(.*))$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+|$)(.*?)(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*)|$)$/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const blank = (line) => line.trim() === "";

/** Whether ``line`` starts a block that ends a paragraph (an ordered list only from 1, as in CommonMark). */
function interrupts(line) {
  if (FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)) return true;
  const item = ITEM.exec(line);
  return Boolean(item && item[4] && (!/\d/.test(item[2]) || /^1[.)]$/.test(item[2])));
}

function blocks(lines, depth) {
  if (depth > MAX_DEPTH) return [el("p", { text: lines.join("\n") })];
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (blank(line)) { i += 1; continue; }
    if ((m = FENCE.exec(line))) { i = fenced(lines, i, m, out); continue; }
    if ((m = HEADING.exec(line))) {
      // "#" is the message's top level; the page already uses h1 and h2, so it starts at h3.
      out.push(el(`h${Math.min(6, m[1].length + 2)}`, { className: "md-heading" }, inline(m[2], 0)));
      i += 1;
      continue;
    }
    if (RULE.test(line)) { out.push(el("hr")); i += 1; continue; }
    if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) { inner.push(m[1]); i += 1; }
      out.push(el("blockquote", {}, blocks(inner, depth + 1)));
      continue;
    }
    if (ITEM.test(line)) { i = list(lines, i, depth, out); continue; }
    i = paragraph(lines, i, out);
  }
  return out;
}

function fenced(lines, start, m, out) {
  const [, indent] = m;
  const fence = m[2] || m[4];
  const info = (m[3] || m[5] || "").trim().split(/\s+/)[0];
  const closer = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}[ \\t]*$`);
  const code = [];
  let i = start + 1;
  for (; i < lines.length && !closer.test(lines[i]); i += 1) {
    // Content lines lose as many leading spaces as the fence was indented by.
    code.push(lines[i].replace(new RegExp(`^ {0,${indent.length}}`), ""));
  }
  if (i >= lines.length) while (code.length && blank(code[code.length - 1])) code.pop();
  const codeNode = el("code", { text: code.join("\n") });
  if (info) codeNode.dataset.lang = info;
  out.push(el("pre", { className: "md-code" }, codeNode));
  return i + 1; // past the closing fence (an unclosed fence runs to the end)
}

function paragraph(lines, start, out) {
  const text = [lines[start].trim()];
  let i = start + 1;
  for (; i < lines.length && !blank(lines[i]); i += 1) {
    const setext = SETEXT.exec(lines[i]);
    if (setext) {
      out.push(el(setext[1][0] === "=" ? "h3" : "h4", { className: "md-heading" }, inline(text.join("\n"), 0)));
      return i + 1;
    }
    if (interrupts(lines[i])) break;
    text.push(lines[i].trim());
  }
  out.push(el("p", {}, inline(text.join("\n"), 0)));
  return i;
}

function list(lines, start, depth, out) {
  const first = ITEM.exec(lines[start]);
  const ordered = /\d/.test(first[2]);
  const marker = first[2].slice(-1); // "-", "*", "+", "." or ")": another marker starts another list
  const sameList = (line) => {
    const m = line !== undefined && !RULE.test(line) && ITEM.exec(line);
    return Boolean(m) && /\d/.test(m[2]) === ordered && m[2].slice(-1) === marker;
  };
  const items = [];
  let tight = true;
  let i = start;
  while (i < lines.length) {
    if (!sameList(lines[i])) break;
    const m = ITEM.exec(lines[i]);
    const gap = m[3] || " ";
    // Content lines are those indented past the marker (a wide gap means indented code: use 1).
    const width = m[1].length + m[2].length + (gap.length > 4 ? 1 : gap.length);
    const body = [m[4] || ""];
    i += 1;
    let sawBlank = false;
    for (; i < lines.length; i += 1) {
      const line = lines[i];
      if (blank(line)) { sawBlank = true; body.push(""); continue; }
      const indent = line.length - line.trimStart().length;
      if (indent >= width) { body.push(line.slice(width)); continue; }
      // A lazy continuation line: unindented text still inside the item's paragraph.
      if (!sawBlank && !interrupts(line) && !ITEM.test(line)) { body.push(line); continue; }
      break;
    }
    while (body.length && blank(body[body.length - 1])) body.pop();
    // A blank line between items, or inside one, makes the list loose (items in paragraphs).
    if (sawBlank && (sameList(lines[i]) || body.some(blank))) tight = false;
    items.push(body);
    if (sawBlank && !sameList(lines[i])) break;
  }
  const node = el(ordered ? "ol" : "ul", { className: "md-list" });
  const startNumber = parseInt(first[2], 10);
  if (ordered && startNumber !== 1) node.start = startNumber;
  for (const body of items) {
    const li = el("li", {}, blocks(body, depth + 1));
    // A tight list's items hold their text directly, not in paragraphs.
    if (tight && li.firstChild && li.firstChild.nodeName === "P") li.firstChild.replaceWith(...li.firstChild.childNodes);
    node.append(li);
  }
  out.push(node);
  return i;
}

// Inline ---------------------------------------------------------------------------------------

const PUNCT = /[!-/:-@[-`{-~]/;
// Sticky (y): matched at one position of the text, without copying the rest of it.
const BARE_URL = /(?:https?:\/\/|mailto:)[^\s<>]+/iy;
const AUTOLINK = /<([a-z][a-z0-9+.-]{1,31}:[^\s<>]*|[^\s<>@]+@[^\s<>@]+\.[a-z]{2,})>/iy;
const LINK_WINDOW = 2000; // how far a link's label and destination may reach: bounds the work per "["

function stickyAt(regex, text, i) {
  regex.lastIndex = i;
  return regex.exec(text);
}

/** Nodes for one paragraph's (or heading's, or link label's) text. */
function inline(text, depth, { inLink = false } = {}) {
  const out = [];
  let plain = "";
  const flush = () => { if (plain) { out.push(plain); plain = ""; } };
  const push = (node, next) => { flush(); out.push(node); return next; };
  // Delimiters with no closer left after some point: later openers need not look again, which
  // keeps a text of many unmatched "*" or "`" linear.
  const noCloser = new Set();
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "\\" && PUNCT.test(text[i + 1] || "")) { plain += text[i + 1]; i += 2; continue; }
    if (c === "`") {
      const run = runLength(text, i, "`");
      const close = noCloser.has(`\`${run}`) ? -1 : findRun(text, i + run, "`", run);
      if (close < 0) { noCloser.add(`\`${run}`); plain += "`".repeat(run); i += run; continue; }
      i = push(el("code", { className: "md-code-span", text: codeSpanText(text.slice(i + run, close)) }), close + run);
      continue;
    }
    if (!inLink && (c === "[" || (c === "!" && text[i + 1] === "["))) {
      const parsed = linkAt(text, c === "!" ? i + 1 : i);
      if (parsed) {
        const href = safeUrl(parsed.dest);
        const source = text.slice(i, parsed.end);
        if (!href) { plain += source; i = parsed.end; continue; } // an unsafe URL shows as its source text
        const node = c === "!"
          ? link(href, `image: ${parsed.label || href}`, { title: parsed.title || "Image (not loaded)", image: true })
          : link(href, depth < MAX_DEPTH ? inline(parsed.label, depth + 1, { inLink: true }) : parsed.label, { title: parsed.title });
        i = push(node, parsed.end);
        continue;
      }
    }
    if (!inLink && c === "<") {
      const m = stickyAt(AUTOLINK, text, i);
      const href = m && safeUrl(m[1].includes(":") ? m[1] : `mailto:${m[1]}`);
      if (href) { i = push(link(href, m[1]), i + m[0].length); continue; }
    }
    if (!inLink && (c === "h" || c === "H" || c === "m" || c === "M") && (i === 0 || /[\s(]/.test(text[i - 1]))) {
      const m = stickyAt(BARE_URL, text, i);
      if (m) {
        const url = trimUrl(m[0]);
        const href = safeUrl(url);
        if (href) { i = push(link(href, url), i + url.length); continue; }
      }
    }
    if ((c === "*" || c === "_" || c === "~") && depth < MAX_DEPTH) {
      const run = runLength(text, i, c);
      const key = `${c}${run}`;
      if (!noCloser.has(key) && opens(text, i, run, c)) {
        const close = closerOf(text, i + run, c, run);
        if (close >= 0) {
          const inner = inline(text.slice(i + run, close), depth + 1, { inLink });
          const node = c === "~" ? el("del", {}, inner)
            : run === 1 ? el("em", {}, inner) : run === 2 ? el("strong", {}, inner) : el("strong", {}, el("em", {}, inner));
          i = push(node, close + run);
          continue;
        }
        noCloser.add(key);
      }
      plain += c.repeat(run);
      i += run;
      continue;
    }
    plain += c;
    i += 1;
  }
  flush();
  return out;
}

function runLength(text, i, c) {
  let n = 0;
  while (text[i + n] === c) n += 1;
  return n;
}

/** The next run of exactly ``n`` ``c`` characters from ``from``, or -1. */
function findRun(text, from, c, n) {
  for (let i = text.indexOf(c, from); i >= 0; i = text.indexOf(c, i)) {
    const run = runLength(text, i, c);
    if (run === n) return i;
    i += run;
  }
  return -1;
}

function codeSpanText(raw) {
  const text = raw.replace(/\n/g, " ");
  return /^ .*[^ ].* $/.test(text) ? text.slice(1, -1) : text;
}

const isWordChar = (ch) => Boolean(ch) && /[\p{L}\p{N}]/u.test(ch);

/** Whether a delimiter run can open emphasis: followed by text, and "_" not inside a word (snake_case). */
function opens(text, i, run, c) {
  if (c === "~" ? run !== 2 : run > 3) return false;
  const next = text[i + run];
  if (!next || /\s/.test(next)) return false;
  return c !== "_" || !isWordChar(text[i - 1]);
}

/** Where the matching closing run starts, skipping code spans and escapes, or -1. */
function closerOf(text, from, c, run) {
  for (let i = from; i < text.length; i += 1) {
    const ch = text[i];
    if (ch === "\\") { i += 1; continue; }
    if (ch === "`") {
      const ticks = runLength(text, i, "`");
      const close = findRun(text, i + ticks, "`", ticks);
      i = (close < 0 ? i + ticks : close + ticks) - 1;
      continue;
    }
    if (ch !== c) continue;
    const length = runLength(text, i, c);
    const closes = length === run && i > from && !/\s/.test(text[i - 1]) && (c !== "_" || !isWordChar(text[i + length]));
    if (closes) return i;
    i += length - 1;
  }
  return -1;
}

/** ``[label](dest "title")`` at ``i``: {label, dest, title, end}, or null. */
function linkAt(text, i) {
  let depth = 0;
  let j = i;
  const stop = Math.min(text.length, i + LINK_WINDOW);
  for (; j < stop; j += 1) {
    if (text[j] === "\\") { j += 1; continue; }
    if (text[j] === "[") depth += 1;
    else if (text[j] === "]" && --depth === 0) break;
  }
  if (j >= stop || text[j + 1] !== "(") return null;
  const m = /^\(\s*(<[^<>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)(?:\s+("[^"]*"|'[^']*'))?\s*\)/.exec(text.slice(j + 1, j + 1 + LINK_WINDOW));
  if (!m) return null;
  const dest = m[1].startsWith("<") ? m[1].slice(1, -1) : m[1];
  return { label: text.slice(i + 1, j), dest, title: m[2] ? m[2].slice(1, -1) : "", end: j + 1 + m[0].length };
}

/** A bare URL without the sentence's trailing punctuation (and an unbalanced closing paren). */
function trimUrl(url) {
  let end = url.length;
  while (end > 0 && /[.,:;!?'"*_~]/.test(url[end - 1])) end -= 1;
  let trimmed = url.slice(0, end);
  while (trimmed.endsWith(")") && (trimmed.match(/\)/g) || []).length > (trimmed.match(/\(/g) || []).length) {
    trimmed = trimmed.slice(0, -1);
  }
  return trimmed;
}
