// The personal-skill editor: the .prompty text with line numbers, Save (a new version),
// the saved tests, version history with a diff against any version, and revert. A template
// error from the API names a line: the editor says so once ("Line 52: …"), marks the line
// number, scrolls to the line and selects it.

import { ApiError } from "./api.js";
import { diffHunks, lineDiff } from "./diff.js";
import { lineSpan, lineText, templateMessage } from "./text.js";
import { announce, clearError, el, showError } from "./ui.js";

/**
 * Wire the editor to its elements (by id, see index.html).
 * onSaved(skill) runs after a save or a revert, so the pane can refresh its skill list.
 */
export function createEditor({ api, byId, onSaved }) {
  const section = byId("editor");
  const title = byId("editor-title");
  const textBox = byId("editor-text");
  const gutter = byId("editor-gutter");
  const position = byId("editor-position");
  const errorBox = byId("editor-error");
  const message = byId("editor-message");
  const status = byId("editor-status");
  const tests = byId("editor-tests");
  const versions = byId("editor-versions");
  const diffBox = byId("editor-diff");
  let current = null;
  let badLine = null;
  let lines = 0;

  /** The line numbers, one per line of the text; the line with an error marked. */
  function number() {
    const count = textBox.value.split("\n").length;
    if (count === lines && !gutter.dataset.stale) return;
    lines = count;
    delete gutter.dataset.stale;
    const parts = [];
    for (let n = 1; n <= count; n += 1) {
      parts.push(n === badLine ? el("span", { className: "bad" }, `${n}\n`) : `${n}\n`);
    }
    gutter.replaceChildren(...parts);
    gutter.scrollTop = textBox.scrollTop;
  }

  function where() {
    const before = textBox.value.slice(0, textBox.selectionStart);
    const line = before.split("\n").length;
    position.textContent = `Line ${line} of ${textBox.value.split("\n").length}`;
  }

  function markLine(line) {
    badLine = line;
    gutter.dataset.stale = "1";
    number();
  }

  function open(skill) {
    current = skill;
    title.textContent = `Edit “${skill.name}” (${skill.id}, version ${skill.version ?? "built-in"})`;
    textBox.value = skill.text;
    textBox.removeAttribute("aria-invalid");
    message.value = "";
    clearError(errorBox);
    tests.replaceChildren();
    versions.replaceChildren();
    diffBox.hidden = true;
    announce(status, "");
    section.hidden = false;
    markLine(null);
    textBox.focus();
    textBox.setSelectionRange(0, 0);
    textBox.scrollTop = 0;
    where();
  }

  function close() {
    section.hidden = true;
    current = null;
  }

  /** Scroll line `line` into view and select it. */
  function goTo(line) {
    const [start, end] = lineSpan(textBox.value, line);
    textBox.focus();
    textBox.setSelectionRange(start, end);
    const style = getComputedStyle(textBox);
    const lineHeight = parseFloat(style.lineHeight) || 18;
    const top = (line - 1) * lineHeight;
    const visible = textBox.clientHeight - lineHeight;
    if (top < textBox.scrollTop || top > textBox.scrollTop + visible) {
      textBox.scrollTop = Math.max(0, top - 3 * lineHeight);
    }
    gutter.scrollTop = textBox.scrollTop;
    where();
  }

  /** Show a template error at its line: said once, the line's text, then go there. */
  function showLineError(problem) {
    const line = Number(problem.line);
    const jump = el("fluent-button", {
      textContent: "Show the line", // the line number is said once, above
      attrs: { type: "button", size: "small" },
      onclick: () => goTo(line),
    });
    errorBox.replaceChildren(
      el("strong", {}, `Line ${line}: `),
      templateMessage(problem.detail, line),
      el("code", { className: "line" }, lineText(textBox.value, line)),
      jump,
    );
    errorBox.hidden = false;
    textBox.setAttribute("aria-invalid", "true");
    markLine(line);
    goTo(line);
  }

  function fail(error) {
    if (error instanceof ApiError && Number.isInteger(error.problem?.line)) {
      showLineError(error.problem);
    } else {
      showError(errorBox, error);
    }
    announce(status, "");
  }

  async function save() {
    if (!current) return;
    clearError(errorBox);
    announce(status, "Saving…");
    try {
      const saved = await api.save(current.id, textBox.value, message.value);
      textBox.removeAttribute("aria-invalid");
      markLine(null);
      current = saved;
      title.textContent = `Edit “${saved.name}” (${saved.id}, version ${saved.version})`;
      announce(status, `Saved as version ${saved.version}.`);
      onSaved?.(saved);
    } catch (error) {
      fail(error);
    }
  }

  async function runTests() {
    if (!current) return;
    clearError(errorBox);
    tests.replaceChildren();
    announce(status, "Running the saved test inputs…");
    try {
      const changed = textBox.value !== current.text;
      const rows = await api.test(current.id, changed ? textBox.value : null);
      for (const row of rows) {
        const item = el("li", {}, el("strong", {}, `Sample “${row.sample}”`));
        for (const which of ["current", "candidate"]) {
          const out = row[which];
          if (!out) continue;
          const heading = which === "current" ? "Saved version" : "Your edit";
          const text = out.error ? `Error: ${out.error}` : out.text;
          item.append(el("p", { className: "hint" }, heading), el("pre", { tabIndex: 0 }, text));
        }
        const why = row.comparison?.explanation;
        if (why) item.append(el("p", { className: "hint" }, String(why)));
        tests.append(item);
      }
      announce(status, `${rows.length} test input${rows.length === 1 ? "" : "s"} run.`);
    } catch (error) {
      fail(error);
    }
  }

  async function history() {
    if (!current) return;
    clearError(errorBox);
    versions.replaceChildren();
    try {
      const list = await api.versions(current.id);
      for (const v of list) {
        const when = new Date(v.created_at * 1000).toLocaleString();
        const item = el("li", {}, `Version ${v.version}, ${when}${v.message ? ` — ${v.message}` : ""} `);
        if (v.version !== current.version) {
          item.append(
            el("fluent-button", {
              textContent: "Compare",
              attrs: { type: "button", size: "small", "aria-label": `Compare version ${v.version} with the text above` },
              onclick: () => compare(v.version),
            }),
            el("fluent-button", {
              textContent: "Revert",
              attrs: { type: "button", size: "small", "aria-label": `Revert to version ${v.version}` },
              onclick: () => revert(v.version),
            }),
          );
        } else {
          item.append(el("span", { className: "hint" }, "(current)"));
        }
        versions.append(item);
      }
      announce(status, `${list.length} version${list.length === 1 ? "" : "s"}.`);
    } catch (error) {
      fail(error);
    }
  }

  /** What changed from version `version` to the text in the editor, line by line. */
  async function compare(version) {
    try {
      const old = await api.skillVersion(current.id, version);
      const { rows, added, removed } = diffHunks(lineDiff(old.text, textBox.value));
      const list = byId("editor-diff-lines");
      list.replaceChildren();
      for (const row of rows) {
        if (row.op === "gap") {
          list.append(el("li", { className: "gap" }, `… ${row.count} unchanged line${row.count === 1 ? "" : "s"}`));
          continue;
        }
        const [mark, said] = { add: ["+", "added: "], del: ["−", "removed: "], same: [" ", ""] }[row.op];
        const number = row.op === "del" ? `old line ${row.oldNo}` : `line ${row.newNo}`;
        list.append(el("li", { className: row.op, attrs: { "data-mark": mark, title: number } },
          said ? el("span", { className: "visually-hidden" }, `${said}${number}: `) : null,
          row.line || " "));
      }
      byId("editor-diff-title").textContent = `Changes from version ${version} to the text above`;
      const summary = added || removed
        ? `${added} line${added === 1 ? "" : "s"} added, ${removed} removed.`
        : "No changes: the texts are the same.";
      byId("editor-diff-summary").textContent = summary;
      diffBox.hidden = false;
      announce(status, `Compared with version ${version}: ${summary}`);
      list.focus();
    } catch (error) {
      fail(error);
    }
  }

  async function revert(version) {
    try {
      const saved = await api.revert(current.id, version);
      open(saved);
      announce(status, `Reverted to version ${version}: now version ${saved.version}.`);
      onSaved?.(saved);
    } catch (error) {
      fail(error);
    }
  }

  textBox.addEventListener("input", () => {
    number();
    where();
  });
  textBox.addEventListener("scroll", () => {
    gutter.scrollTop = textBox.scrollTop;
  });
  for (const type of ["keyup", "click"]) textBox.addEventListener(type, where);
  byId("editor-save").addEventListener("click", save);
  byId("editor-test").addEventListener("click", runTests);
  byId("editor-history").addEventListener("click", history);
  byId("editor-close").addEventListener("click", close);
  return { open, close };
}
