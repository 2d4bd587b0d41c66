// The pane's pure parts: text helpers, the generated form, the quick actions, sign-in.
import assert from "node:assert/strict";
import { test } from "node:test";
import { actionsFor, readScoped, runBody } from "../office/actions.js";
import { createAuth } from "../office/auth.js";
import { fieldsFor, parseChoices, valuesOf } from "../office/form.js";
import { previewHost } from "../office/host.js";
import { citedNumbers, lineSpan, lineText, progressNote, safeHref, sentimentText, sourceLine, textToHtml } from "../office/text.js";

test("only safe link schemes become links", () => {
  assert.equal(safeHref("https://contoso.sharepoint.com/a b"), "https://contoso.sharepoint.com/a%20b");
  assert.equal(safeHref("file:///docs/budget.md"), "file:///docs/budget.md");
  assert.equal(safeHref("ms-word:ofe|u|https://x/y.docx"), "ms-word:ofe|u|https://x/y.docx");
  for (const bad of ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<b>", "", null, "not a url"]) {
    assert.equal(safeHref(bad), null, String(bad));
  }
});

test("text to HTML escapes everything and keeps line breaks", () => {
  assert.equal(textToHtml(`a<script>"x"</script>&'\nb`), "a&lt;script&gt;&quot;x&quot;&lt;/script&gt;&amp;&#39;<br>b");
});

test("source lines, sentiment text, cited numbers", () => {
  assert.equal(sourceLine({ n: 2, title: "a.md", where: "page 3", link: "javascript:x" }), "[2] a.md, page 3");
  const data = { label: "mixed", score: 0.1, aspects: [{ aspect: "screen", label: "positive", evidence: "gorgeous" }] };
  assert.equal(sentimentText(data), "Sentiment: mixed (score 0.10)\n- screen — positive: “gorgeous”");
  assert.equal(sentimentText({ aspects: "junk" }), "");
  assert.deepEqual(citedNumbers("a [2] b [1][2] c [x]"), [2, 1]);
});

test("line spans select the reported line (clamped to the text)", () => {
  const text = "---\nname: x\n  tsak: ask\n---";
  assert.deepEqual(lineSpan(text, 3), [12, 23]);
  assert.equal(text.slice(...lineSpan(text, 3)), "  tsak: ask");
  assert.deepEqual(lineSpan(text, 99), [24, 27]);
  assert.equal(lineText(text, 2), "name: x");
  assert.equal(lineText(text, 0), "");
});

test("the form follows the skill's typed inputs (choices from the description)", () => {
  assert.deepEqual(parseChoices('"neutral, formal, friendly, concise or apologetic"'), ["neutral", "formal", "friendly", "concise", "apologetic"]);
  assert.equal(parseChoices("What you want to say, in a few words."), null);
  const fields = fieldsFor([
    { name: "text", type: "string", description: "The text to summarise.", default: "", required: false },
    { name: "tone", type: "string", description: "neutral, formal or friendly", default: "formal", required: false },
    { name: "max_items", type: "number", description: "At most this many.", default: 5, required: true },
    { name: "combine", type: "boolean", description: "Set by the copilot when it joins summaries.", default: false, required: false },
    { name: "strict", type: "boolean", description: "Only facts.", default: true, required: false },
    { name: "tags", type: "array", description: "Labels.", default: null, required: false },
  ]);
  assert.deepEqual(fields.map((f) => [f.name, f.control, f.label]), [
    ["text", "textarea", "Text"],
    ["tone", "select", "Tone"],
    ["max_items", "number", "Max items"],
    ["strict", "checkbox", "Strict"],
    ["tags", "json", "Tags"],
  ]);
  assert.equal(fields[0].fromDocument, true);
  assert.equal(fields[0].help, "The text to summarise.");
  assert.equal(fields[1].value, "formal");
  assert.equal(fields[2].required, true);
  const inputs = valuesOf(fields, { text: "hi", tone: "friendly", max_items: "3", strict: false, tags: '["a"]' });
  assert.deepEqual(inputs, { text: "hi", tone: "friendly", max_items: 3, strict: false, tags: ["a"] });
  assert.throws(() => valuesOf(fields, { tags: "[oops" }), /Tags: enter valid JSON/);
});

test("Word quick actions read the selection, or the whole document when nothing is selected", async () => {
  const box = { value: "Intro. Key point. End.", selectionStart: 7, selectionEnd: 17 };
  const host = previewHost(box);
  const [summarise, draft, sentiment, ask] = actionsFor(host);
  assert.deepEqual([summarise.skill, draft.skill, sentiment.skill, ask.skill], ["summarise", "draft", "sentiment", "ask"]);
  assert.deepEqual(await summarise.inputs(host, { scope: "selection" }), { text: "Key point." });
  assert.deepEqual(await summarise.inputs(host, { scope: "whole document" }), { text: "Intro. Key point. End." });
  box.selectionEnd = 7;
  assert.equal(await readScoped(host, "selection"), "Intro. Key point. End.");
  box.value = "  ";
  await assert.rejects(sentiment.inputs(host, {}), /no text to work on/);
  await assert.rejects(ask.inputs(host, { question: " " }), /type a question/);
});

