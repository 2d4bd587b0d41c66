// Every Outlook call the pane makes, against office-addin-mock's Outlook object model.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OfficeMockObject } from "office-addin-mock";
import { HostError, detectHost, outlookHost } from "../office/host.js";

const ENUMS = {
  CoercionType: { Text: "text", Html: "html" },
  AsyncResultStatus: { Succeeded: "succeeded", Failed: "failed" },
};
const ok = (value) => ({ status: "succeeded", value });

/** Outlook with one item open in read mode (a received message) or compose mode (a draft). */
function outlook({ mode = "read", body = "", subject = "Q3 budget", fail = false } = {}) {
  const calls = [];
  const answer = (callback, value) =>
    callback(fail ? { status: "failed", error: { message: "The item was moved" } } : ok(value));
  const item = {
    itemType: "message",
    body: {
      getAsync(coercion, callback) {
        calls.push(["body.getAsync", coercion]);
        answer(callback, body);
      },
    },
  };
  if (mode === "read") {
    item.subject = subject;
    item.from = { displayName: "Anna Berg", emailAddress: "anna@contoso.com" };
    item.displayReplyForm = (form) => calls.push(["item.displayReplyForm", form]);
  } else {
    item.subject = { getAsync: (callback) => answer(callback, subject) };
    item.getSelectedDataAsync = (coercion, callback) => {
      calls.push(["item.getSelectedDataAsync", coercion]);
      answer(callback, { data: "selected words" });
    };
    item.body.setAsync = (data, options, callback) => {
      calls.push(["body.setAsync", data, options]);
      answer(callback);
    };
    item.body.setSelectedDataAsync = (data, options, callback) => {
      calls.push(["body.setSelectedDataAsync", data, options]);
      answer(callback);
    };
  }
  const Office = new OfficeMockObject({ ...ENUMS, context: { mailbox: { item } } }, "outlook");
  return { host: outlookHost({ Office }), calls, Office };
}

test("read mode: the item's subject, sender and body (as text)", async () => {
  const { host, calls } = outlook({ body: "Could you send the figures?" });
  assert.equal(host.mode, "read");
  assert.equal(host.surface, "outlook");
  assert.deepEqual(await host.readItem(), {
    subject: "Q3 budget",
    from: "Anna Berg",
    text: "Could you send the figures?",
  });
  assert.deepEqual(calls, [["body.getAsync", "text"]]);
});

test("draft reply opens the reply form pre-filled, with the text escaped as HTML", async () => {
  const { host, calls } = outlook();
  const { note } = host.openReply('Dear Anna,\nyes <b>"done"</b> & sent <img src=x onerror=alert(1)>');
  const [name, form] = calls.at(-1);
  assert.equal(name, "item.displayReplyForm");
  assert.equal(
    form.htmlBody,
    "Dear Anna,<br>yes &lt;b&gt;&quot;done&quot;&lt;/b&gt; &amp; sent &lt;img src=x onerror=alert(1)&gt;",
  );
  assert.match(note, /send it yourself/); // the pane never sends
});

test("a failed Office call becomes a plain error", async () => {
  const { host } = outlook({ fail: true });
  await assert.rejects(host.readDocument(), (e) => e instanceof HostError && /moved/.test(e.message));
});

test("compose mode: reads the draft being written (body.getAsync) and the selection", async () => {
  const { host, calls } = outlook({ mode: "compose", body: "hi, pls send numbers asap" });
  assert.equal(host.mode, "compose");
  assert.equal(await host.readDocument(), "hi, pls send numbers asap");
  assert.equal(await host.readSelection(), "selected words");
  assert.equal((await host.readItem()).subject, "Q3 budget"); // subject.getAsync in compose
  assert.deepEqual(calls.map((c) => c[0]), ["body.getAsync", "item.getSelectedDataAsync", "body.getAsync"]);
});

test("Improve draft: Apply replaces the body, or inserts at the cursor, as text", async () => {
  const { host, calls } = outlook({ mode: "compose" });
  assert.match((await host.applyDraft("Hello Anna,\nplease find…", { where: "body" })).note, /Replaced/);
  assert.deepEqual(calls.at(-1), ["body.setAsync", "Hello Anna,\nplease find…", { coercionType: "text" }]);
  await host.applyDraft("one line", { where: "cursor" });
  assert.deepEqual(calls.at(-1), ["body.setSelectedDataAsync", "one line", { coercionType: "text" }]);
});

test("read-only and compose-only calls refuse in the other mode", async () => {
  const read = outlook().host;
  await assert.rejects(read.applyDraft("x"), HostError);
  assert.equal(await read.readSelection(), "");
  const compose = outlook({ mode: "compose" }).host;
  assert.throws(() => compose.openReply("x"), HostError);
});

test("detectHost picks Outlook when a mail item is open", () => {
  const { Office } = outlook();
  assert.equal(detectHost({ host: "Outlook" }, { Office }).kind, "outlook");
  assert.equal(detectHost({ host: "Outlook" }, { Office: { context: {} } }).kind, "preview");
});

test("a pinned pane always reads the message that is open now (ItemChanged)", async () => {
  const first = outlook({ body: "first message" });
  const handlers = [];
  const { Office, host } = first;
  Office.EventType = { ItemChanged: "olkItemSelectedChanged" };
  Office.context.mailbox.addHandlerAsync = (type, handler) => handlers.push([type, handler]);
  let changed = 0;
  assert.equal(host.onItemChanged(() => (changed += 1)), true);
  assert.equal(await host.readDocument(), "first message");
  const second = outlook({ body: "second message" }).Office.context.mailbox.item;
  Office.context.mailbox.item = second;
  handlers[0][1]();
  assert.equal(changed, 1);
  assert.equal(handlers[0][0], "olkItemSelectedChanged");
  assert.equal(await host.readDocument(), "second message");
});
