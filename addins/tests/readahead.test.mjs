// Reading ahead: the pane asks the server to read a mail's prompt once the mail has been
// open a moment, only for the embedded engine, once per prompt, and never shows an error.
import assert from "node:assert/strict";
import { test } from "node:test";
import { actionsFor } from "../office/actions.js";
import { createReadAhead, startValues } from "../office/readahead.js";

/** Timers run by hand: `fire()` runs what is due. */
function fakeTimers() {
  let next = 1;
  const due = new Map();
  return {
    setTimeout(fn) {
      due.set(next, fn);
      return next++;
    },
    clearTimeout(id) {
      due.delete(id);
    },
    async fire() {
      const fns = [...due.values()];
      due.clear();
      for (const fn of fns) await fn();
      await new Promise((resolve) => setImmediate(resolve));
    },
    pending: () => due.size,
  };
}

function outlook(mail) {
  return {
    kind: "outlook",
    mode: "read",
    readItem: async () => ({ subject: "Atlas", from: "Maria", text: mail.text }),
  };
}

function recordingApi({ fail = false } = {}) {
  const calls = [];
  return {
    calls,
    readAhead: async (skill, body) => {
      calls.push({ skill, body });
      if (fail) throw new Error("busy server");
      return { status: "read" };
    },
  };
}

test("a mail left open is read ahead once, for the summary the pane would ask for", async () => {
  const mail = { text: "The go-live moves to 21 March." };
  const host = outlook(mail);
  const api = recordingApi();
  const timers = fakeTimers();
  const ahead = createReadAhead({ api, host, timers });
  const [summarise] = actionsFor(host);

  ahead.schedule(summarise);
  await timers.fire();
  assert.equal(api.calls.length, 0, "off until the server says its engine is embedded");

  ahead.enable("embedded");
  ahead.schedule(summarise);
  ahead.schedule(summarise); // flicking: one timer, not two
  assert.equal(timers.pending(), 1);
  await timers.fire();
  assert.deepEqual(api.calls, [
    { skill: "summarise", body: { inputs: { text: "Subject: Atlas\nFrom: Maria\n\nThe go-live moves to 21 March." } } },
  ]);

  ahead.schedule(summarise); // the same mail again: already read
  await timers.fire();
  assert.equal(api.calls.length, 1);

  mail.text = "Another mail."; // the next mail opens
  ahead.schedule(summarise);
  await timers.fire();
  assert.equal(api.calls.length, 2);
});

test("a reply is read ahead with the form's starting values, and a run cancels a pending read", async () => {
  const host = outlook({ text: "Can you confirm 7 March?" });
  const api = recordingApi();
  const timers = fakeTimers();
  const ahead = createReadAhead({ api, host, timers });
  ahead.enable("embedded");
  const reply = actionsFor(host).find((a) => a.id === "reply");
  assert.deepEqual(startValues(reply), { notes: "", tone: "neutral" });

  ahead.schedule(reply);
  ahead.cancel();
  await timers.fire();
  assert.equal(api.calls.length, 0);

  ahead.schedule(reply);
  await timers.fire();
  assert.equal(api.calls[0].skill, "draft");
  assert.deepEqual(api.calls[0].body.inputs, {
    kind: "reply", message: "Subject: Atlas\nFrom: Maria\n\nCan you confirm 7 March?", notes: "", tone: "neutral",
  });
});

test("other engines read nothing, and failures stay silent", async () => {
  const host = outlook({ text: "" });
  const timers = fakeTimers();
  for (const engine of ["llm", "local", undefined]) {
    const api = recordingApi();
    const ahead = createReadAhead({ api, host, timers });
    ahead.enable(engine);
    ahead.schedule(actionsFor(host)[0]);
    await timers.fire();
    assert.equal(api.calls.length, 0);
  }
  const api = recordingApi({ fail: true });
  const ahead = createReadAhead({ api, host: outlook({ text: "Hello." }), timers });
  ahead.enable("embedded");
  assert.equal(await ahead.now(actionsFor(host)[0]), null); // the server failed: no error
  // An empty mail is not sent at all (the run will say what is wrong).
  const empty = createReadAhead({ api, host, timers });
  empty.enable("embedded");
  const sent = api.calls.length;
  assert.equal(await empty.now(actionsFor(host)[0]), null);
  assert.equal(api.calls.length, sent);
});
