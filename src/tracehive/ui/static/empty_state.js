// What the Sessions and Events pages show instead of an empty table: for a project with no data
// yet, the exact lines that send a first trace to *this* server (its address, the command that
// mints a key for this project, the HoneyHive SDK and OpenTelemetry settings); for a list that
// is empty only because of the filters or the date range, a line saying so and a way out.

import { whoami } from "./api.js";
import { copyButton, el } from "./dom.js";

let projectPromise = null; // the signed-in key's project name, asked once per page load

/** The project's name (GET /v1/whoami), for the `keys create --project` line. */
export function projectName() {
  if (!projectPromise) {
    projectPromise = whoami()
      .then((who) => who.project_name || who.project_id)
      .catch(() => {
        projectPromise = null; // ask again next time
        return "NAME";
      });
  }
  return projectPromise;
}

/** Forget the cached name (another key signed in). */
export function resetProjectName() {
  projectPromise = null;
}

/** A word as a POSIX shell reads it back unchanged: quoted only when it needs to be. */
function shellWord(text) {
  return /^[A-Za-z0-9_.@%+=:,/-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function codeBlock(label, text) {
  return el("div", { className: "code-block" },
    el("pre", { attrs: { "aria-label": label } }, el("code", { text })),
    copyButton("Copy", () => text));
}

/** The commands that send a first trace here; `origin` is this page's own (location.origin). */
export function firstTraceLines(origin, project) {
  return {
    key: `tracehive keys create --project ${shellWord(project)}`,
    sdkEnv: `export HH_API_URL=${origin}\nexport HH_API_KEY=hh_...   # the key printed by keys create`,
    sdkCode: [
      "from honeyhive import HoneyHiveTracer, trace",
      "",
      `HoneyHiveTracer.init(api_key="hh_...", server_url="${origin}",`,
      `                     source="dev", session_name="first-run")`,
      "",
      '@trace(event_type="model")',
      "def answer(question: str) -> str:",
      "    ...",
    ].join("\n"),
    otel: [
      `export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=${origin}/v1/traces`,
      'export OTEL_EXPORTER_OTLP_TRACES_HEADERS="Authorization=Bearer%20hh_..."   # %20: the list is URL-encoded',
    ].join("\n"),
  };
}

/**
 * The onboarding panel for a project with no data. `noun` is "sessions" or "events"; the page
 * keeps polling or can be reloaded, so the panel says the data will show up here.
 */
export function firstTracePanel({ noun, project, origin = location.origin }) {
  const lines = firstTraceLines(origin, project);
  const step = (title, ...body) => el("li", { className: "step" }, el("h3", { text: title }), ...body);
  return el("section", { className: "empty-state first-trace", attrs: { "aria-label": "Send a first trace" } },
    el("h2", {}, "No ", noun, " in project ", el("strong", { className: "empty-project", text: project }), " yet"),
    el("p", { className: "muted" }, "Send a first trace to this server, ", el("code", { className: "empty-origin", text: origin }),
      `, and its ${noun} show up here.`),
    el("ol", { className: "steps" },
      step("Mint an API key",
        el("p", {}, "On the server's machine, with the same ", el("code", { text: "--data-dir" }), " (or ",
          el("code", { text: "--store" }), ") as ", el("code", { text: "tracehive serve" }), ":"),
        codeBlock("Mint a key", lines.key),
        el("p", { className: "muted small" }, "The key is printed alone on the last line. Add ",
          el("code", { text: "--kind ingestion" }), " for a key that can only send traces.")),
      step("Point the HoneyHive SDK at this server",
        codeBlock("HoneyHive SDK environment", lines.sdkEnv),
        el("p", { className: "muted small", text: "or, with the tracer, in code:" }),
        codeBlock("HoneyHive tracer", lines.sdkCode)),
      step("Or send OpenTelemetry traces",
        el("p", {}, "Any OTLP/HTTP exporter (protobuf or JSON), with the key as a bearer token:"),
        codeBlock("OpenTelemetry environment", lines.otel))));
}

/** The list is empty because of the filters or the date range, not because the project is. */
export function noMatchPanel({ noun, onClear }) {
  return el("section", { className: "empty-state no-match", attrs: { role: "status" } },
    el("p", { text: `No ${noun} match these filters and this time range.` }),
    el("button", { type: "button", className: "btn", text: "Clear filters", on: { click: onClear } }));
}
