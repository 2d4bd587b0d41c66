"""The chat client of the embedded engine: the ``llm`` engine's client, pointed at our server.

Local and cloud models share one code path: every call goes through ``OpenAIEngine``
(streaming, JSON output and its repair, cancel, timeouts), pointed at the managed server's
loopback URL. What this wrapper adds is what only a model we run ourselves needs:

- the server is started (or restarted, if it died) before each call, under the queue;
- calls take turns (``queue.py``), and a waiting caller hears its position;
- every call streams, even when the caller wants only the final text, so a cancelled or
  disconnected caller closes the connection and llama.cpp stops generating at the next
  token (a plain request would run to the end with nobody waiting for it);
- no retries: the server runs one request at a time, so a retry after a timeout would queue
  behind the abandoned prompt it is still computing. A call that times out stops the server
  instead (the next call starts a fresh one), and a call whose server died says so;
- no redaction: prompts never leave the machine.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from copilot.config import Settings
from copilot.llm import retry
from copilot.llm.embedded import server
from copilot.llm.embedded.classify import CLASSIFY_PATH
from copilot.llm.embedded.models import ModelFile
from copilot.llm.embedded.queue import GenerationQueue, queue_for
from copilot.llm.errors import LLMError
from copilot.llm.openai_engine import Completion, OpenAIEngine
from copilot.llm.redact import Redactor
from copilot.llm.types import Message, StopAt

log = logging.getLogger("copilot.embedded")

# Who hears queue positions for calls made in this context (the skill engine sets it to
# emit a "queue" event of the run).
queue_listener: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar(
    "embedded_queue_listener", default=None
)

RATE_TTL_S = 10.0  # how long the server's measured prompt rate is used before asking again
DEATH_GRACE_S = 1.0  # how long a broken connection may take to show as a dead process


def _say(line: str) -> None:
    """Loading takes seconds: say so on a terminal; elsewhere only log it."""
    log.info(line)
    if sys.stderr.isatty():
        print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Classified:
    """A classify call's answer: per text, log P(choice) (in the order asked), whether the
    text was cut to fit, and the tokens the model read."""

    logprobs: list[list[float]]
    cut: list[bool]
    tokens_read: int


def _error_of(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("error") or reply.text[:200])
    except ValueError:
        return reply.text[:200]


class EmbeddedChat:
    """A ``ChatModel`` answering from the managed llama.cpp server."""

    def __init__(
        self,
        settings: Settings,
        file: ModelFile,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.file = file
        self.progress = progress or _say
        self.queue: GenerationQueue = queue_for(server.run_dir(settings) / "embedded-gen.lock")
        self._clients: dict[int, OpenAIEngine] = {}
        self._lock = threading.Lock()
        self._server_rate: float | None = None
        self._rate_read_at = -RATE_TTL_S

    @property
    def model(self) -> str:
        return self.file.id

    def start(self) -> server.ServerInfo:
        """The server, started if it is not running."""
        return server.ensure(self.settings, self.file, progress=self.progress)

    @property
    def window(self) -> int:
        """The context window the running server reports (it is started if needed)."""
        return self.start().n_ctx

    def prompt_rate(self) -> float | None:
        """Prompt tokens a second the model reads: the budget of a prompt follows it
        (``skills.budget``). What the server measured first (tokens it really read, a
        cached prefix not counted, and known to every process: a CLI command starts with
        nothing measured), else this process's calls, else a CPU's."""
        now = time.monotonic()
        if now - self._rate_read_at > RATE_TTL_S:
            found = server.running_status(self.settings)
            rate = found[1].get("prompt_rate") if found is not None else None
            self._server_rate = float(rate) if isinstance(rate, int | float) and rate > 0 else None
            self._rate_read_at = now
        if self._server_rate is not None:
            return self._server_rate
        with self._lock:
            client = next(iter(self._clients.values()), None)
        return client.prompt_rate() if client is not None else retry.CPU_PROMPT_RATE

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
        on_delta: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        redactor: Redactor | None = None,
        model: str | None = None,  # one model per server: a template's model name is ignored
        stop_at: StopAt | None = None,
    ) -> Completion:
        shown = 0

        def delta(text: str) -> None:
            nonlocal shown
            shown += 1
            if on_delta is not None:
                on_delta(text)

        with self.queue.turn(cancel=cancel, on_position=queue_listener.get()):
            info = self.start()
            try:
                return self._client(info).complete(
                    messages,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    json_schema=json_schema,
                    on_delta=delta,
                    cancel=cancel,
                    redactor=redactor,
                    model=self.file.id,
                    stop_at=stop_at,
                )
            except LLMError as exc:
                explained = self._explain(exc, info)
                if explained is exc and not shown:
                    explained = self._over_window(exc, info, messages, max_tokens)
                if explained is exc:
                    raise
                raise explained from exc

    def read_ahead(self, messages: Sequence[Message]) -> bool:
        """Have the model read ``messages`` now, while it would sit idle, so that a call
        that starts with them later begins writing at once; False if it was not idle.

        On a CPU the prompt is most of the wait: a new 300-word mail takes the 1.5B model
        ~4 s to read on two cores before its first word. Outlook's pane knows the mail as
        soon as it opens on it, seconds before anyone asks for a summary; the model reads
        the exact prompt that summary will send (one token is generated, the least a
        request can ask for) and the server's prompt cache keeps what it read. Never
        queued: if any call holds or waits for the model, nothing is read (False), so a
        read-ahead delays a real call by at most the one it had already begun."""
        with self.queue.idle_turn() as turn:
            if not turn:
                return False
            info = self.start()
            self._client(info).complete(messages, max_tokens=1, model=self.file.id)
            return True

    def classify(
        self,
        prefix: str,
        texts: Sequence[str],
        choices: Sequence[Sequence[str]],
        *,
        after: str = "",
        max_text_tokens: int = 512,
        cancel: threading.Event | None = None,
    ) -> Classified:
        """log P(choice) for each text as the model's first answer token after ``prefix``,
        the text and ``after`` (``classify.py`` in the model process says how). One call,
        one turn of the queue; a caller with many texts sends them in batches of
        ``classify.BATCH``, so a user's run waits at most one batch behind it."""
        body = {
            "prefix": prefix,
            "texts": list(texts),
            "after": after,
            "choices": [list(c) for c in choices],
            "max_text_tokens": max_text_tokens,
        }
        with self.queue.turn(cancel=cancel, on_position=queue_listener.get()):
            info = self.start()
            url = f"http://{server.HOST}:{info.port}{CLASSIFY_PATH}"
            try:
                # ASCII JSON: a lone surrogate in a text travels as a "\ud800" escape (the
                # model process reads it as "?") instead of failing to encode here.
                reply = httpx.post(
                    url,
                    content=json.dumps(body),
                    headers={"Content-Type": "application/json"},
                    timeout=self.settings.llm_timeout_s,
                )
            except httpx.TimeoutException as exc:
                raise self._explain(LLMError("timeout", f"{url}: {exc}"), info) from exc
            except httpx.HTTPError as exc:
                raise self._explain(LLMError("server", f"{url}: {exc}"), info) from exc
        if reply.status_code == 400:
            raise LLMError("bad_request", f"the model process refused: {_error_of(reply)}")
        if reply.status_code != 200:
            raise LLMError("server", f"{url}: HTTP {reply.status_code}: {_error_of(reply)}")
        try:
            data = reply.json()
            found = Classified(
                logprobs=[[float(x) for x in row] for row in data["logprobs"]],
                cut=[bool(c) for c in data["cut"]],
                tokens_read=int(data["tokens_read"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LLMError("bad_response", f"{url}: not a classify reply: {exc}") from exc
        if len(found.logprobs) != len(texts) or any(len(r) != len(choices) for r in found.logprobs):
            raise LLMError("bad_response", f"{url}: the reply does not match the request")
        return found

    def _client(self, info: server.ServerInfo) -> OpenAIEngine:
        with self._lock:
            client = self._clients.get(info.port)
            if client is None:
                local = self.settings.model_copy(
                    update={
                        "llm_base_url": info.base_url,
                        "llm_api_key": None,
                        "llm_azure_endpoint": None,
                        "llm_model": self.file.id,
                        "llm_max_retries": 0,
                        "redact": False,
                        "redact_names": [],
                    }
                )
                engine = OpenAIEngine(
                    local,
                    serial=True,  # llama.cpp computes one request at a time
                    context_window=info.n_ctx,
                    # A prefilled answer start goes as a raw ChatML prompt when the model's
                    # chat template is ChatML (both packaged models), else as an instruction.
                    prefill="chatml" if info.chatml else "instruct",
                )
                self._clients = {info.port: engine}  # an old port is gone
                client = self._clients[info.port]
            return client

    def _over_window(
        self,
        exc: LLMError,
        info: server.ServerInfo,
        messages: Sequence[Message],
        max_tokens: int | None,
    ) -> LLMError:
        """A prompt too long for the window, said in the embedded engine's terms (its window
        is COPILOT_EMBEDDED_CONTEXT, not the cloud setting); else ``exc`` unchanged.

        llama.cpp checks the window only once a stream has begun, and then just closes it;
        so a stream that ended before its first token is checked here with the server's
        own tokenizer."""
        if exc.kind not in ("context_overflow", "bad_response", "server"):
            return exc
        tokens = server.count_tokens(info, "\n".join(m.content for m in messages))
        # The chat template adds a few tokens per message and may add a default system prompt.
        prompt = tokens + 6 * len(messages) + 32 if tokens is not None else None
        if exc.kind != "context_overflow" and (
            prompt is None or prompt + (max_tokens or 0) <= info.n_ctx
        ):
            return exc
        trained = self.file.packaged.context_window if self.file.packaged else None
        larger = f" (up to {trained:,})" if trained and trained > info.n_ctx else ""
        size = f"about {prompt:,} tokens" if prompt is not None else "its tokens"
        return LLMError(
            "context_overflow",
            f"The prompt ({size}) and the answer ({max_tokens or 0:,} tokens) do not fit the "
            f"embedded model's window of {info.n_ctx:,} tokens. Shorten the input, or set "
            f"COPILOT_EMBEDDED_CONTEXT higher{larger}.",
            attempts=exc.attempts,
        )

    def _explain(self, exc: LLMError, info: server.ServerInfo) -> LLMError:
        """The error of a call whose server died or hung, in words that say what happened
        and what happens next; other errors pass through unchanged."""
        if exc.kind in ("server", "timeout", "bad_response"):
            deadline = time.monotonic() + (DEATH_GRACE_S if exc.kind == "server" else 0)
            how = server.died(info)
            while how is None and time.monotonic() < deadline:
                time.sleep(0.05)
                how = server.died(info)
            if how is not None:
                return LLMError(
                    "server",
                    f"The embedded model process ({how}) stopped while answering, so this "
                    f"request failed; the next request starts it again. Its log: "
                    f"{server.log_path(self.settings)}",
                    attempts=exc.attempts,
                )
        if exc.kind == "timeout":
            server.stop(self.settings, force=True)  # a hung model has nothing to finish
            return LLMError(
                "timeout",
                f"{exc} The embedded model server was stopped, so it does not go on "
                "computing the abandoned prompt; the next request starts it again.",
                attempts=exc.attempts,
            )
        return exc
