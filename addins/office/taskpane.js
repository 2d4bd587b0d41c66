// The task pane: starts Office (or preview mode), signs in, and wires quick actions, the
// skill picker with its generated form, the preview, the editor and the result panel.
// Nothing is sent to the API or written into the document without a click.

import { actionsFor, conversationBody, readScoped, runBody } from "./actions.js";
import { createReadAhead } from "./readahead.js";
import { createApi } from "./api.js";
import { createAuth, loadConfig, loadMsalScript } from "./auth.js";
import { createEditor } from "./editor.js";
import { fieldsFor, readForm, renderForm } from "./form.js";
import { detectHost } from "./host.js";
import { createResult } from "./result.js";
import { applyLook } from "./theme.js";
import { announce, clearError, el, renderPreview, show, showError } from "./ui.js";

const byId = (id) => document.getElementById(id);
const OFFICE_READY_MS = 5000;

/** What Office.onReady resolves to; {host: null} without Office (a plain browser). */
async function officeReady(Office) {
  if (typeof Office?.onReady !== "function") return { host: null };
  const timeout = new Promise((resolve) => setTimeout(() => resolve({ host: null }), OFFICE_READY_MS));
  return Promise.race([Office.onReady(), timeout]);
}

async function boot() {
  const params = new URLSearchParams(location.search);
  const Office = globalThis.Office;
  const info = await officeReady(Office);
  applyLook(Office);
  const host = detectHost(info, { Office, Word: globalThis.Word, previewDoc: byId("preview-doc") });
  document.body.dataset.host = host.kind;
  document.body.dataset.mode = host.mode;
  show(byId("preview-box"), host.kind === "preview");
  show(byId("scope-row"), host.kind !== "outlook");

  const notice = byId("notice");
  const config = await loadConfig();
  let auth;
  try {
    auth = await createAuth({
      config, params, Office, OfficeRuntime: globalThis.OfficeRuntime, loadMsal: loadMsalScript,
    });
  } catch (error) {
    showError(notice, error);
    return;
  }
  const api = createApi({ base: config.apiBase || "", getToken: auth.getToken });
  const ahead = createReadAhead({ api, host });
  if (auth.mode === "none") {
    showError(notice, new Error(auth.explain));
    for (const name of auth.devUsers || []) {  // development: pick one of the server's users
      notice.append(" ", el("a", { href: `?dev=${encodeURIComponent(name)}` }, name));
    }
  } else {
    api.me().then(
      (me) => {
        const engine = me.engine === "local" ? "local engine (no LLM)" : me.model || "LLM";
        byId("who").textContent = `${me.name} · ${engine}`;
        byId("who").title = byId("who").textContent; // the full text when it is cut short
        ahead.enable(me.engine);
        ahead.schedule(firstAction(host)); // the mail this pane opened on
      },
      (error) => showError(notice, error),
    );
  }

  const result = createResult({ api, host, byId });
  const actions = setUpActions(host, result, ahead);
  host.onItemChanged?.(() => ahead.schedule(firstAction(host)));
  const skills = setUpSkills(host, api, result, actions);
  skills.load().catch((error) => showError(notice, error));
  document.body.dataset.ready = "true";
}

/** What a new mail is read ahead for: a summary (reading mode only). */
function firstAction(host) {
  return host.kind === "outlook" && host.mode !== "compose" ? actionsFor(host)[0] : null;
}

function setUpActions(host, result, ahead) {
  const buttons = byId("action-buttons");
  const form = byId("action-form");
  const fields = byId("action-fields");
  const home = byId("action-home");
  const newChat = byId("new-chat");
  let chosen = null;
  let turns = []; // Ask: the finished question/answer pairs of this conversation

  function endConversation() {
    turns = [];
    show(newChat, false);
  }

  /** Ask lives in the result panel, under its thread; every other form stays up here. */
  function place(action) {
    const slot = action?.conversation ? byId("followup-slot") : home;
    if (form.parentElement !== slot) slot.append(form);
  }

  async function go(action, values) {
    ahead.cancel(); // the run itself is on its way
    try {
      const made = await action.inputs(host, { ...values, scope: byId("scope").value });
      if (!action.conversation) {
        endConversation();
        await result.start(action.skill, runBody(made), { label: action.label, reply: action.reply });
        return;
      }
      const asked = String(made.question ?? "");
      const done = await result.start(action.skill, conversationBody(runBody(made), turns), {
        label: action.heading || action.label,
        question: asked,
        followUp: turns.length > 0,
      });
      if (!done) return;
      turns.push({ question: asked, answer: done.text });
      show(newChat, true);
      const box = fields.querySelector("textarea, input");
      if (box) {
        box.value = "";
        box.focus();
      }
      byId("action-form-title").textContent = "Ask a follow-up question";
    } catch (error) {
      result.fail(error);
    }
  }

  function openForm(action, button) {
    chosen = action;
    for (const other of buttons.querySelectorAll("[aria-expanded]")) {
      other.setAttribute("aria-expanded", String(other === button));
    }
    const title = byId("action-form-title");
    title.textContent = action.conversation && turns.length ? "Ask a follow-up question" : action.title || action.label;
    title.classList.toggle("visually-hidden", Boolean(action.conversation));
    byId("action-go").textContent = action.submit || "Run";
    show(byId("action-cancel"), !action.conversation);
    renderForm(fields, action.fields, `act-${action.id}`);
    place(action);
    if (action.conversation) {
      if (!turns.length) result.open(action.heading || action.label);
      sendOnEnter(fields);
    }
    form.hidden = false;
    fields.querySelector("input, select, textarea")?.focus();
    // A reply's notes take a while to type: the model reads the mail meanwhile.
    if (action.reply) ahead.schedule(action);
  }

  const list = actionsFor(host);
  buttons.dataset.count = String(list.length);
  for (const action of list) {
    const button = el("fluent-button", { id: `action-${action.id}`, textContent: action.label, attrs: { type: "button" } });
    if (action.fields) button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => {
      if (!action.fields) {
        form.hidden = true;
        place(null);
        for (const other of buttons.querySelectorAll("[aria-expanded]")) other.setAttribute("aria-expanded", "false");
        go(action, {});
        return;
      }
      openForm(action, button);
    });
    buttons.append(button);
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (chosen) go(chosen, readForm(fields, chosen.fields));
  });
  byId("action-cancel").addEventListener("click", () => {
    form.hidden = true;
    byId(`action-${chosen?.id}`)?.setAttribute("aria-expanded", "false");
    byId(`action-${chosen?.id}`)?.focus();
  });
  newChat.addEventListener("click", () => {
    endConversation();
    const ask = list.find((a) => a.conversation);
    if (ask) openForm(ask, byId(`action-${ask.id}`));
  });
  return { endConversation };
}

