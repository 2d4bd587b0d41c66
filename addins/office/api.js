// The Office Copilot API client: JSON calls, and skill runs streamed as Server-Sent Events.
//
// Why fetch and not EventSource: a run is a POST with a JSON body, and EventSource can only
// GET. So the stream is read from fetch's ReadableStream and parsed here, per the SSE rules
// (events end at a blank line, `data:` lines join with "\n", `:` lines are comments).

const MAX_EVENT_CHARS = 8 * 1024 * 1024; // a damaged stream must not grow memory forever

/** An error from the API, carrying its RFC 9457 problem (status, title, detail, line…). */
export class ApiError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || "The request failed.");
    this.name = "ApiError";
    this.problem = problem;
    this.status = problem.status;
  }
}

/** What a person can do about a problem, in plain words (the problem's detail says what). */
export function advice(problem) {
  const status = problem?.status ?? 0;
  if (status === 0) return "Check your network connection, then try again.";
  if (status === 401) return "Sign in again (close and reopen the pane).";
  if (status === 403) return "Ask your administrator for access.";
  if (status === 404) return "It may have been deleted: reload the list and try again.";
  if (status === 413) return "Select a shorter part of the text and try again.";
  if (status === 422) return "Correct the input shown and try again.";
  if (status === 429) return "Wait a minute, then try again.";
  if (status === 502 || status === 503 || status === 504) {
    return "The language model or the server is busy or down: try again in a moment.";
  }
  if (status >= 500) return "Try again; if it keeps happening, report the error id.";
  return "";
}

/** The problem body of a failed response; a non-JSON answer still gets words. */
export async function problemOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const problem = body && typeof body === "object" && !Array.isArray(body) ? body : {};
  return {
    ...problem,
    status: response.status,
    title: String(problem.title || response.statusText || "Error"),
    detail: String(problem.detail || `The server answered ${response.status}.`),
  };
}

/**
 * Parse Server-Sent Events from a ReadableStream of bytes.
 * Yields {event, data} with data parsed as JSON; chunk boundaries may fall anywhere.
 */
export async function* readEvents(stream) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // A trailing "\r" may be half of a "\r\n" whose "\n" is in the next chunk: hold it.
      const hold = !done && buffer.endsWith("\r") ? "\r" : "";
      const lines = (hold ? buffer.slice(0, -1) : buffer).split(/\r\n|\n|\r/);
      buffer = done ? "" : lines.pop() + hold; // the last piece may be a partial line
      if (buffer.length > MAX_EVENT_CHARS) throw streamError("an event was too large");
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event: event || "message", data: parseData(data.join("\n")) };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (done) {
        if (data.length) yield { event: event || "message", data: parseData(data.join("\n")) };
        return;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function parseData(text) {
  try {
    return JSON.parse(text);
  } catch {
    throw streamError("an event was not valid JSON");
  }
}

function streamError(what) {
  return new ApiError({
    status: 0,
    title: "Damaged answer",
    detail: `The answer from the server was damaged (${what}). Try again.`,
  });
}

const enc = encodeURIComponent;

/**
 * The client. `getToken()` returns a bearer token (or null); `fetchImpl` is for tests.
 * Every method returns parsed JSON or throws ApiError.
 */
export function createApi({ base = "", getToken = async () => null, fetchImpl } = {}) {
  const doFetch = fetchImpl || ((...args) => globalThis.fetch(...args));

  async function request(method, path, body, { accept = "application/json", signal } = {}) {
    const headers = { Accept: accept };
    const token = await getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      response = await doFetch(base + path, { method, headers, body: payload, signal });
    } catch (error) {
      if (error?.name === "AbortError") throw error;
      throw new ApiError({
        status: 0,
        title: "Network error",
        detail: "Could not reach the Office Copilot server.",
      });
    }
    if (!response.ok) throw new ApiError(await problemOf(response));
    return response;
  }

  async function json(method, path, body) {
    const response = await request(method, path, body);
    return response.status === 204 ? null : response.json();
  }

  /**
   * Run a skill, streaming: onSources(sources), onDelta(text), onProgress(event, data) for
   * "queue" (answers ahead on the model), "progress" (a long document's parts) and
   * "writing" (a structured answer's length so far); resolves to the RunOut.
   */
  async function run(skillId, body, { onSources, onDelta, onProgress, signal } = {}) {
    const response = await request("POST", `/v1/skills/${enc(skillId)}/run`, body, {
      accept: "text/event-stream",
      signal,
    });
    if (!response.headers.get("content-type")?.includes("text/event-stream")) {
      return response.json(); // a server that does not stream still answers
    }
    for await (const { event, data } of readEvents(response.body)) {
      if (event === "sources") onSources?.(data.sources || []);
      else if (event === "delta") onDelta?.(String(data.text ?? ""));
      else if (event === "queue" || event === "progress" || event === "writing") onProgress?.(event, data);
      else if (event === "done") return data;
      else if (event === "error") throw new ApiError(data);
    }
    throw new ApiError({
      status: 0,
      title: "Interrupted",
      detail: "The connection closed before the answer was complete.",
    });
  }

  return {
    run,
    me: () => json("GET", "/v1/me"),
    skills: (surface) => json("GET", `/v1/skills?surface=${enc(surface)}`),
    skill: (id) => json("GET", `/v1/skills/${enc(id)}`),
    skillVersion: (id, version) => json("GET", `/v1/skills/${enc(id)}?version=${enc(version)}`),
    save: (id, text, message = "") => json("PUT", `/v1/skills/${enc(id)}`, { text, message }),
    fork: (id, newId) => json("POST", `/v1/skills/${enc(id)}/fork`, { new_id: newId }),
    versions: (id) => json("GET", `/v1/skills/${enc(id)}/versions`),
    revert: (id, version) => json("POST", `/v1/skills/${enc(id)}/revert`, { version }),
    test: (id, candidateText) =>
      json("POST", `/v1/skills/${enc(id)}/test`, { candidate_text: candidateText ?? null }),
    preview: (id, body) => json("POST", `/v1/skills/${enc(id)}/preview`, body),
    readAhead: (id, body) => json("POST", `/v1/skills/${enc(id)}/read-ahead`, body),
    feedback: (runId, body) => json("POST", `/v1/runs/${enc(runId)}/feedback`, body),
  };
}
