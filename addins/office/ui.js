// Rendering: small DOM builders. Every piece of text from a document, a mail, a skill or the
// model is set with textContent (never innerHTML), so hostile content stays text.

import { advice } from "./api.js";
import { citationLabel, safeHref } from "./text.js";

/** Create an element: el("a", {className: "x", attrs: {href}}, "text", child…). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { attrs, ...rest } = props;
  Object.assign(node, rest);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Show or hide an element (hidden elements are also out of the tab order). */
export function show(node, visible = true) {
  node.hidden = !visible;
}

/** Citations as a list of links that open the cited place (in a new window); each named
 *  by its label (a mail by subject, sender and date; a file by title and place). */
export function renderCitations(list, citations, { cited = true } = {}) {
  list.replaceChildren();
  for (const citation of citations || []) {
    const name = citationLabel(citation);
    const href = safeHref(citation.link || citation.url);
    const item = el("li", { className: cited ? "cited" : "" });
    const text = `[${citation.n}] ${name}`;
    if (href) {
      item.append(el("a", {
        href,
        target: "_blank",
        rel: "noopener noreferrer",
        attrs: { "aria-label": `Source ${citation.n}: ${name}, opens in a new window` },
      }, text));
    } else {
      item.append(el("span", { className: "n" }, text));
    }
    if (citation.snippet) item.append(el("p", { className: "snippet" }, citation.snippet));
    list.append(item);
  }
  list.hidden = !(citations || []).length;
}

/** A sentiment result as a label, a score bar and the aspects with their evidence. */
export function renderSentiment(container, data) {
  container.replaceChildren();
  if (!data || typeof data !== "object" || !data.label) {
    container.hidden = true;
    return;
  }
  const score = typeof data.score === "number" ? data.score : 0;
  const label = String(data.label);
  container.append(
    el("p", { className: `sentiment-label ${label.replace(/[^a-z]/g, "")}` }, `Sentiment: ${label}`,
      typeof data.score === "number" ? ` (score ${score.toFixed(2)})` : ""),
    el("meter", { min: -1, max: 1, low: -0.2, high: 0.2, optimum: 1, value: score, attrs: { "aria-label": "Sentiment score" } }),
  );
  const aspects = Array.isArray(data.aspects) ? data.aspects : [];
  if (aspects.length) {
    const list = el("ul", { className: "aspects" });
    for (const a of aspects) {
      if (!a || typeof a !== "object") continue;
      list.append(el("li", {}, el("strong", {}, String(a.aspect ?? "?")), ` — ${a.label ?? "?"}`,
        a.evidence ? el("q", {}, String(a.evidence)) : null));
    }
    container.append(list);
  }
  container.hidden = false;
}

/** Exactly what will be sent to the model (from POST /preview). */
export function renderPreview(container, preview) {
  container.replaceChildren(
    el("p", {}, `Engine: ${preview.engine}${preview.model ? ` (${preview.model})` : ""}; ` +
      `context budget ${preview.budget_tokens} tokens; ${preview.sources?.length || 0} sources.`),
  );
  const redactions = Object.entries(preview.redactions || {}).filter(([, n]) => n > 0);
  if (redactions.length) {
    const what = redactions.map(([kind, n]) => `${n} ${kind}`).join(", ");
    container.append(el("p", {}, `Removed before sending: ${what}.`));
  }
  for (const message of preview.messages || []) {
    container.append(el("h4", {}, message.role), el("pre", { tabIndex: 0 }, message.content));
  }
  container.hidden = false;
}

/** An error in plain words: what went wrong (the problem's detail) and what to do. */
export function showError(box, error) {
  const problem = error?.problem;
  const what = problem?.detail || error?.message || String(error);
  const todo = problem ? advice(problem) : "";
  box.replaceChildren(el("strong", {}, problem?.title ? `${problem.title}: ` : "Something went wrong: "), what);
  if (todo) box.append(el("span", { className: "todo" }, ` ${todo}`));
  box.hidden = false;
}

/** Clear an error box. */
export function clearError(box) {
  box.replaceChildren();
  box.hidden = true;
}

/** Announce a short status to screen readers (and show it). */
export function announce(status, message) {
  status.textContent = message;
}
