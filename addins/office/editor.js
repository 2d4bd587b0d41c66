// The personal-skill editor: the .prompty text, Save (a new version), the saved tests,
// version history and revert. A template error from the API names a line: the editor
// shows it and selects that line in the text.

import { ApiError } from "./api.js";
import { lineSpan, lineText } from "./text.js";
import { announce, clearError, el, showError } from "./ui.js";

/**
 * Wire the editor to its elements (by id, see index.html).
 * onSaved(skill) runs after a save or a revert, so the pane can refresh its skill list.
 */
export function createEditor({ api, byId, onSaved }) {
  const section = byId("editor");
  const title = byId("editor-title");
  const textBox = byId("editor-text");
  const errorBox = byId("editor-error");
  const message = byId("editor-message");
  const status = byId("editor-status");
  const tests = byId("editor-tests");
  const versions = byId("editor-versions");
  let current = null;

  function open(skill) {
    current = skill;
    title.textContent = `Edit “${skill.name}” (${skill.id}, version ${skill.version ?? "built-in"})`;
    textBox.value = skill.text;
    textBox.removeAttribute("aria-invalid");
    message.value = "";
    clearError(errorBox);
    tests.replaceChildren();
    versions.replaceChildren();
    announce(status, "");
    section.hidden = false;
    textBox.focus();
  }

  function close() {
    section.hidden = true;
    current = null;
  }

  /** Show a template error at its line: the message, the line's text, and select it. */
  function showLineError(problem) {
    const line = Number(problem.line);
    errorBox.replaceChildren(
      el("strong", {}, `Line ${line}: `),
      problem.detail || "invalid template",
      el("code", { className: "line" }, lineText(textBox.value, line)),
    );
    errorBox.hidden = false;
    textBox.setAttribute("aria-invalid", "true");
    const [start, end] = lineSpan(textBox.value, line);
    textBox.focus();
    textBox.setSelectionRange(start, end);
    // Scroll the line into view: roughly line height × line number.
    const lineHeight = parseFloat(getComputedStyle(textBox).lineHeight) || 16;
    textBox.scrollTop = Math.max(0, (line - 3) * lineHeight);
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
          item.append(el("button", {
            type: "button",
            className: "small",
            textContent: "Revert",
            attrs: { "aria-label": `Revert to version ${v.version}` },
            onclick: () => revert(v.version),
          }));
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

  byId("editor-save").addEventListener("click", save);
  byId("editor-test").addEventListener("click", runTests);
  byId("editor-history").addEventListener("click", history);
  byId("editor-close").addEventListener("click", close);
  return { open, close };
}
