"""A scripted OpenAI-compatible server for tests: real HTTP on 127.0.0.1, answers on cue.

    with ScriptedLLM() as llm:                      # llm.base_url == "http://127.0.0.1:PORT/v1"
        llm.script(Reply.status(429, retry_after=0.1), Reply.text("Hello [1]."))
        engine = OpenAIEngine(get_settings(llm_base_url=llm.base_url, ...))
        engine.complete([...])
        llm.requests[-1].json["messages"]           # exactly what the engine sent

Scripted replies are used in order, one per chat (or completions) request; when the script
is empty, ``llm.responder(request_json)`` decides (default: echo the start of the last user
message). Streaming requests get Server-Sent Events split into several deltas, like OpenAI's.
Everything is bounded: stalls end after ``MAX_STALL_S`` or when the server closes, and the
server notices a client that hangs up (``RecordedRequest.disconnected``).

Behaviours of real servers, switched on per server:

- ``ScriptedLLM(rejects=LLAMA_CPP_PYTHON)``: refuse ways of constraining output as llama.cpp's
  Python server does (HTTP 500 to ``json_schema``); ``NO_STRUCTURED_OUTPUT`` refuses every
  ``response_format`` and ``grammar`` (HTTP 400). Refused requests are recorded but use no
  scripted reply.
- ``ScriptedLLM(rejects={"logprobs": (400, "...")})``: refuse requests for token
  probabilities, as a server without them does (``Reply.label`` scripts a label answer
  with its alternatives for one that has them).
- ``ScriptedLLM(window=N)``: a prompt (estimated at 4 characters a token) plus ``max_tokens``
  over N gets llama.cpp's HTTP 400 "maximum context length is N tokens";
  ``report_window=True`` also lists N in ``/v1/models`` (as vLLM does) and ``/props`` (as
  llama.cpp's server does).
- ``ScriptedLLM(prompt_rate=R)``: the first token comes after (prompt tokens / R) seconds, as
  on a CPU that reads R prompt tokens a second; ``Reply.text(first_delay=S)`` for one reply.
- ``ScriptedLLM(serial=True)``: one request at a time, the next waits for the last to end,
  even when its client has gone (llama.cpp computes an abandoned prompt to the end).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.llm_finetune import FineTuning

MAX_STALL_S = 10.0
MAX_BODY = 16 * 1024 * 1024
MODEL = "gpt-4o-mini-2024-07-18"

# How servers refuse a way of constraining output: {mode: (HTTP status, error message)}.
LLAMA_CPP_PYTHON = {
    "json_schema": (
        500,
        "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', "
        "'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}",
    ),
}
_UNSUPPORTED = "Invalid parameter: 'response_format' of type '{}' is not supported."
NO_STRUCTURED_OUTPUT = {
    "json_schema": (400, _UNSUPPORTED.format("json_schema")),
    "json_object": (400, _UNSUPPORTED.format("json_object")),
    "grammar": (400, "Unrecognized request argument supplied: grammar"),
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with the class methods."""

    kind: str  # text | status | malformed | empty | stall
    content: str = ""
    code: int = 200  # HTTP status of a status reply
    retry_after: str | None = None  # the Retry-After header, as sent
    retry_after_ms: int | None = None
    stall_s: float = 0.0  # stall: the whole reply; text: after the first deltas
    first_delay_s: float = 0.0  # text: before the first delta (the prompt being read)
    chunk_delay_s: float = 0.0  # pause between streamed deltas
    chunks: int = 4  # how many deltas a streamed text is split into (at most)
    usage: bool = True  # include usage (the usage chunk when streaming)
    prompt_tokens: int | None = None  # default: a deterministic count from the request
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    model: str = MODEL
    message: str = ""  # the error message of a status reply
    # The first answer token's alternatives (token, log probability), sent (up to the
    # request's ``top_logprobs``) when the request asks for ``logprobs``, as OpenAI does.
    alternatives: tuple[tuple[str, float], ...] = ()

    @classmethod
    def text(
        cls,
        content: str,
        *,
        then_stall: float | None = None,
        first_delay: float = 0.0,
        chunk_delay: float = 0.0,
        chunks: int = 4,
        usage: bool = True,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        finish_reason: str = "stop",
        model: str = MODEL,
        alternatives: tuple[tuple[str, float], ...] = (),
    ) -> Reply:
        return cls(
            "text",
            content,
            stall_s=min(then_stall or 0.0, MAX_STALL_S),
            first_delay_s=min(first_delay, MAX_STALL_S),
            chunk_delay_s=chunk_delay,
            chunks=max(1, chunks),
            usage=usage,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish_reason,
            model=model,
            alternatives=alternatives,
        )

    @classmethod
    def label(cls, **probabilities: float) -> Reply:
        """A one-token answer with its alternatives, from probabilities by token (the
        likeliest is the answer): ``Reply.label(negative=0.9, mixed=0.08, The=0.02)``."""
        ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])
        alternatives = tuple((token, math.log(p)) for token, p in ranked)
        return cls.text(ranked[0][0], chunks=1, alternatives=alternatives)

    @classmethod
    def json(cls, value: Any, **kwargs: Any) -> Reply:
        return cls.text(json.dumps(value), **kwargs)

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | str | None = None,
        retry_after_ms: int | None = None,
        message: str = "",
    ) -> Reply:
        """An OpenAI-shaped error; ``retry_after`` is seconds, or a string sent as is."""
        header = None if retry_after is None else str(retry_after)
        return cls(
            "status", code=code, retry_after=header, retry_after_ms=retry_after_ms,
            message=message or f"scripted error {code}",
        )  # fmt: skip

    @classmethod
    def malformed(cls) -> Reply:
        """A 200 whose JSON body (or SSE data line) is cut off."""
        return cls("malformed")

    @classmethod
    def empty(cls) -> Reply:
        """A 200 event stream that ends with no event at all: what llama.cpp's Python
        server sends to a streamed request whose prompt is over its window."""
        return cls("empty")

    @classmethod
    def stall(cls, seconds: float) -> Reply:
        """Send nothing at all for ``seconds`` (at most MAX_STALL_S), then hang up."""
        return cls("stall", stall_s=min(seconds, MAX_STALL_S))


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    json: Any
    received_at: float = field(default_factory=time.monotonic)
    disconnected: threading.Event = field(default_factory=threading.Event)


