// The real HoneyHive TypeScript client (npm `honeyhive`) against a running tracehive: every data-plane
// call it has, writes then reads. Driven by tests/conformance/test_ts_sdk.py, which checks what
// the client saw against what tracehive stored.
//
// Environment: TRACEHIVE_URL, TRACEHIVE_KEY, RUN_TAG (makes names unique per run).
// Output (stdout): one JSON object per line, {"step", "ok", "result"} or {"step", "ok": false,
// "error"}: a call that throws (the SDK's own response validation included) is reported, not
// fatal, so the test names every failing call at once.

"use strict";

const { HoneyHive } = require("honeyhive");

const client = new HoneyHive({ bearerAuth: process.env.TRACEHIVE_KEY, serverURL: process.env.TRACEHIVE_URL });
const project = "default";
const tag = process.env.RUN_TAG || "ts";

function report(step, fields) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + "\n");
}

async function step(name, call) {
  try {
    const result = await call();
    report(name, { ok: true, result: result === undefined ? null : result });
    return result;
  } catch (err) {
    report(name, { ok: false, error: String(err) });
    return null;
  }
}

async function main() {
  const started = await step("startSession", () => client.session.startSession({
    session: {
      project, sessionName: `${tag}-session`, source: `${tag}-source`,
      inputs: { question: "hi" }, metadata: { tag }, userProperties: { user_id: `${tag}-user` },
    },
  }));
  if (!started) return;
  const sessionId = started.sessionId;

  // A float duration: end_time = start_time + 12.5 ms is not whole, and the client wants an int.
  await step("createEvent.model", () => client.events.createEvent({
    event: {
      project, source: `${tag}-source`, eventName: `${tag}-llm`, eventType: "model", sessionId,
      config: { model: "gpt-4o-mini", temperature: 0 }, inputs: { chat_history: [{ role: "user", content: "hi" }] },
      duration: 12.5, metadata: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    },
  }));
  // No outputs: the read must not answer "outputs": null.
  await step("createEvent.chain", () => client.events.createEvent({
    event: {
      project, source: `${tag}-source`, eventName: `${tag}-chain`, eventType: "chain", sessionId,
      config: {}, inputs: { step: 1 }, duration: 7,
    },
  }));
  await step("createEventBatch", () => client.events.createEventBatch({
    sessionId,
    events: [1, 2].map((i) => ({
      project, source: `${tag}-source`, eventName: `${tag}-tool-${i}`, eventType: "tool", sessionId,
      config: {}, inputs: { i }, outputs: { o: i }, duration: i * 1.25,
    })),
  }));
  await step("createModelEvent", () => client.events.createModelEvent({
    modelEvent: {
      project, model: "gpt-4o", provider: "openai", source: `${tag}-source`, eventName: `${tag}-model-event`,
      messages: [{ role: "user", content: "hello" }], response: { role: "assistant", content: "hey" },
      duration: 3.3, usage: { prompt_tokens: 4, completion_tokens: 1, total_tokens: 5 },
    },
  }));

  const chain = await step("getEvents.byName", () => client.events.getEvents({
    project, filters: [{ field: "event_name", value: `${tag}-chain`, operator: "is", type: "string" }],
  }));
  const chainId = chain && chain.events && chain.events[0] && chain.events[0].eventId;
  if (chainId) {
    await step("updateEvent", () => client.events.updateEvent({
      eventId: chainId, feedback: { rating: 4, comment: "good" }, metrics: { score: 0.5 }, outputs: { answer: 42 },
    }));
  }

  await step("getSession", () => client.session.getSession(sessionId));
  await step("getEvents.bySession", () => client.events.getEvents({
    project, filters: [{ field: "session_id", value: sessionId, operator: "is", type: "string" }], limit: 100,
  }));
  const now = Date.now();
  await step("getEvents.dateRangeProjected", () => client.events.getEvents({
    project,
    filters: [{ field: "session_id", value: sessionId, operator: "is", type: "string" }],
    dateRange: { dollarGte: new Date(now - 3600e3).toISOString(), dollarLte: new Date(now + 3600e3).toISOString() },
    projections: ["event_name", "event_type", "end_time", "outputs"],
  }));
}

main().catch((err) => {
  report("fatal", { ok: false, error: String(err && err.stack ? err.stack : err) });
  process.exitCode = 1;
});
