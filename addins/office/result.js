// The result of a run: text streamed into a live region as it is written, then an editable
// answer that grows with its text, the cited sources (the rest behind "More sources"), and
// what a click can do with it: insert it into Word, open it as a reply (drafts only),
// apply it to a draft; copy; feedback. In Ask, earlier turns stay above as a thread.

import { progressNote, sentimentText, splitSources } from "./text.js";
import { announce, clearError, el, renderCitations, renderSentiment, show, showError } from "./ui.js";

// Pieces of text that arrive together (the extractive engine's sentences) are shown one per
// tick, so the answer is seen being written; a long backlog is shown faster.
const TICK_MS = 45;

/** Show streamed pieces one by one; `flushed()` resolves once all are on screen. */
export function createTypewriter(write, { tick = TICK_MS, schedule = setTimeout } = {}) {
  const queue = [];
  let timer = null;
  let waiters = [];
  function step() {
    timer = null;
    const take = Math.max(1, Math.ceil(queue.length / 8));
    write(queue.splice(0, take).join(""));
    if (queue.length) timer = schedule(step, tick);
    else for (const resolve of waiters.splice(0)) resolve();
  }
  return {
    push(text) {
      if (!text) return;
      queue.push(text);
      if (timer === null) timer = schedule(step, queue.length === 1 ? 0 : tick);
    },
    flushed() {
      return queue.length || timer !== null ? new Promise((resolve) => waiters.push(resolve)) : Promise.resolve();
    },
    clear() {
      queue.length = 0;
      waiters.splice(0).forEach((resolve) => resolve());
    },
  };
}

