// The Fluent pane's pure parts: theme choice, the version diff, the conversation body,
// citations split into cited and "more", template errors said once, the streaming
// typewriter, and the page itself (local Fluent, no inline script or handler).
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { MAX_TURNS, actionsFor, conversationBody } from "../office/actions.js";
import { diffHunks, lineDiff } from "../office/diff.js";
import { chooseLook, luminance } from "../office/look.js";
import { createTypewriter } from "../office/result.js";
import { citationLabel, splitSources, templateMessage } from "../office/text.js";

const office = new URL("../office/", import.meta.url);

test("forced colours win, then Office's theme with its colours, then the system", () => {
  const dark = { bodyBackgroundColor: "#292929", bodyForegroundColor: "#f0f0f0" };
  assert.deepEqual(chooseLook({ officeTheme: dark, forcedColors: true }), { name: "contrast", overrides: {} });
  assert.deepEqual(chooseLook({ officeTheme: dark }), {
    name: "dark",
    overrides: { colorNeutralBackground1: "#292929", colorNeutralForeground1: "#f0f0f0" },
  });
  assert.equal(chooseLook({ officeTheme: { bodyBackgroundColor: "#ffffff" }, prefersDark: true }).name, "light");
  assert.equal(chooseLook({ prefersDark: true }).name, "dark");
  assert.equal(chooseLook({}).name, "light");
  // A colour that is not #rrggbb is never passed on as a token value.
  assert.deepEqual(chooseLook({ officeTheme: { bodyBackgroundColor: "red;x" }, prefersDark: true }),
    { name: "dark", overrides: {} });
  assert.equal(luminance("#000000"), 0);
  assert.equal(luminance("nonsense"), null);
});

test("a line diff finds the changed lines and keeps the rest", () => {
  const before = "a\nb\nc\nd\ne";
  const after = "a\nB\nc\nd\ne\nf";
  const rows = lineDiff(before, after);
  assert.deepEqual(rows.filter((r) => r.op !== "same").map((r) => `${r.op}:${r.line}`), ["del:b", "add:B", "add:f"]);
  assert.equal(rows.filter((r) => r.op !== "add").map((r) => r.line).join("\n"), before);
  assert.equal(rows.filter((r) => r.op !== "del").map((r) => r.line).join("\n"), after);
  assert.deepEqual(lineDiff("same", "same"), [{ op: "same", line: "same", oldNo: 1, newNo: 1 }]);
});

test("hunks show the changes with context and count hidden lines", () => {
  const before = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join("\n");
  const after = before.replace("line 15", "line fifteen");
  const { rows, added, removed } = diffHunks(lineDiff(before, after), 2);
  assert.equal(added, 1);
  assert.equal(removed, 1);
  assert.deepEqual(rows[0], { op: "gap", count: 12 });
  assert.deepEqual(rows.at(-1), { op: "gap", count: 13 });
  assert.equal(rows.find((r) => r.op === "add").newNo, 15);
  assert.deepEqual(diffHunks(lineDiff("x", "x")).rows, []);
});

test("a follow-up sends the last turns, oldest first, within the API's limits", () => {
  const turns = Array.from({ length: 9 }, (_, i) => ({ question: `q${i}`, answer: "a".repeat(30000) }));
  const body = conversationBody({ inputs: { question: "and then?" } }, turns);
  assert.equal(body.conversation.length, MAX_TURNS);
  assert.equal(body.conversation[0].question, "q3");
  assert.equal(body.conversation.at(-1).answer.length, 20000);
  assert.deepEqual(conversationBody({ inputs: {} }, []), { inputs: {} });
  const ask = actionsFor({ kind: "word" }).find((a) => a.id === "ask");
  assert.equal(ask.conversation, true);
  assert.equal(ask.fields.length, 1); // one question box
});

test("only cited sources go under the answer; the rest are 'more', each once", () => {
  const done = {
    citations: [
      { n: 1, label: "Budget — Anna Berg, 3 Jul 2025", cited: true },
      { n: 3, title: "notes.md", where: "paragraph 2", cited: false },
    ],
    more_sources: [{ n: 3, title: "notes.md" }, { n: 4, label: "Tax form" }],
  };
  const { cited, more } = splitSources(done);
  assert.deepEqual(cited.map((c) => c.n), [1]);
  assert.deepEqual(more.map((c) => c.n), [3, 4]);
  assert.equal(citationLabel(cited[0]), "Budget — Anna Berg, 3 Jul 2025");
  assert.equal(citationLabel(more[0]), "notes.md — paragraph 2");
  assert.deepEqual(splitSources({}), { cited: [], more: [] });
});

test("a template error names its line once", () => {
  assert.equal(templateMessage("<string> line 52: unexpected 'tsak'", 52), "unexpected 'tsak'");
  assert.equal(templateMessage("my.prompty line 7: undefined variable: x", 7), "undefined variable: x");
  assert.equal(templateMessage("unknown field (at line 3)", 3), "unknown field");
  assert.equal(templateMessage("no line here", null), "no line here");
});

test("the typewriter shows pieces in order, one per tick, and says when it is done", async () => {
  const shown = [];
  const ticks = [];
  const typer = createTypewriter((t) => shown.push(t), {
    tick: 0,
    schedule: (fn) => {
      ticks.push(fn);
      return ticks.length;
    },
  });
  typer.push("One. ");
  typer.push("Two. ");
  typer.push("");
  const flushed = typer.flushed();
  while (ticks.length) ticks.shift()();
  await flushed;
  assert.deepEqual(shown, ["One. ", "Two. "]);
});

test("the page loads Fluent from vendor/, with no inline script or event handler", () => {
  const html = readFileSync(new URL("index.html", office), "utf8");
  assert.match(html, /<script type="module" src="vendor\/fluent\.js"><\/script>/);
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/); // every script has a src
  assert.doesNotMatch(html, /\son[a-z]+\s*=/i); // no onclick= and the like
  assert.doesNotMatch(html, /unpkg|jsdelivr|cdnjs/);
  // The document stand-in, the answer and the skill file: a question box is made by its
  // action's form, once.
  assert.equal((html.match(/<textarea/g) || []).length, 3);
});

test("npm ci vendored Fluent UI, its themes and the licences", async () => {
  const vendor = new URL("vendor/", office);
  assert.ok(existsSync(new URL("fluent.js", vendor)), "run npm ci in addins/");
  const themes = await import(new URL("fluent-themes.js", vendor).href);
  for (const name of ["webLightTheme", "webDarkTheme", "teamsHighContrastTheme"]) {
    assert.match(themes[name].colorNeutralBackground1, /^#[0-9a-f]{6}$/i, name);
  }
  const notices = readFileSync(new URL("THIRD-PARTY-NOTICES.txt", vendor), "utf8");
  assert.match(notices, /@fluentui\/web-components 3\.\d+\.\d+ \(MIT\)/);
  assert.match(notices, /Permission is hereby granted/);
});