/** In a question box, Enter sends and Shift+Enter starts a new line (as in chat apps). */
function sendOnEnter(container) {
  const box = container.querySelector("textarea");
  box?.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    box.form?.requestSubmit();
  });
}

function setUpSkills(host, api, result, actions) {
  const select = byId("skill");
  const fieldsBox = byId("skill-fields");
  const status = byId("skill-status");
  const errorBox = byId("skill-error");
  const previewBox = byId("preview");
  let skill = null;
  let fields = [];
  const editor = createEditor({ api, byId, onSaved: (saved) => load(saved.id) });

  async function load(selectId) {
    const list = await api.skills(host.surface);
    select.replaceChildren();
    for (const [source, label] of [["builtin", "Built-in"], ["personal", "My skills"]]) {
      const group = el("optgroup", { label });
      for (const s of list.filter((x) => x.source === source)) {
        group.append(el("option", { value: s.id, textContent: s.name === s.id ? s.id : `${s.name} (${s.id})` }));
      }
      if (group.children.length) select.append(group);
    }
    // Default: the user's own first skill (the built-ins are the quick actions above).
    const mine = list.find((s) => s.source === "personal");
    if (selectId && list.some((s) => s.id === selectId)) select.value = selectId;
    else if (mine) select.value = mine.id;
    await choose(select.value);
  }

  async function choose(id) {
    clearError(errorBox);
    previewBox.hidden = true;
    if (!id) return;
    skill = await api.skill(id);
    byId("skill-description").textContent = skill.description;
    fields = fieldsFor(skill.inputs);
    renderForm(fieldsBox, fields, "skill");
    byId("skill-edit").textContent = skill.source === "personal" ? "Edit" : "Make my copy";
  }

  /** The skill the picker shows, loaded if a click came before its details did (a quick
   *  "Make my copy" after choosing another skill forked the one before). */
  async function current() {
    if (!skill || skill.id !== select.value) await choose(select.value);
    return skill;
  }

  /** The run body: the form's values, with an empty document input filled from the host. */
  async function body() {
    const inputs = readForm(fieldsBox, fields);
    for (const field of fields) {
      if (!field.fromDocument || String(inputs[field.name] ?? "").trim()) continue;
      inputs[field.name] =
        host.kind === "outlook" && host.mode === "read"
          ? (await host.readItem()).text
          : await readScoped(host, byId("scope").value);
    }
    const missing = fields.find((f) => f.required && !String(inputs[f.name] ?? "").trim());
    if (missing) throw new Error(`${missing.label} is required: fill it in, then run again.`);
    return { inputs };
  }

  select.addEventListener("change", () => choose(select.value).catch((e) => showError(errorBox, e)));
  byId("skill-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(errorBox);
    try {
      actions.endConversation();
      await current();
      const reply = host.kind === "outlook" && host.mode === "read" && skill.task === "draft";
      await result.start(skill.id, await body(), { label: skill.name, reply });
    } catch (error) {
      showError(errorBox, error);
    }
  });
  byId("skill-preview").addEventListener("click", async () => {
    clearError(errorBox);
    announce(status, "Preparing the preview…");
    try {
      await current();
      renderPreview(previewBox, await api.preview(skill.id, await body()));
      announce(status, "Preview ready: this is exactly what Run sends to the model.");
    } catch (error) {
      showError(errorBox, error);
      announce(status, "");
    }
  });
  byId("skill-edit").addEventListener("click", async () => {
    clearError(errorBox);
    try {
      await current();
      if (skill.source === "personal") return editor.open(skill);
      const newId = `my-${skill.id}`;
      let copy;
      try {
        copy = await api.fork(skill.id, newId);
      } catch (error) {
        if (error?.status !== 409) throw error;
        copy = await api.skill(newId); // already made: edit that one
      }
      await load(copy.id);
      editor.open(copy);
    } catch (error) {
      showError(errorBox, error);
    }
  });
  return { load };
}

boot().catch((error) => showError(byId("notice"), error));
