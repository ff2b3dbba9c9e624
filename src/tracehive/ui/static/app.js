// The single-page app: sign-in, the top bar, and hash routing to the views.
//
//   #/signin                                   sign in with an API key
//   #/sessions[?filters=..&range=..&sort=..]   the sessions list
//   #/sessions/<session_id>                    one session: tree, waterfall, details
//   #/sessions/<session_id>/events/<event_id>  the same with one event selected
//   #/events/<event_id>                        an event by id alone (redirects to its session)
//   #/events[?filters=..]                      search over all events
//   #/charts[?range=..&bucket=..]              charts over time
//   #/experiments[?sort=..&order=..&page=..]   experiment runs
//   #/experiments/<run_id>                     one run: a row per datapoint
//   #/experiments/<new_id>/compare/<old_id>    two runs compared
//   #/datasets[/<dataset_id>]                  datasets, and one dataset's datapoints

import { ApiError, forgetKey, onUnauthorized, storedKey, storeKey, whoami, getEvent } from "./api.js";
import { el, notice } from "./dom.js";
import { resetSchemaCache } from "./filter_bar.js";
import { resetProjectName } from "./empty_state.js";
import { themeSwitch } from "./theme.js";
import { createSessionsView } from "./sessions.js";
import { createSessionView } from "./session_view.js";
import { createEventsView } from "./events.js";
import { createChartsView } from "./charts.js";
import { createExperimentsView } from "./experiments.js";
import { createRunView } from "./run_view.js";
import { createCompareView } from "./compare_view.js";
import { createDatasetsView } from "./datasets.js";

const root = document.getElementById("app");
let identity = null; // {project_id, project_name, key_kind} of the signed-in key
let view = null; // {name, update?(route) -> bool, dispose()}
let shell = null; // {main, nav}
let signInMessage = "";
let pendingHash = null; // where a signed-out visitor was going (a shared link)

export function parseRoute(hash) {
  const raw = hash.replace(/^#/, "");
  const cut = raw.indexOf("?");
  const path = cut >= 0 ? raw.slice(0, cut) : raw;
  const query = new URLSearchParams(cut >= 0 ? raw.slice(cut + 1) : "");
  let parts;
  try {
    parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return { name: "notfound", path };
  }
  const [head, id, sub, subId] = parts;
  if (parts.length === 0) return { name: "home", query };
  if (head === "signin" && parts.length === 1) return { name: "signin", query };
  if (head === "sessions" && parts.length === 1) return { name: "sessions", query };
  if (head === "sessions" && parts.length === 2) return { name: "session", sessionId: id, eventId: null, query };
  if (head === "sessions" && sub === "events" && parts.length === 4) return { name: "session", sessionId: id, eventId: subId, query };
  if (head === "events" && parts.length === 1) return { name: "events", query };
  if (head === "events" && parts.length === 2) return { name: "event", eventId: id, query };
  if (head === "charts" && parts.length === 1) return { name: "charts", query };
  if (head === "experiments" && parts.length === 1) return { name: "experiments", query };
  if (head === "experiments" && parts.length === 2) return { name: "run", runId: id, query };
  if (head === "experiments" && sub === "compare" && parts.length === 4) return { name: "compare", newRunId: id, oldRunId: subId, query };
  if (head === "datasets" && parts.length <= 2) return { name: "datasets", datasetId: id || null, query };
  return { name: "notfound", path };
}

const NAV_OF = {
  sessions: "sessions", session: "sessions", events: "events", event: "events", charts: "charts",
  experiments: "experiments", run: "experiments", compare: "experiments", datasets: "datasets",
};
const TITLES = {
  sessions: "Sessions", session: "Session", events: "Events", charts: "Charts", event: "Event",
  experiments: "Experiments", run: "Run", compare: "Compare runs", datasets: "Datasets",
};

// Sign-in ----------------------------------------------------------------------------------------

function keyErrorMessage(error) {
  if (!(error instanceof ApiError)) return `Sign-in failed: ${error}`;
  if (error.status === 0) return error.message;
  if (error.status === 401) {
    return `That API key was not accepted (${error.message}). Check that you pasted the whole key: it starts with hh_.`;
  }
  if (error.status === 403) return ingestionKeyMessage();
  return `Sign-in failed: ${error.message} (HTTP ${error.status}).`;
}

function ingestionKeyMessage() {
  return "This is an ingestion key: it can only send traces. Sign in with a project key to browse them.";
}

function showSignIn() {
  disposeView();
  shell = null;
  document.title = "Sign in · tracehive";
  const input = el("input", {
    type: "password", id: "api-key", className: "input input-wide", placeholder: "hh_…",
    attrs: { autocomplete: "off", spellcheck: "false", "aria-label": "API key" },
  });
  const button = el("button", { type: "submit", className: "btn btn-primary", text: "Sign in" });
  const message = el("div", { className: "signin-message" }); // the notices inside are role=alert
  if (signInMessage) message.append(notice("error", signInMessage));
  const form = el("form", { className: "signin-card", attrs: { "aria-label": "Sign in" } },
    el("div", { className: "signin-brand" }, el("img", { src: "/ui/favicon.svg", alt: "", width: 36, height: 36 }), el("span", { text: "tracehive" })),
    el("h1", { text: "Sign in" }),
    el("p", { className: "muted" }, "Paste a project API key. ", el("code", { text: "tracehive serve" }),
      " prints one on its first start; ", el("code", { text: "tracehive keys create --project NAME" }),
      " mints more. The key is kept in this browser's local storage until you sign out."),
    el("label", { className: "label", htmlFor: "api-key", text: "API key" }),
    input, button, message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    message.replaceChildren();
    if (!key) {
      message.append(notice("error", "Paste an API key first."));
      return;
    }
    button.disabled = true;
    button.textContent = "Checking…";
    try {
      const who = await whoami(key);
      if (who.key_kind === "ingestion") throw new ApiError(403, ingestionKeyMessage());
      storeKey(key);
      signIn(who);
    } catch (error) {
      message.append(notice("error", keyErrorMessage(error)));
      input.select();
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  });
  root.replaceChildren(el("main", { className: "signin-page" }, form));
  input.focus();
}

function signIn(who) {
  identity = who;
  signInMessage = "";
  resetSchemaCache();
  resetProjectName();
  const target = pendingHash || "#/sessions";
  pendingHash = null;
  if (location.hash === target) route();
  else location.hash = target;
}

function signOut(message = "") {
  forgetKey();
  identity = null;
  pendingHash = null;
  signInMessage = message;
  resetSchemaCache();
  resetProjectName();
  if (location.hash === "#/signin") route();
  else location.hash = "#/signin";
}

async function verifyStoredKey() {
  root.replaceChildren(el("div", { className: "boot", text: "Connecting…" }));
  try {
    const who = await whoami(storedKey());
    if (who.key_kind === "ingestion") throw new ApiError(403, ingestionKeyMessage());
    identity = who;
    route();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      forgetKey();
      signInMessage = error.status === 401
        ? "Your saved API key is no longer accepted (it may have been revoked). Sign in again."
        : ingestionKeyMessage();
      route();
      return;
    }
    root.replaceChildren(el("main", { className: "signin-page" },
      el("div", { className: "signin-card" },
        notice("error", error.message || String(error)),
        el("button", { type: "button", className: "btn btn-primary", text: "Retry", on: { click: verifyStoredKey } }))));
  }
}

