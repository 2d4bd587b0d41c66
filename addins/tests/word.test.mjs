// Every Word call the pane makes, against office-addin-mock's Word object model: a property
// read without load() + sync() is an error string there, so a forgotten load shows up.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OfficeMockObject } from "office-addin-mock";
import { HostError, detectHost, wordHost } from "../office/host.js";

const CITATIONS = [
  { n: 1, title: "budget.md", where: "section Travel", link: "file:///docs/budget.md" },
  { n: 2, title: "atlas.md", where: "paragraph 3", link: "https://contoso.sharepoint.com/atlas" },
];

/** A range that records what is written into it (writes need no load/sync). */
function writable(name, text, calls) {
  return {
    insertText(value, location) {
      calls.push([`${name}.insertText`, value, location]);
      return writable("inserted", value, calls);
    },
    insertParagraph(value, location) {
      calls.push([`${name}.insertParagraph`, value, location]);
      return writable("paragraph", value, calls);
    },
    insertComment(value) {
      calls.push([`${name}.insertComment`, value]);
    },
    insertFootnote(value) {
      calls.push([`${name}.insertFootnote`, value]);
    },
    search(value, options) {
      calls.push([`${name}.search`, value, options]);
      const items = text.split(value).slice(1).map(() => writable("marker", value, calls));
      return { items, load: () => calls.push([`${name}.search.load`]) };
    },
  };
}

/** Word with a selection and a body; `wordApi` is the highest WordApi version supported. */
function word({ selection = "", body = "", wordApi = "1.5" } = {}) {
  const calls = [];
  const context = new OfficeMockObject({
    document: {
      selection: { text: selection },
      body: { text: body },
      getSelection() {
        calls.push(["document.getSelection"]);
        return Object.assign(this.selection, writable("selection", selection, calls));
      },
    },
  }, "word");
  const originalSync = context.sync.bind(context);
  context.sync = async () => {
    calls.push(["context.sync"]);
    return originalSync();
  };
  const Word = { run: async (batch) => batch(context) };
  const Office = {
    context: {
      requirements: {
        isSetSupported: (set, version) => set === "WordApi" && Number(version) <= Number(wordApi),
      },
    },
  };
  return { host: wordHost({ Office, Word }), calls, Office, Word };
}

const names = (calls) => calls.map((c) => c[0]);

test("reads the selection and the whole body (load, then sync)", async () => {
  const { host } = word({ selection: "Revenue rose 12%.", body: "Whole report." });
  assert.equal(await host.readSelection(), "Revenue rose 12%.");
  assert.equal(await host.readDocument(), "Whole report.");
});

test("an empty selection reads as an empty string", async () => {
  const { host } = word({ selection: "" });
  assert.equal(await host.readSelection(), "");
});

test("insert at the cursor puts the text after the selection", async () => {
  const { host, calls } = word({ selection: "x" });
  const { note } = await host.insert("Summary [1].", { where: "cursor" });
  assert.deepEqual(calls.find((c) => c[0] === "selection.insertText"), ["selection.insertText", "Summary [1].", "After"]);
  assert.equal(names(calls).at(-1), "context.sync");
  assert.match(note, /cursor/);
});

test("replace selection replaces it", async () => {
  const { host, calls } = word({ selection: "old text" });
  await host.insert("New text.", { where: "replace" });
  assert.deepEqual(calls.find((c) => c[0] === "selection.insertText"), ["selection.insertText", "New text.", "Replace"]);
});

test("add as comment puts text and sources in a comment, leaving the document text alone", async () => {
  const { host, calls } = word({ selection: "the paragraph" });
  await host.insert("Looks right [1].", { where: "comment", sources: CITATIONS.slice(0, 1) });
  const comment = calls.find((c) => c[0] === "selection.insertComment");
  assert.match(comment[1], /^Looks right \[1\]\.\n\nSources\n\[1\] budget\.md, section Travel — file:\/\/\/docs\/budget\.md$/);
  assert.ok(!names(calls).includes("selection.insertText"));
});

test("comments need WordApi 1.4: an older Word gets a plain error", async () => {
  const { host } = word({ wordApi: "1.3" });
  await assert.rejects(host.insert("x", { where: "comment" }), (e) => e instanceof HostError && /comments/.test(e.message));
});

test("sources as a list: a Sources heading then one paragraph per source, in order", async () => {
  const { host, calls } = word();
  await host.insert("A [1]. B [2].", { sources: CITATIONS, sourcesAs: "list" });
  const paragraphs = calls.filter((c) => c[0].endsWith(".insertParagraph")).map((c) => [c[0], c[1], c[2]]);
  assert.deepEqual(paragraphs, [
    ["inserted.insertParagraph", "Sources", "After"],
    ["paragraph.insertParagraph", "[1] budget.md, section Travel — file:///docs/budget.md", "After"],
    ["paragraph.insertParagraph", "[2] atlas.md, paragraph 3 — https://contoso.sharepoint.com/atlas", "After"],
  ]);
});

test("sources as footnotes: each [n] marker becomes a footnote (WordApi 1.5)", async () => {
  const { host, calls } = word({ wordApi: "1.5" });
  const { note } = await host.insert("A [1]. B [2]. Again [1].", { sources: CITATIONS, sourcesAs: "footnotes" });
  assert.deepEqual(calls.filter((c) => c[0] === "inserted.search").map((c) => c[1]), ["[1]", "[2]"]);
  const footnotes = calls.filter((c) => c[0] === "marker.insertFootnote").map((c) => c[1]);
  assert.deepEqual(footnotes, [
    "budget.md, section Travel — file:///docs/budget.md",
    "budget.md, section Travel — file:///docs/budget.md",
    "atlas.md, paragraph 3 — https://contoso.sharepoint.com/atlas",
  ]);
  // the marker text is replaced by the footnote's reference mark
  assert.equal(calls.filter((c) => c[0] === "marker.insertText" && c[1] === "" && c[2] === "Replace").length, 3);
  // the search results are loaded and synced before they are used
  const order = names(calls);
  assert.ok(order.indexOf("inserted.search.load") < order.indexOf("marker.insertFootnote"));
  assert.ok(!order.some((n) => n.endsWith("insertParagraph")));
  assert.match(note, /footnotes/);
});

test("footnotes fall back to a list on Word without WordApi 1.5, and say so", async () => {
  const { host, calls } = word({ wordApi: "1.4" });
  const { note } = await host.insert("A [1].", { sources: CITATIONS.slice(0, 1), sourcesAs: "footnotes" });
  assert.ok(!names(calls).includes("inserted.search"));
  assert.ok(names(calls).includes("inserted.insertParagraph"));
  assert.match(note, /as a list/);
});

test("no sources: only the text", async () => {
  const { host, calls } = word();
  await host.insert("Just text.", { sources: [], sourcesAs: "list" });
  assert.deepEqual(names(calls).filter((n) => n.includes("insert")), ["selection.insertText"]);
});

test("detectHost picks Word when Office says so, else the preview host", () => {
  const { Office, Word } = word();
  assert.equal(detectHost({ host: "Word" }, { Office, Word }).kind, "word");
  assert.equal(detectHost({ host: null }, { Office, Word }).kind, "preview");
  assert.equal(detectHost(undefined, {}).kind, "preview");
});
