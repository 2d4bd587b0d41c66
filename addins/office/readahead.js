// Reading ahead: with the copilot's own (embedded) model on a CPU, most of the wait for a
// summary is the model reading the mail (~4 s for 300 words on two cores). The pane knows
// the mail as soon as it opens on it, seconds before anyone clicks, so it asks the server
// to read that exact prompt now (POST /v1/skills/{id}/read-ahead): the run sent later
// starts writing at once. Only for the embedded engine (a cloud model gains nothing), only
// after the mail has stayed open a moment (flicking through mail reads nothing), once per
// prompt, and silently: a read-ahead is a hint, never an error the user sees.
// Pure apart from the timer it is given (unit-tested in tests/readahead.test.mjs).
import { runBody } from "./actions.js";

export const DELAY_MS = 800;

/** The values an action's form starts with (a draft's notes are still empty). */
export function startValues(action) {
  return Object.fromEntries((action.fields || []).map((f) => [f.name, f.value ?? ""]));
}

export function createReadAhead({ api, host, delayMs = DELAY_MS, timers = globalThis }) {
  let enabled = false;
  let timer = null;
  let last = "";

  async function now(action) {
    if (!enabled || !action) return null;
    try {
      const body = runBody(await action.inputs(host, startValues(action)));
      const key = JSON.stringify([action.skill, body]);
      if (key === last) return null; // already read: the server's cache keeps it
      last = key;
      return await api.readAhead(action.skill, body);
    } catch {
      return null; // an empty message, a busy or unreachable server: the run will say
    }
  }

  return {
    /** Turn on once the server says its engine is the embedded model. */
    enable(engine) {
      enabled = engine === "embedded";
    },
    /** Read ``action``'s prompt after a short pause, unless something else is asked first. */
    schedule(action) {
      if (!enabled || !action) return;
      timers.clearTimeout(timer);
      timer = timers.setTimeout(() => {
        timer = null;
        now(action);
      }, delayMs);
    },
    cancel() {
      timers.clearTimeout(timer);
      timer = null;
    },
    now,
  };
}
