// The result of a run: streamed text in a live region, citations as links, then an editable
// text that a click inserts into Word, opens as a reply or applies to a draft; feedback.

import { sentimentText } from "./text.js";
import { announce, clearError, renderCitations, renderSentiment, show, showError } from "./ui.js";

/** Wire the result panel to its elements; returns {start, fail}. */
export function createResult({ api, host, byId }) {
  const section = byId("result");
  const heading = byId("result-title");
  const stream = byId("stream");
  const output = byId("output");
  const outputRow = byId("output-row");
  const citations = byId("citations");
  const sentiment = byId("sentiment");
  const status = byId("status");
  const errorBox = byId("error");
  const stop = byId("stop");
  const apply = byId("apply");
  const thumbs = [byId("thumb-up"), byId("thumb-down")];
  let run = null; // {id, text, citations, controller, reply}

  // Which apply controls this host has.
  show(byId("apply-word"), host.kind !== "outlook");
  show(byId("apply-reply"), host.kind === "outlook" && host.mode === "read");
  show(byId("apply-compose"), host.kind === "outlook" && host.mode === "compose");

  function reset(label) {
    run?.controller.abort();
    section.hidden = false;
    heading.textContent = label;
    stream.replaceChildren();
    stream.hidden = false;
    output.value = "";
    show(outputRow, false);
    show(apply, false);
    renderCitations(citations, []);
    renderSentiment(sentiment, null);
    clearError(errorBox);
    for (const thumb of thumbs) thumb.setAttribute("aria-pressed", "false");
  }

  /** Run a skill with streaming; `label` names it for the heading and the status. */
  async function start(skillId, body, { label, reply = false } = {}) {
    reset(label);
    const controller = new AbortController();
    run = { id: null, text: "", citations: [], controller, reply };
    const mine = run;
    announce(status, `${label}: working…`);
    show(stop, true);
    try {
      const done = await api.run(skillId, body, {
        signal: controller.signal,
        onSources: (sources) => announce(status, `${label}: ${sources.length} sources found, writing…`),
        onDelta: (text) => stream.append(document.createTextNode(text)),
      });
      if (run !== mine) return;
      finish(done, label);
    } catch (error) {
      if (run !== mine) return;
      if (error?.name === "AbortError") announce(status, `${label}: stopped.`);
      else fail(error);
    } finally {
      if (run === mine) show(stop, false);
    }
  }

  function finish(done, label) {
    const data = done.data && typeof done.data === "object" ? done.data : null;
    const text = sentimentText(data) || done.text || "";
    run.id = done.run_id;
    run.text = text;
    run.citations = done.citations || [];
    stream.hidden = true; // the final text (invalid citations removed) replaces the stream
    output.value = text;
    show(outputRow, true);
    renderSentiment(sentiment, data);
    renderCitations(citations, run.citations);
    const sourcesSelect = byId("insert-sources");
    const linked = run.citations.some((c) => c.link || c.url);
    sourcesSelect.value = linked ? "list" : "none";
    show(byId("insert-sources-row"), run.citations.length > 0);
    show(apply, Boolean(text));
    const n = run.citations.length;
    const note = done.note ? ` ${done.note}` : "";
    announce(status, `${label}: done${n ? `, ${n} source${n === 1 ? "" : "s"}` : ""}.${note}`);
  }

  function fail(error) {
    section.hidden = false;
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
    run?.controller.abort();
    run = null;
    section.hidden = true;
    announce(status, "");
    announce(byId("notice-status"), "Another message is open: the last result was cleared.");
  });
  return { start, fail };
}
