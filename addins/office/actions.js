// The quick actions of each host, as data: which skill, which few options, and how the
// skill's inputs are made from the document or the mail item. Pure (unit-tested).

export const TONES = ["neutral", "formal", "friendly", "concise", "apologetic"];
export const SCOPES = ["selection", "whole document"];

const tone = { name: "tone", label: "Tone", control: "select", choices: TONES, value: "neutral" };
const notes = (help) => ({ name: "notes", label: "Notes", control: "textarea", help, value: "" });

/** Some text to work on, or an error that says what to do. */
function need(text, what) {
  if (!text || !text.trim()) throw new Error(`There is no text to work on: ${what}.`);
  return text;
}

/** The selection, or the whole document when nothing is selected (or when asked for). */
export async function readScoped(host, scope) {
  if (scope !== "whole document") {
    const selected = await host.readSelection();
    if (selected.trim()) return selected;
  }
  return need(await host.readDocument(), "select some text or write in the document");
}

async function mailText(host) {
  const { subject, from, text } = await host.readItem();
  need(text, "the message is empty");
  const head = [subject && `Subject: ${subject}`, from && `From: ${from}`].filter(Boolean);
  return head.length ? `${head.join("\n")}\n\n${text}` : text;
}

const WORD = [
  {
    id: "summarise",
    label: "Summarise",
    skill: "summarise",
    inputs: async (host, { scope }) => ({ text: await readScoped(host, scope) }),
  },
  {
    id: "draft",
    label: "Draft",
    skill: "draft",
    fields: [
      {
        name: "what",
        label: "What to write",
        control: "select",
        choices: ["a section from my notes", "a rewrite of the selection"],
        value: "a section from my notes",
      },
      notes("For a section: what it should say. For a rewrite: anything else to change."),
      tone,
    ],
    inputs: async (host, v) => {
      if (v.what === "a rewrite of the selection") {
        const selection = need(await host.readSelection(), "select the text to rewrite");
        const extra = v.notes?.trim() ? ` Also: ${v.notes.trim()}` : "";
        return {
          body: { retrieval: false },
          kind: "section",
          message: selection,
          notes: `Rewrite the text above in a ${v.tone} tone; keep its meaning, facts and language.${extra}`,
          tone: v.tone,
        };
      }
      need(v.notes, "write a few notes about what the section should say");
      return { kind: "section", notes: v.notes, tone: v.tone };
    },
  },
  {
    id: "sentiment",
    label: "Sentiment",
    skill: "sentiment",
    inputs: async (host, { scope }) => ({ text: await readScoped(host, scope) }),
  },
  {
    id: "ask",
    label: "Ask",
    skill: "ask",
    conversation: true, // follow-up questions keep the earlier turns (see conversationBody)
    title: "Ask your documents and mail",
    heading: "Conversation", // the result panel's title while asking
    submit: "Send",
    fields: [{ name: "question", label: "Question", control: "textarea", required: true, value: "",
      help: "Answered from your own documents and mail, with sources. Enter sends; Shift+Enter starts a new line." }],
    inputs: async (_host, v) => ({ question: need(v.question, "type a question") }),
  },
];

const OUTLOOK_READ = [
  {
    id: "summarise",
    label: "Summarise thread",
    skill: "summarise",
    inputs: async (host) => ({ text: await mailText(host) }),
  },
  {
    id: "reply",
    label: "Draft reply",
    skill: "draft",
    reply: true,
    fields: [notes("What you want to say, in a few words."), tone],
    inputs: async (host, v) => ({ kind: "reply", message: await mailText(host), notes: v.notes || "", tone: v.tone }),
  },
  {
    id: "sentiment",
    label: "Sentiment",
    skill: "sentiment",
    inputs: async (host) => ({ text: await mailText(host) }),
  },
];

const OUTLOOK_COMPOSE = [
  {
    id: "improve",
    label: "Improve draft",
    skill: "draft",
    fields: [tone],
    inputs: async (host, v) => ({
      body: { retrieval: false },
      kind: "section",
      message: need(await host.readDocument(), "write your message first"),
      notes:
        `Improve this e-mail draft for clarity, in a ${v.tone} tone. Keep its meaning, facts ` +
        "and language. Return only the improved e-mail text.",
      tone: v.tone,
    }),
  },
];

/** The quick actions for a host adapter. */
export function actionsFor(host) {
  if (host.kind === "outlook") return host.mode === "compose" ? OUTLOOK_COMPOSE : OUTLOOK_READ;
  return WORD;
}

/** Split what an action's inputs() returned into the run request body. */
export function runBody(made) {
  const { body = {}, ...inputs } = made;
  return { ...body, inputs };
}

// The earlier turns a follow-up question sends (the API keeps the last 6, clipped).
export const MAX_TURNS = 6;

/** The run body of a follow-up: the question and the last turns, oldest first. */
export function conversationBody(body, turns) {
  const earlier = (turns || []).slice(-MAX_TURNS).map(({ question, answer }) => ({
    question: String(question ?? "").slice(0, 4000), // the API's limits for one turn
    answer: String(answer ?? "").slice(0, 20000),
  }));
  return earlier.length ? { ...body, conversation: earlier } : body;
}
