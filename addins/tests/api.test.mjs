// The API client: SSE parsing over fetch's ReadableStream, problems, tokens.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, advice, createApi, problemOf, readEvents } from "../office/api.js";

const encoder = new TextEncoder();

/** A byte stream delivered in the given pieces (strings). */
function streamOf(pieces) {
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(encoder.encode(piece));
      controller.close();
    },
  });
}

async function collect(pieces) {
  const out = [];
  for await (const event of readEvents(streamOf(pieces))) out.push(event);
  return out;
}

const WIRE =
  ": run started\n\n" +
  'event: sources\ndata: {"sources": [{"n": 1}]}\n\n' +
  'event: delta\ndata: {"text": "Größe "}\n\n' +
  'event: delta\ndata: {"text": "[1]."}\n\n' +
  'event: done\ndata: {"run_id": "r1", "text": "Größe [1].", "citations": []}\n\n';

const EXPECTED = [
  { event: "sources", data: { sources: [{ n: 1 }] } },
  { event: "delta", data: { text: "Größe " } },
  { event: "delta", data: { text: "[1]." } },
  { event: "done", data: { run_id: "r1", text: "Größe [1].", citations: [] } },
];

test("events parse whatever the chunk boundaries (even inside a UTF-8 character)", async () => {
  const bytes = encoder.encode(WIRE);
  for (let cut = 1; cut < bytes.length; cut += 1) {
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(bytes.slice(0, cut));
        controller.enqueue(bytes.slice(cut));
        controller.close();
      },
    });
    const out = [];
    for await (const event of readEvents(stream)) out.push(event);
    assert.deepEqual(out, EXPECTED, `cut at byte ${cut}`);
  }
});

test("CRLF line ends (split between chunks), multi-line data and a last event without a blank line", async () => {
  const out = await collect(["event: delta\r", "\ndata: {\"text\":\r\n", 'data: "a"}\r\n\r\n', 'data: {"x": 1}']);
  assert.deepEqual(out, [
    { event: "delta", data: { text: "a" } },
    { event: "message", data: { x: 1 } },
  ]);
});

test("a damaged event is an ApiError in plain words", async () => {
  await assert.rejects(collect(["event: delta\ndata: {not json\n\n"]), (e) => e instanceof ApiError && /damaged/.test(e.message));
});

function fakeFetch(respond) {
  const requests = [];
  const fetchImpl = async (url, init) => {
    requests.push({ url, ...init });
    return respond(url, init);
  };
  return { fetchImpl, requests };
}

test("run streams: sources, deltas, then the finished run; sends the bearer token", async () => {
  const { fetchImpl, requests } = fakeFetch(
    () => new Response(streamOf([WIRE.slice(0, 50), WIRE.slice(50)]), { headers: { "content-type": "text/event-stream" } }),
  );
  const api = createApi({ base: "http://127.0.0.1:1", getToken: async () => "dev:anna", fetchImpl });
  const deltas = [];
  let sources = null;
  const done = await api.run("ask", { inputs: { question: "x" } }, {
    onSources: (s) => (sources = s),
    onDelta: (t) => deltas.push(t),
  });
  assert.equal(done.run_id, "r1");
  assert.deepEqual(deltas, ["Größe ", "[1]."]);
  assert.equal(sources.length, 1);
  const [request] = requests;
  assert.equal(request.url, "http://127.0.0.1:1/v1/skills/ask/run");
  assert.equal(request.method, "POST");
  assert.equal(request.headers.Authorization, "Bearer dev:anna");
  assert.equal(request.headers.Accept, "text/event-stream");
  assert.deepEqual(JSON.parse(request.body), { inputs: { question: "x" } });
});

test("run passes progress events on and streams no text for a structured answer", async () => {
  const wire =
    'event: queue\ndata: {"position": 1}\n\n' +
    'event: writing\ndata: {"characters": 12}\n\n' +
    'event: done\ndata: {"run_id": "r2", "text": "negative", "data": {"label": "negative"}}\n\n';
  const { fetchImpl } = fakeFetch(() => new Response(streamOf([wire]), { headers: { "content-type": "text/event-stream" } }));
  const seen = [];
  const done = await createApi({ fetchImpl }).run("sentiment", {}, {
    onDelta: (t) => seen.push(["delta", t]),
    onProgress: (event, data) => seen.push([event, data]),
  });
  assert.equal(done.run_id, "r2");
  assert.deepEqual(seen, [["queue", { position: 1 }], ["writing", { characters: 12 }]]);
});

test("an error event rejects with its problem; a cut stream says it was interrupted", async () => {
  const problem = { status: 502, title: "Language model error", detail: "The model server failed." };
  let { fetchImpl } = fakeFetch(() => new Response(streamOf([`event: error\ndata: ${JSON.stringify(problem)}\n\n`]),
    { headers: { "content-type": "text/event-stream" } }));
  await assert.rejects(createApi({ fetchImpl }).run("ask", {}), (e) => e.status === 502 && e.message === problem.detail);
  ({ fetchImpl } = fakeFetch(() => new Response(streamOf(['event: delta\ndata: {"text": "a"}\n\n']),
    { headers: { "content-type": "text/event-stream" } })));
  await assert.rejects(createApi({ fetchImpl }).run("ask", {}), /closed before the answer was complete/);
});

test("a 422 problem keeps its fields (line) for the editor", async () => {
  const body = { type: "about:blank", title: "Invalid input", status: 422, detail: "unknown key tsak", line: 7 };
  const { fetchImpl } = fakeFetch(() => Response.json(body, { status: 422 }));
  const error = await createApi({ fetchImpl }).save("my-ask", "text").catch((e) => e);
  assert.ok(error instanceof ApiError);
  assert.equal(error.problem.line, 7);
  assert.equal(error.message, "unknown key tsak");
  assert.match(advice(error.problem), /Correct/);
});

test("a network failure and a non-JSON error page still read as plain words", async () => {
  const down = createApi({ fetchImpl: async () => { throw new TypeError("fetch failed"); } });
  await assert.rejects(down.me(), (e) => e.status === 0 && /Could not reach/.test(e.message));
  const problem = await problemOf(new Response("<html>Bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
  assert.equal(problem.status, 502);
  assert.match(problem.detail, /502/);
  assert.match(advice(problem), /try again/);
});

test("JSON routes: paths are encoded, 204 gives null", async () => {
  const { fetchImpl, requests } = fakeFetch((url) =>
    url.endsWith("/feedback") ? Response.json({ rating: 1 }) : new Response(null, { status: 204 }));
  const api = createApi({ fetchImpl });
  assert.deepEqual(await api.feedback("r/1", { rating: 1, edited_text: "better" }), { rating: 1 });
  assert.equal(requests[0].url, "/v1/runs/r%2F1/feedback");
  assert.deepEqual(JSON.parse(requests[0].body), { rating: 1, edited_text: "better" });
  await api.skills("word");
  assert.equal(requests[1].url, "/v1/skills?surface=word");
});
