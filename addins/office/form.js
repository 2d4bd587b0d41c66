// A form generated from a skill's typed inputs: labels and help text come from the template.
//
// fieldsFor() is pure (unit-tested); renderForm()/readForm() touch the DOM.

// Inputs long enough to deserve a text box of several lines.
const LONG_INPUTS = new Set(["text", "message", "notes", "question", "body", "content"]);

/** "neutral, formal, friendly or concise" → ["neutral", "formal", "friendly", "concise"]. */
export function parseChoices(description) {
  if (typeof description !== "string") return null;
  const match = description.trim().match(/^"?([\w-]+(?:, [\w-]+)*),? or ([\w-]+)"?$/);
  return match ? [...match[1].split(", "), match[2]] : null;
}

/** A readable label for an input name: "output_language" → "Output language". */
export function labelFor(name) {
  const words = String(name).replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Field descriptors for the inputs of a SkillDetail (hidden: inputs the copilot sets itself). */
export function fieldsFor(inputs) {
  const fields = [];
  for (const input of inputs || []) {
    if (!input?.name || /^set by the copilot/i.test(input.description || "")) continue;
    const choices = input.type === "string" ? parseChoices(input.description) : null;
    let control = "text";
    if (input.type === "boolean") control = "checkbox";
    else if (input.type === "number" || input.type === "integer") control = "number";
    else if (choices) control = "select";
    else if (input.type === "string" && LONG_INPUTS.has(input.name)) control = "textarea";
    else if (input.type !== "string") control = "json";
    fields.push({
      name: input.name,
      label: labelFor(input.name),
      help: choices ? "" : input.description || "",
      control,
      choices: choices || [],
      value: input.default ?? (control === "checkbox" ? false : ""),
      required: Boolean(input.required),
      // An empty "text" (or a required "message") is filled from the document or the mail.
      fromDocument: input.name === "text" || (input.name === "message" && Boolean(input.required)),
    });
  }
  return fields;
}

/** The form's values as skill inputs (JSON fields parsed; errors name the field). */
export function valuesOf(fields, raw) {
  const inputs = {};
  for (const field of fields) {
    const value = raw[field.name];
    if (field.control === "number") {
      if (value === "" || value === undefined) continue;
      inputs[field.name] = Number(value);
    } else if (field.control === "json") {
      if (value === "" || value === undefined) continue;
      try {
        inputs[field.name] = JSON.parse(value);
      } catch {
        throw new Error(`${field.label}: enter valid JSON (for a list: ["a", "b"]).`);
      }
    } else {
      inputs[field.name] = value;
    }
  }
  return inputs;
}

/** Build the form controls into `container` (replacing what was there). */
export function renderForm(container, fields, idPrefix = "in") {
  const doc = container.ownerDocument;
  container.replaceChildren();
  for (const field of fields) {
    const id = `${idPrefix}-${field.name}`;
    const row = doc.createElement("div");
    row.className = field.control === "checkbox" ? "field check" : "field";
    const label = doc.createElement("label");
    label.htmlFor = id;
    label.textContent = field.label + (field.required ? " (required)" : "");
    let control;
    if (field.control === "select") {
      control = doc.createElement("select");
      for (const choice of field.choices) {
        const option = doc.createElement("option");
        option.value = choice;
        option.textContent = choice;
        control.append(option);
      }
      control.value = field.choices.includes(field.value) ? field.value : field.choices[0];
    } else if (field.control === "textarea" || field.control === "json") {
      control = doc.createElement("textarea");
      control.rows = field.control === "json" ? 2 : 3;
      control.value = typeof field.value === "string" ? field.value : JSON.stringify(field.value);
    } else {
      control = doc.createElement("input");
      control.type = field.control;
      if (field.control === "checkbox") control.checked = Boolean(field.value);
      else control.value = String(field.value ?? "");
    }
    control.id = id;
    control.name = field.name;
    if (field.required) control.setAttribute("aria-required", "true");
    let help = field.help;
    if (field.fromDocument) help = `${help} Left empty: your selection or the open item.`.trim();
    if (help) {
      const hint = doc.createElement("p");
      hint.className = "hint";
      hint.id = `${id}-help`;
      hint.textContent = help;
      control.setAttribute("aria-describedby", hint.id);
      row.append(...(field.control === "checkbox" ? [control, label, hint] : [label, control, hint]));
    } else {
      row.append(...(field.control === "checkbox" ? [control, label] : [label, control]));
    }
    container.append(row);
  }
}

/** Read the rendered controls back: {name: value}. */
export function readForm(container, fields) {
  const raw = {};
  for (const field of fields) {
    const control = container.querySelector(`[name="${CSS.escape(field.name)}"]`);
    if (!control) continue;
    raw[field.name] = field.control === "checkbox" ? control.checked : control.value;
  }
  return valuesOf(fields, raw);
}
