// Pure text helpers shared by the pane and the Office adapter (no DOM, no Office: unit-tested).

// Schemes a citation link may use. Anything else (javascript:, data:…) is shown as text only.
const SAFE_SCHEMES = new Set([
  "https:",
  "http:",
  "file:",
  "mailto:",
  "ms-word:",
  "ms-excel:",
  "ms-powerpoint:",
  "ms-outlook:",
]);

/** The link as an href if it is safe to open, else null. */
export function safeHref(link) {
  if (typeof link !== "string" || !link.trim()) return null;
  try {
    const url = new URL(link.trim());
    return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/** Plain text as HTML that shows exactly that text (for APIs that only take HTML). */
export function textToHtml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;")
    .replace(/\r\n|\r|\n/g, "<br>");
}

/** A citation's title; "input" (text sent with the request, not an indexed item) reads better. */
export function sourceTitle(citation) {
  const title = citation?.title || "source";
  return title === "input" ? "your text" : title;
}

/** One citation as a line of text: "[2] budget.md, section Travel, paragraph 1 — https://…". */
export function sourceLine(citation) {
  const parts = [`[${citation.n}] ${sourceTitle(citation)}`];
  if (citation.where) parts[0] += `, ${citation.where}`;
  const href = safeHref(citation.link || citation.url);
  if (href) parts.push(href);
  return parts.join(" — ");
}

/** The text followed by a "Sources" list (how sources travel as plain text). */
export function withSourceList(text, citations) {
  if (!citations?.length) return text;
  return `${text}\n\nSources\n${citations.map(sourceLine).join("\n")}`;
}

/** A sentiment result (the skill's JSON data) as readable text. */
export function sentimentText(data) {
  if (!data || typeof data !== "object" || !data.label) return "";
  const score = typeof data.score === "number" ? ` (score ${data.score.toFixed(2)})` : "";
  const lines = [`Sentiment: ${data.label}${score}`];
  for (const a of Array.isArray(data.aspects) ? data.aspects : []) {
    if (!a || typeof a !== "object") continue;
    const evidence = a.evidence ? `: “${a.evidence}”` : "";
    lines.push(`- ${a.aspect ?? "?"} — ${a.label ?? "?"}${evidence}`);
  }
  return lines.join("\n");
}

/**
 * What a run's progress event tells the reader while the answer is on its way ("" for
 * events that are not progress): the same words as the CLI (copilot/cli/output.py).
 */
export function progressNote(event, data) {
  const d = data && typeof data === "object" ? data : {};
  if (event === "queue") {
    const ahead = Number(d.position) || 0;
    return `waiting for the model: ${ahead} answer${ahead === 1 ? "" : "s"} ahead`;
  }
  if (event === "progress" && d.steps) {
    return d.phase === "combine"
      ? `combining the summaries of the parts: ${d.step} of ${d.steps}`
      : `reading the document in parts: part ${d.step} of ${d.steps}`;
  }
  if (event === "writing") return "writing the answer…";
  return "";
}

/** [start, end) offsets of 1-based line `line` in `text` (clamped), for selecting it. */
export function lineSpan(text, line) {
  const lines = String(text).split("\n");
  const index = Math.min(Math.max(1, Math.trunc(Number(line)) || 1), lines.length) - 1;
  let start = 0;
  for (let i = 0; i < index; i += 1) start += lines[i].length + 1;
  return [start, start + lines[index].length];
}

/** The text of 1-based line `line`, or "" when out of range. */
export function lineText(text, line) {
  const lines = String(text).split("\n");
  return lines[Math.trunc(Number(line)) - 1] ?? "";
}

/** The citation markers "[n]" in a text, in order, each once. */
export function citedNumbers(text) {
  const seen = [];
  for (const match of String(text).matchAll(/\[(\d{1,3})\]/g)) {
    const n = Number(match[1]);
    if (!seen.includes(n)) seen.push(n);
  }
  return seen;
}

/** A template error's message said once: "<string> line 52: bad thing" → "bad thing". */
export function templateMessage(detail, line) {
  const text = String(detail || "invalid template");
  const n = Math.trunc(Number(line));
  if (!Number.isInteger(n) || n < 1) return text;
  const stripped = text.replace(new RegExp(`^.*?\\bline ${n}\\s*[:,-]\\s*`, "i"), "");
  return stripped.replace(new RegExp(`\\s*\\(?\\bat line ${n}\\)?`, "i"), "") || text;
}

/** How a citation is named: the API's label (subject, sender, date; title and place). */
export function citationLabel(citation) {
  if (citation?.label) return String(citation.label);
  const title = sourceTitle(citation);
  return citation?.where ? `${title} — ${citation.where}` : title;
}

/** The citations to list under an answer (only those cited) and the rest ("more"). */
export function splitSources(done) {
  const all = Array.isArray(done?.citations) ? done.citations.filter(Boolean) : [];
  const cited = all.filter((c) => c.cited !== false);
  const shown = new Set(cited.map((c) => c.n));
  const more = [];
  const extra = Array.isArray(done?.more_sources) ? done.more_sources : [];
  for (const c of [...all.filter((x) => x.cited === false), ...extra]) {
    if (!c || shown.has(c.n)) continue;
    shown.add(c.n);
    more.push(c);
  }
  return { cited, more };
}