def echo_reply(request: Any) -> Reply:
    """The default answer: quotes the start of the last user message."""
    messages = request.get("messages") or [] if isinstance(request, dict) else []
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    last = str(users[-1]) if users else ""
    return Reply.text(f"Echo: {last[:80]}")


class ScriptedLLM:
    """The server; a context manager that starts it on a free port and stops it."""

    def __init__(
        self,
        *,
        rejects: dict[str, tuple[int, str]] | None = None,
        window: int | None = None,
        report_window: bool = False,
        prompt_rate: float | None = None,
        serial: bool = False,
    ) -> None:
        self.requests: list[RecordedRequest] = []
        self.finetune = FineTuning()  # /v1/files and /v1/fine_tuning/jobs (llm_finetune.py)
        self.responder: Callable[[Any], Reply] = echo_reply
        self.rejects = dict(rejects or {})
        self.window = window
        self.report_window = report_window
        self.prompt_rate = prompt_rate
        self.serial = threading.Lock() if serial else None
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Forget earlier tests: no script, no recorded requests, echo replies, no fine-tuning
        files or jobs (the ``llm`` fixture shares one server across a test module)."""
        with self._lock:
            self._script.clear()
            self.requests.clear()
        self.responder = echo_reply
        self.finetune = FineTuning()

    def __enter__(self) -> ScriptedLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # wake handlers blocked on a client that never reads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def _next(self, request: Any) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self.responder(request)


def _handler_for(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = llm

    return Handler


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedLLM
    protocol_version = "HTTP/1.0"  # one request per connection: replies end when it closes

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner._connections.add(self.connection)

    def finish(self) -> None:
        with self.owner._lock:
            self.owner._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        if self.owner.finetune.handle(self, "GET"):
            return
        path = self.path.split("?")[0].rstrip("/")
        told = self.owner.window if self.owner.report_window else None
        if path.endswith("/models"):
            entry: dict[str, Any] = {"id": MODEL, "object": "model"}
            if told is not None:
                entry["max_model_len"] = told
            self._send_json(200, {"object": "list", "data": [entry]})
        elif path == "/props" and told is not None:
            self._send_json(200, {"default_generation_settings": {"n_ctx": told}})
        else:
            self._send_json(404, _error(404, f"no route {self.path}"))

    def do_POST(self) -> None:
        if self.owner.finetune.handle(self, "POST"):
            return
        path = self.path.split("?")[0]
        if not (
            path in ("/v1/chat/completions", "/v1/completions")
            or re.fullmatch(r"/openai/deployments/[^/]+/chat/completions", path)
        ):
            self._send_json(404, _error(404, f"no route {self.path}"))
            return
        length = min(int(self.headers.get("content-length") or 0), MAX_BODY)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._send_json(400, _error(400, "request body is not JSON"))
            return
        record = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        with self.owner._lock:
            self.owner.requests.append(record)
        self.record = record
        request = body if isinstance(body, dict) else {}
        refusal = self._refusal(request)
        if refusal is not None:
            self._send_json(refusal[0], _error(refusal[0], refusal[1]))
            return
        serial = self.owner.serial or contextlib.nullcontext()
        with serial:  # a one-at-a-time server finishes each request, abandoned or not
            reply = self.owner._next(body)
            stream = request.get("stream") is True
            try:
                self._answer(reply, request, stream, completions=path == "/v1/completions")
            except OSError:  # the client hung up mid-reply
                record.disconnected.set()

    def _refusal(self, body: dict) -> tuple[int, str] | None:
        """The error a real server gives this request before generating, if any."""
        format_ = body.get("response_format")
        mode = format_.get("type") if isinstance(format_, dict) else None
        if mode is None and "grammar" in body:
            mode = "grammar"
        if mode in self.owner.rejects:
            return self.owner.rejects[mode]
        if body.get("logprobs") and "logprobs" in self.owner.rejects:
            return self.owner.rejects["logprobs"]
        window = self.owner.window
        if window is not None:
            wanted = _prompt_tokens(body) + int(body.get("max_tokens") or 0)
            if wanted > window:
                return 400, (
                    f"This model's maximum context length is {window} tokens. However, you "
                    f"requested {wanted} tokens. Please reduce the length of the messages."
                )
        return None

    def _answer(self, reply: Reply, body: dict, stream: bool, completions: bool = False) -> None:
        if reply.kind == "stall":
            self._pause(reply.stall_s)
            return
        if reply.kind == "status":
            headers = {}
            if reply.retry_after is not None:
                headers["Retry-After"] = reply.retry_after
            if reply.retry_after_ms is not None:
                headers["retry-after-ms"] = str(reply.retry_after_ms)
            self._send_json(reply.code, _error(reply.code, reply.message), headers)
            return
        if reply.kind == "empty":
            self._start_sse()
            return
        if reply.kind == "malformed":
            if stream:
                self._start_sse()
                self.wfile.write(b'data: {"id": "chatcmpl-x", "choices": [\n\n')
            else:
                raw = b'{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{'
                self._send_raw(200, raw, "application/json")
            return
        usage = _usage(reply, body)
        reading = reply.first_delay_s
        if self.owner.prompt_rate:
            reading += min(MAX_STALL_S, _prompt_tokens(body) / self.owner.prompt_rate)
        if not stream:
            self._pause(reply.stall_s + reading)
            message = {"role": "assistant", "content": reply.content}
            choice: dict[str, Any] = {"index": 0, "finish_reason": reply.finish_reason}
            choice.update({"text": reply.content} if completions else {"message": message})
            payload = {
                "id": "chatcmpl-scripted",
                "object": "text_completion" if completions else "chat.completion",
                "created": int(time.time()),
                "model": reply.model,
                "choices": [choice],
            }
            if reply.usage:
                payload["usage"] = usage
            self._send_json(200, payload)
            return
        self._start_sse()
        if reading and self._read_prompt(reading):
            return
        chunk = _text_chunk if completions else _chunk
        if not completions:
            self._event(_chunk(reply, {"role": "assistant", "content": ""}))
        for i, piece in enumerate(_split(reply.content, reply.chunks)):
            if i and reply.chunk_delay_s and self._pause(reply.chunk_delay_s):
                return
            event = chunk(reply, {"content": piece})
            if i == 0 and body.get("logprobs") is True and reply.alternatives and not completions:
                event["choices"][0]["logprobs"] = _logprobs(reply, body)
            self._event(event)
            if i == 0 and reply.stall_s and self._pause(reply.stall_s):
                return
        self._event(chunk(reply, {}, reply.finish_reason))
        options = body.get("stream_options") or {}
        if reply.usage and options.get("include_usage"):
            self._event({**chunk(reply, {}), "choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _read_prompt(self, seconds: float) -> bool:
        """The wait before the first token; True if the client hung up meanwhile. A serial
        server reads the whole prompt even then, as llama.cpp does."""
        if self.owner.serial is None:
            return self._pause(seconds)
        self.owner._closing.wait(min(seconds, MAX_STALL_S))
        return self._pause(0.01)

    def _pause(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True (and recorded) if the client hung up meanwhile."""
        deadline = time.monotonic() + min(seconds, MAX_STALL_S)
        while not self.owner._closing.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable:
                try:
                    gone = self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    gone = True
                if gone:
                    self.record.disconnected.set()
                    return True
        return True

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()

    def _event(self, data: dict) -> None:
        self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
        self.wfile.flush()

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_raw(
        self, status: int, raw: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()


def _error(status: int, message: str) -> dict:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}
    return {
        "error": {
            "message": message,
            "type": kinds.get(status, "server_error" if status >= 500 else "invalid_request_error"),
            "param": None,
            "code": None,
        }
    }