// Shell and routing ------------------------------------------------------------------------------

function buildShell() {
  const link = (name, label) => el("a", { href: `#/${name}`, text: label, className: "nav-link", dataset: { nav: name } });
  const nav = el("nav", { className: "nav", attrs: { "aria-label": "Main" } },
    link("sessions", "Sessions"), link("events", "Events"), link("charts", "Charts"),
    link("experiments", "Experiments"), link("datasets", "Datasets"));
  const project = el("div", { className: "project", title: `Project id ${identity.project_id}` },
    el("span", { className: "project-label", text: "Project" }),
    el("strong", { className: "project-name", text: identity.project_name || identity.project_id }));
  const signOutButton = el("button", { type: "button", className: "btn btn-ghost", text: "Sign out", on: { click: () => signOut() } });
  // On a narrow screen the bar wraps: the nav takes a row of its own (see style.css).
  const header = el("header", { className: "topbar" },
    el("a", { className: "brand", href: "#/sessions" }, el("img", { src: "/ui/favicon.svg", alt: "", width: 22, height: 22 }), el("span", { className: "brand-name", text: "tracehive" })),
    nav, el("div", { className: "spacer" }), project, themeSwitch(), signOutButton);
  const main = el("main", { className: "content" });
  root.replaceChildren(header, main);
  return { main, nav };
}

function disposeView() {
  if (view) view.dispose();
  view = null;
}

function createView(route, main) {
  switch (route.name) {
    case "sessions": return createSessionsView(main, route);
    case "session": return createSessionView(main, route);
    case "events": return createEventsView(main, route);
    case "charts": return createChartsView(main, route);
    case "event": return createEventRedirect(main, route);
    case "experiments": return createExperimentsView(main, route);
    case "run": return createRunView(main, route);
    case "compare": return createCompareView(main, route);
    case "datasets": return createDatasetsView(main, route);
    default:
      main.append(el("section", { className: "page" }, el("h1", { text: "Page not found" }),
        el("p", {}, "Nothing lives at this address. ", el("a", { href: "#/sessions", text: "Go to the sessions" }))));
      return { dispose() {} };
  }
}

/** #/events/<id>: find the event's session, then show it there. */
function createEventRedirect(main, route) {
  const controller = new AbortController();
  main.append(el("section", { className: "page" }, el("p", { className: "muted", text: "Finding the event…" })));
  getEvent(route.eventId, controller.signal)
    .then((event) => location.replace(`#/sessions/${encodeURIComponent(event.session_id)}/events/${encodeURIComponent(event.event_id)}`))
    .catch((error) => {
      if (error.name === "AbortError") return;
      main.replaceChildren(el("section", { className: "page" }, notice("error", `Could not open event ${route.eventId}: ${error.message}`)));
    });
  return { dispose: () => controller.abort() };
}

function route() {
  const current = parseRoute(location.hash);
  if (!identity) {
    if (current.name !== "signin" && current.name !== "home") pendingHash = location.hash;
    showSignIn();
    return;
  }
  if (current.name === "signin" || current.name === "home") {
    location.replace("#/sessions");
    return;
  }
  document.title = `${TITLES[current.name] || "tracehive"} · tracehive`;
  if (!shell) shell = buildShell();
  for (const link of shell.nav.querySelectorAll("a")) {
    link.classList.toggle("active", link.dataset.nav === NAV_OF[current.name]);
    if (link.dataset.nav === NAV_OF[current.name]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view && view.name === current.name && view.update && view.update(current)) return;
  disposeView();
  shell.main.replaceChildren();
  shell.main.scrollTop = 0;
  view = { name: current.name, ...createView(current, shell.main) };
}

function start() {
  onUnauthorized(() => signOut("Your API key is no longer accepted (it may have been revoked). Sign in again."));
  window.addEventListener("hashchange", route);
  if (storedKey()) verifyStoredKey();
  else route();
}

start();
