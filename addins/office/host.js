// The Office adapter: every Word and Outlook call the pane makes, behind one small interface,
// so the UI never touches Office.js and each call is unit-tested with office-addin-mock.
//
//   host.kind        "word" | "outlook" | "preview" (a plain browser, no Office)
//   host.mode        "edit" (Word, preview) | "read" | "compose" (Outlook)
//   host.surface     the surface skills declare ("word" | "outlook")
//   readSelection()  the selected text ("" when nothing is selected)
//   readDocument()   the whole document, or the mail item's body
//   readItem()       Outlook: {subject, from, text}
//   insert(text, {where: "cursor"|"replace"|"comment", sources, sourcesAs: "list"|"footnotes"})
//   openReply(text)  Outlook read: the reply form pre-filled (the user sends it, never us)
//   applyDraft(text, {where: "body"|"cursor"})  Outlook compose
//
// Nothing here runs on its own: each call follows a click in the pane.

import { sourceLine, textToHtml, withSourceList } from "./text.js";

/** An error from Office, in words for the person using the pane. */
export class HostError extends Error {
  constructor(message) {
    super(message);
    this.name = "HostError";
  }
}

function supports(Office, set, version) {
  try {
    return Boolean(Office?.context?.requirements?.isSetSupported(set, version));
  } catch {
    return false;
  }
}

/** Pick the adapter for where the pane runs (`info` is what Office.onReady resolved to). */
export function detectHost(info, { Office, Word, previewDoc } = {}) {
  const host = info?.host;
  if (host === "Word" && Word) return wordHost({ Office, Word });
  if (host === "Outlook" && Office?.context?.mailbox?.item) return outlookHost({ Office });
  return previewHost(previewDoc);
}

/** Word, through Word.run batches. */
export function wordHost({ Office, Word }) {
  async function readRange(pick) {
    return Word.run(async (context) => {
      const range = pick(context);
      range.load("text");
      await context.sync();
      return typeof range.text === "string" ? range.text : "";
    });
  }

  async function insert(text, { where = "cursor", sources = [], sourcesAs = "list" } = {}) {
    return Word.run(async (context) => {
      const selection = context.document.getSelection();
      if (where === "comment") {
        if (!supports(Office, "WordApi", "1.4")) {
          throw new HostError("This version of Word cannot add comments: use Insert instead.");
        }
        selection.insertComment(withSourceList(text, sources));
        await context.sync();
        return { note: "Added as a comment on the selection." };
      }
      const inserted = selection.insertText(text, where === "replace" ? "Replace" : "After");
      let note = where === "replace" ? "Replaced the selection." : "Inserted at the cursor.";
      let asList = sources.length > 0;
      if (sources.length && sourcesAs === "footnotes") {
        if (supports(Office, "WordApi", "1.5")) {
          await addFootnotes(context, inserted, sources);
          asList = false;
          note += " Sources added as footnotes.";
        } else {
          note += " This version of Word has no footnote support: sources added as a list.";
        }
      }
      if (asList) {
        let last = inserted.insertParagraph("Sources", "After");
        for (const source of sources) last = last.insertParagraph(sourceLine(source), "After");
      }
      await context.sync();
      return { note };
    });
  }

  // Each "[n]" marker in the inserted text becomes a footnote holding source n.
  async function addFootnotes(context, inserted, sources) {
    const found = sources.map((source) => {
      const hits = inserted.search(`[${source.n}]`, { matchCase: true });
      hits.load("items");
      return { source, hits };
    });
    await context.sync();
    for (const { source, hits } of found) {
      for (const marker of hits.items || []) {
        marker.insertFootnote(sourceLine(source).replace(/^\[\d+\] /, ""));
        marker.insertText("", "Replace"); // the reference mark replaces "[n]"
      }
    }
  }

  return {
    kind: "word",
    mode: "edit",
    surface: "word",
    canFootnote: () => supports(Office, "WordApi", "1.5"),
    readSelection: () => readRange((context) => context.document.getSelection()),
    readDocument: () => readRange((context) => context.document.body),
    insert,
  };
}