def _prompt_tokens(body: dict) -> int:
    """A deterministic count: four characters a token, of the messages or the prompt."""
    messages = body.get("messages") or []
    chars = sum(len(str(m.get("content", ""))) for m in messages if isinstance(m, dict))
    return (chars + len(str(body.get("prompt") or ""))) // 4 + 1


def _usage(reply: Reply, body: dict) -> dict[str, int]:
    prompt = reply.prompt_tokens if reply.prompt_tokens is not None else _prompt_tokens(body)
    completion = reply.completion_tokens
    if completion is None:
        completion = len(reply.content.split()) + 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _chunk(reply: Reply, delta: dict, finish_reason: str | None = None) -> dict:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _logprobs(reply: Reply, body: dict) -> dict:
    """OpenAI's ``logprobs`` of a chunk: the first token with its top alternatives."""
    top = [{"token": t, "logprob": lp, "bytes": _bytes(t)}
           for t, lp in reply.alternatives[: int(body.get("top_logprobs") or 0)]]  # fmt: skip
    token, logprob = reply.alternatives[0]
    return {"content": [{"token": token, "logprob": logprob, "bytes": _bytes(token),
                         "top_logprobs": top}], "refusal": None}  # fmt: skip


def _bytes(token: object) -> list[int] | None:
    return list(token.encode()) if isinstance(token, str) else None  # a hostile test's token


def _text_chunk(reply: Reply, delta: dict, finish_reason: str | None = None) -> dict:
    """A ``/v1/completions`` stream chunk (text, not a message delta)."""
    return {
        "id": "cmpl-scripted",
        "object": "text_completion",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [
            {"index": 0, "text": delta.get("content", ""), "finish_reason": finish_reason,
             "logprobs": None}
        ],
    }  # fmt: skip


def _split(text: str, parts: int) -> list[str]:
    """Split at word starts into at most ``parts`` pieces that join back to ``text``."""
    words = re.findall(r"\s*\S+\s*|\s+", text) or [""]
    size = -(-len(words) // parts)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]