/** Wire the result panel to its elements; returns {start, fail, open, clear}. */
export function createResult({ api, host, byId }) {
  const section = byId("result");
  const heading = byId("result-title");
  const thread = byId("thread");
  const question = byId("current-question");
  const stream = byId("stream");
  const output = byId("output");
  const outputRow = byId("output-row");
  const sources = byId("sources");
  const citations = byId("citations");
  const more = byId("more-sources");
  const moreList = byId("more-citations");
  const sentiment = byId("sentiment");
  const status = byId("status");
  const errorBox = byId("error");
  const stop = byId("stop");
  const apply = byId("apply");
  const thumbs = [byId("thumb-up"), byId("thumb-down")];
  let run = null; // {id, text, citations, controller, reply}
  const typer = createTypewriter((text) => stream.append(document.createTextNode(text)));

  const word = host.kind !== "outlook";
  const compose = host.kind === "outlook" && host.mode === "compose";
  show(byId("apply-word"), word);
  show(byId("insert"), word);
  show(byId("apply-body"), compose);
  show(byId("apply-cursor"), compose);
  autosize(output);

  /** Show the panel for `label` (a new conversation: no thread). */
  function open(label, { keepThread = false } = {}) {
    run?.controller.abort();
    run = null;
    typer.clear();
    section.hidden = false;
    heading.textContent = label;
    if (!keepThread) {
      thread.replaceChildren();
      thread.hidden = true;
    }
    question.hidden = true;
    stream.replaceChildren();
    stream.classList.remove("writing");
    output.value = "";
    show(outputRow, false);
    show(apply, false);
    show(sources, false);
    renderSentiment(sentiment, null);
    clearError(errorBox);
    announce(status, "");
    for (const thumb of thumbs) thumb.setAttribute("aria-pressed", "false");
  }

  /** Move the answer on screen (a finished turn) into the thread, above the next one. */
  function archive() {
    if (!run?.text) return;
    const item = el("li", {},
      el("p", { className: "question" }, el("span", { className: "visually-hidden" }, "You asked: "), run.question || ""),
      el("p", { className: "answer" }, output.value || run.text),
    );
    if (run.citations.length) {
      const list = el("ol", { className: "citations", attrs: { "aria-label": "Sources of this answer" } });
      renderCitations(list, run.citations);
      item.append(list);
    }
    thread.append(item);
    thread.hidden = false;
  }

  /**
   * Run a skill with streaming. `label` names it for the heading and the status; `reply`
   * offers "Open reply" (a drafted reply); `question` shows the question above the answer
   * and, with `followUp`, keeps the earlier turns as a thread.
   */
  async function start(skillId, body, { label, reply = false, question: asked = "", followUp = false } = {}) {
    if (followUp) archive();
    open(label, { keepThread: followUp });
    if (asked) {
      question.replaceChildren(el("span", { className: "visually-hidden" }, "You asked: "), asked);
      question.hidden = false;
    }
    const controller = new AbortController();
    run = { id: null, text: "", citations: [], controller, reply, question: asked };
    const mine = run;
    announce(status, `${label}: working…`);
    show(stop, true);
    show(byId("working"), true);
    stream.classList.add("writing");
    try {
      const done = await api.run(skillId, body, {
        signal: controller.signal,
        onSources: (found) => {
          if (run === mine) announce(status, `${label}: ${found.length} sources found, writing…`);
        },
        onDelta: (text) => {
          if (run === mine) typer.push(text);
        },
        onProgress: (event, data) => {
          const note = progressNote(event, data);
          // Said when it changes: a live region read aloud twice a second helps nobody.
          if (run === mine && note && status.textContent !== `${label}: ${note}`) announce(status, `${label}: ${note}`);
        },
      });
      if (run !== mine) return null;
      await typer.flushed();
      if (run !== mine) return null;
      return finish(done, label);
    } catch (error) {
      if (run !== mine) return null;
      if (error?.name === "AbortError") announce(status, `${label}: stopped.`);
      else fail(error);
      return null;
    } finally {
      if (run === mine) {
        show(stop, false);
        show(byId("working"), false);
        stream.classList.remove("writing");
      }
    }
  }

  function finish(done, label) {
    const data = done.data && typeof done.data === "object" ? done.data : null;
    const text = sentimentText(data) || done.text || "";
    const { cited, more: rest } = splitSources(done);
    run.id = done.run_id;
    run.text = text;
    run.citations = cited;
    stream.hidden = true; // the final text (invalid citations removed) replaces the stream
    output.value = text;
    show(outputRow, true);
    output.dispatchEvent(new Event("input")); // size it to its text
    renderSentiment(sentiment, data);
    renderCitations(citations, cited);
    renderCitations(moreList, rest, { cited: false });
    byId("more-sources-label").textContent = `More sources (${rest.length})`;
    more.open = false;
    show(more, rest.length > 0);
    show(sources, cited.length + rest.length > 0);
    show(byId("sources-h"), cited.length > 0);
    const sourcesSelect = byId("insert-sources");
    const linked = cited.some((c) => c.link || c.url);
    sourcesSelect.value = linked ? "list" : "none";
    show(byId("insert-sources-row"), cited.length > 0);
    show(byId("reply"), Boolean(run.reply) && host.kind === "outlook" && host.mode === "read");
    show(apply, Boolean(text));
    const n = cited.length;
    const note = done.note ? ` ${done.note}` : "";
    announce(status, `${label}: done${n ? `, ${n} source${n === 1 ? "" : "s"}` : ""}.${note}`);
    return { text, citations: cited };
  }

  function fail(error) {
    section.hidden = false;
    show(byId("working"), false);
    typer.clear();
    stream.classList.remove("writing");
    stream.hidden = stream.textContent === "";
    showError(errorBox, error);
    announce(status, "");
  }

  async function act(work) {
    clearError(errorBox);
    try {
      const { note } = (await work()) || {};
      if (note) announce(status, note);
    } catch (error) {
      fail(error);
    }
  }

  function sourcesToSend() {
    const how = byId("insert-sources").value;
    return how === "none" ? [] : run.citations;
  }

  byId("insert").addEventListener("click", () =>
    act(() =>
      host.insert(output.value, {
        where: byId("insert-where").value,
        sources: sourcesToSend(),
        sourcesAs: byId("insert-sources").value,
      }),
    ),
  );
  byId("reply").addEventListener("click", () => act(() => host.openReply(output.value)));
  byId("apply-body").addEventListener("click", () => act(() => host.applyDraft(output.value, { where: "body" })));
  byId("apply-cursor").addEventListener("click", () => act(() => host.applyDraft(output.value, { where: "cursor" })));
  byId("copy").addEventListener("click", () =>
    act(async () => {
      try {
        await navigator.clipboard.writeText(output.value);
        return { note: "Copied." };
      } catch {
        output.select(); // clipboard blocked (some Office hosts): the user copies by hand
        return { note: "Selected: press Ctrl+C (or Cmd+C) to copy." };
      }
    }),
  );
  stop.addEventListener("click", () => run?.controller.abort());

  for (const [button, rating] of [[thumbs[0], 1], [thumbs[1], -1]]) {
    button.addEventListener("click", () =>
      act(async () => {
        if (!run?.id) return { note: "Run something first." };
        const edited = output.value !== run.text ? output.value : null;
        await api.feedback(run.id, { rating, edited_text: edited });
        for (const thumb of thumbs) thumb.setAttribute("aria-pressed", String(thumb === button));
        return { note: "Thank you: feedback sent." };
      }),
    );
  }
  // A pinned Outlook pane: a result about the previous message must not be used on this one.
  host.onItemChanged?.(() => {
    open("Result");
    section.hidden = true;
    announce(byId("notice-status"), "Another message is open: the last result was cleared.");
  });
  return { start, fail, open };
}

/** Grow a text box with its text where CSS field-sizing is not supported. */
function autosize(box) {
  if (globalThis.CSS?.supports?.("field-sizing", "content")) return;
  const fit = () => {
    box.style.height = "auto";
    box.style.height = `${box.scrollHeight + 2}px`;
  };
  box.addEventListener("input", fit);
}