/** Outlook, through the mailbox item's callback APIs (wrapped in promises). */
export function outlookHost({ Office }) {
  // A pinned pane stays open while the user moves between messages: always ask for the
  // item that is open now, never keep the one the pane started with.
  const current = () => Office.context.mailbox.item;
  const mode = typeof current().displayReplyForm === "function" ? "read" : "compose";
  const text = { coercionType: Office.CoercionType.Text };

  function call(start) {
    return new Promise((resolve, reject) => {
      start((result) => {
        if (result?.status === Office.AsyncResultStatus.Succeeded) resolve(result.value);
        else reject(new HostError(`Outlook said: ${result?.error?.message || "the call failed"}.`));
      });
    });
  }

  async function readDocument() {
    const item = current();
    const body = await call((done) => item.body.getAsync(Office.CoercionType.Text, done));
    return typeof body === "string" ? body : "";
  }

  async function readSelection() {
    if (mode !== "compose") return "";
    const item = current();
    const selected = await call((done) => item.getSelectedDataAsync(Office.CoercionType.Text, done));
    return typeof selected?.data === "string" ? selected.data : "";
  }

  async function readItem() {
    const item = current();
    let subject = item.subject;
    if (subject && typeof subject.getAsync === "function") subject = await call((d) => subject.getAsync(d));
    const from = item.from?.displayName || item.from?.emailAddress || "";
    return { subject: typeof subject === "string" ? subject : "", from, text: await readDocument() };
  }

  function openReply(replyText) {
    if (mode !== "read") throw new HostError("Open a received message to reply to it.");
    // displayReplyForm takes HTML: escape the text so nothing in it becomes markup.
    current().displayReplyForm({ htmlBody: textToHtml(replyText) });
    return { note: "The reply is open: review it and send it yourself." };
  }

  async function applyDraft(draft, { where = "body" } = {}) {
    if (mode !== "compose") throw new HostError("Open a message you are writing to change it.");
    const body = current().body;
    if (where === "cursor") await call((done) => body.setSelectedDataAsync(draft, text, done));
    else await call((done) => body.setAsync(draft, text, done));
    return { note: where === "cursor" ? "Inserted at the cursor." : "Replaced the draft." };
  }

  /** Call back when the user opens another message (pinned pane); false if unsupported.
   *  One Office handler serves every listener (the result panel, the read-ahead). */
  const itemListeners = [];
  function onItemChanged(callback) {
    const mailbox = Office.context.mailbox;
    if (typeof mailbox.addHandlerAsync !== "function" || !Office.EventType?.ItemChanged) return false;
    if (!itemListeners.length) {
      mailbox.addHandlerAsync(Office.EventType.ItemChanged, () => {
        for (const listener of itemListeners) listener();
      });
    }
    itemListeners.push(callback);
    return true;
  }

  return {
    kind: "outlook",
    mode,
    surface: "outlook",
    readSelection,
    readDocument,
    readItem,
    openReply,
    applyDraft,
    onItemChanged,
  };
}

/** A plain browser: a text box stands in for the document, so the pane can be tried out. */
export function previewHost(box) {
  const doc = box || { value: "", selectionStart: 0, selectionEnd: 0 };
  return {
    kind: "preview",
    mode: "edit",
    surface: "word",
    canFootnote: () => false,
    readSelection: async () => doc.value.slice(doc.selectionStart, doc.selectionEnd),
    readDocument: async () => doc.value,
    insert: async (text, { where = "cursor", sources = [] } = {}) => {
      const full = withSourceList(text, sources);
      const start = where === "replace" ? doc.selectionStart : doc.selectionEnd;
      doc.value = doc.value.slice(0, start) + full + doc.value.slice(doc.selectionEnd);
      return { note: "Preview mode: added to the text box (open the pane in Word to insert)." };
    },
  };
}