test("Draft: a section from notes, or a rewrite of the selection in a tone (no retrieval)", async () => {
  const host = previewHost({ value: "We was late.", selectionStart: 0, selectionEnd: 12 });
  const draft = actionsFor(host)[1];
  const section = runBody(await draft.inputs(host, { what: "a section from my notes", notes: "risks", tone: "formal" }));
  assert.deepEqual(section, { inputs: { kind: "section", notes: "risks", tone: "formal" } });
  const rewrite = runBody(await draft.inputs(host, { what: "a rewrite of the selection", notes: "", tone: "friendly" }));
  assert.equal(rewrite.retrieval, false);
  assert.equal(rewrite.inputs.message, "We was late.");
  assert.match(rewrite.inputs.notes, /friendly tone/);
});

test("Outlook quick actions: thread summary and reply use the item; compose improves the body", async () => {
  const item = { subject: "Launch", from: "Bob", text: "Can we move it?" };
  const read = { kind: "outlook", mode: "read", readItem: async () => item };
  const [summary, reply, sentiment] = actionsFor(read);
  assert.equal(summary.label, "Summarise thread");
  assert.deepEqual(await summary.inputs(read, {}), { text: "Subject: Launch\nFrom: Bob\n\nCan we move it?" });
  const made = await reply.inputs(read, { notes: "yes, to May", tone: "friendly" });
  assert.equal(reply.reply, true);
  assert.equal(made.kind, "reply");
  assert.match(made.message, /Can we move it\?/);
  assert.equal(sentiment.skill, "sentiment");
  const compose = { kind: "outlook", mode: "compose", readDocument: async () => "pls fix asap" };
  const [improve] = actionsFor(compose);
  const body = runBody(await improve.inputs(compose, { tone: "formal" }));
  assert.equal(body.inputs.message, "pls fix asap");
  assert.equal(body.retrieval, false);
});

test("sign-in: dev user from the address, NAA with MSAL, Office SSO, or an explanation", async () => {
  const dev = await createAuth({ params: new URLSearchParams("dev=anna") });
  assert.equal(dev.mode, "dev");
  assert.equal(await dev.getToken(), "dev:anna");
  await assert.rejects(createAuth({ params: new URLSearchParams("dev=a b") }), /not a valid/);

  const Office = { context: { requirements: { isSetSupported: (set) => set === "NestedAppAuth" } } };
  const requests = [];
  const msal = {
    createNestablePublicClientApplication: async (config) => {
      requests.push(config);
      return {
        acquireTokenSilent: async () => { throw new Error("interaction_required"); },
        acquireTokenPopup: async ({ scopes }) => ({ accessToken: `token for ${scopes[0]}` }),
      };
    },
  };
  const config = { clientId: "app-id", scopes: ["api://app-id/access_as_user"] };
  const naa = await createAuth({ config, Office, loadMsal: async () => msal });
  assert.equal(naa.mode, "naa");
  assert.equal(await naa.getToken(), "token for api://app-id/access_as_user");
  assert.equal(requests[0].auth.clientId, "app-id");

  const OfficeRuntime = { auth: { getAccessToken: async () => "sso-token" } };
  const sso = await createAuth({ config, Office, OfficeRuntime, loadMsal: async () => { throw new Error("blocked"); } });
  assert.equal(sso.mode, "sso");
  assert.equal(await sso.getToken(), "sso-token");

  const none = await createAuth({ fetchImpl: async () => ({ ok: false }) });
  assert.equal(none.mode, "none");
  assert.equal(await none.getToken(), null);
  assert.match(none.explain, /\?dev=anna/);

  // An API in development mode lists its users (the CLI's among them): the pane offers them.
  const asked = [];
  const listing = async (url) => {
    asked.push(url);
    return { ok: true, json: async () => ({ users: ["ann", "bob", "<script>"] }) };
  };
  const pick = await createAuth({ config: { apiBase: "http://127.0.0.1:8765" }, fetchImpl: listing });
  assert.deepEqual(asked, ["http://127.0.0.1:8765/v1/dev/users"]);
  assert.deepEqual(pick.devUsers, ["ann", "bob"]);
  assert.match(pick.explain, /\?dev=ann, \?dev=bob/);
});

test("progress events read as the CLI says them; the answer's own events say nothing", () => {
  assert.equal(progressNote("queue", { position: 1 }), "waiting for the model: 1 answer ahead");
  assert.equal(progressNote("progress", { phase: "part", step: 2, steps: 5 }), "reading the document in parts: part 2 of 5");
  assert.equal(progressNote("progress", { phase: "combine", step: 1, steps: 2 }), "combining the summaries of the parts: 1 of 2");
  assert.equal(progressNote("writing", { characters: 120 }), "writing the answer…");
  assert.equal(progressNote("delta", { text: "x" }), "");
  assert.equal(progressNote("progress", null), "");
});
