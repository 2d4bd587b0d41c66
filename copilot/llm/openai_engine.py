"""The ``llm`` engine: one chat completion from OpenAI, Azure OpenAI or any compatible server,
a cloud model or a small one on a CPU (llama.cpp) alike.

Every call is streamed, JSON ones too, and read (``read_answer``) against two
deadlines: the first token may take ``llm_timeout_s`` plus the time the server needs to
read the prompt (its tokens over the prompt rate: ``COPILOT_LLM_PROMPT_RATE``, or the
slowest rate measured on this server), and after it no gap between chunks may exceed
``llm_timeout_s``. Cancel is noticed within ``streaming.POLL_S`` at any point, the wait for
the first token included; the request is then closed.

Retries are ours, not the SDK's (``max_retries=0``), so one loop decides everything: which
failures are worth another try (429, 5xx, connection errors, timeouts, unreadable bodies),
how long to wait (``Retry-After`` / ``retry-after-ms`` when the server says, else exponential
backoff with jitter, never longer than ``retry.MAX_WAIT_S``), and when to stop. 4xx answers
are never retried: asking again cannot fix a bad request, a wrong key or a missing model.
A server that computes one request at a time (``serial``: llama.cpp, the embedded engine)
goes on computing a request we gave up on, so a timeout there is never retried: the retry
would only queue behind the abandoned request. Once a delta has reached ``on_delta`` the
caller may have shown it, so a failure after that is raised, never retried silently.

JSON output goes through the first mode the server accepts (``structured.JSON_MODES``:
json_schema, json_object with the schema, a grammar, the schema in the prompt); a refusal
of a mode is not a fault and is not retried, and the accepted mode is remembered per
server and model (``capabilities``). A prompt over the model's window is its own error
naming ``COPILOT_LLM_CONTEXT_WINDOW``; the window itself is read from the server when it
says it. A final assistant message is a prefill (``prefill``).

Privacy: when ``settings.redact`` is on (or names are listed), every message is redacted
before it leaves; ``Completion.sent`` holds the exact messages sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import openai

from copilot.config import Settings
from copilot.llm import capabilities, retry, structured, tokens
from copilot.llm.completion import Completion as Completion  # re-exported
from copilot.llm.errors import LLMError
from copilot.llm.failures import Failure, Failures
from copilot.llm.prefill import CHATML_STOP, PrefillMode, chatml, instructed, split
from copilot.llm.read_answer import Delta, Request, read_answer
from copilot.llm.redact import RedactionPolicy, Redactor
from copilot.llm.types import Message, StopAt
from copilot.llm.usage import Usage, usage_of
from copilot.llm.usage import estimate_cost as estimate_cost  # re-exported

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class _Answer:
    text: str
    usage: Usage
    model: str
    finish_reason: str | None
    requests: int
    first_token_s: float | None
    alternatives: tuple[tuple[str, float], ...] | None = None


class OpenAIEngine:
    """Chat completions with our retries, deadlines, streaming, cancel and JSON output.

    ``serial``, ``prompt_rate``, ``context_window`` and ``prefill`` override the settings of
    the same names (``llm_serial`` ...) for a server the caller knows, e.g. the embedded
    llama.cpp process.
    """

    name = "llm"

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Sleep | None = None,
        serial: bool | None = None,
        prompt_rate: float | None = None,
        context_window: int | None = None,
        prefill: PrefillMode | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self.serial = settings.llm_serial if serial is None else serial
        self._rate = prompt_rate or settings.llm_prompt_rate
        self.prefill_mode: PrefillMode = prefill or settings.llm_prefill
        key = self._key()
        self._azure = bool(settings.llm_azure_endpoint)
        if settings.llm_azure_endpoint:
            if not key:
                raise LLMError(
                    "config",
                    f"Azure OpenAI at {settings.llm_azure_endpoint} needs an API key: "
                    "set COPILOT_LLM_API_KEY.",
                )
            self.model = settings.llm_azure_deployment or settings.llm_model
            self.server = settings.llm_azure_endpoint
            self._client: openai.OpenAI = openai.AzureOpenAI(
                azure_endpoint=settings.llm_azure_endpoint,
                api_version=settings.llm_azure_api_version,
                api_key=key,
                timeout=settings.llm_timeout_s,
                max_retries=0,
            )
        elif settings.llm_base_url or key:
            self.model = settings.llm_model
            self.server = settings.llm_base_url or "https://api.openai.com/v1"
            self._client = openai.OpenAI(
                base_url=settings.llm_base_url,
                api_key=key or "not-needed",
                timeout=settings.llm_timeout_s,
                max_retries=0,
            )
        else:
            raise LLMError(
                "config",
                "No LLM is configured: set COPILOT_LLM_BASE_URL (any OpenAI-compatible "
                "server), COPILOT_LLM_API_KEY (OpenAI) or COPILOT_LLM_AZURE_ENDPOINT.",
            )
        if context_window is not None:
            self.facts().window = context_window
        self._policy = RedactionPolicy.from_settings(settings)
        self.failures = Failures(f"the model {self.model} at {self.server}", self.serial, key)

    # -- what the server is -----------------------------------------------------------------

    def facts(self, model: str | None = None) -> capabilities.Facts:
        """What this server and model accept, and how fast it reads (shared, learned)."""
        return capabilities.facts_for(self.server, model or self.model)

    def context_window(self) -> int:
        """Tokens the model accepts, prompt plus answer: what the server says (asked once),
        capped by ``COPILOT_LLM_CONTEXT_WINDOW`` when that is set; the setting otherwise."""
        configured = self.settings.llm_context_window
        told = self.server_window()
        if told is None:
            return configured
        explicit = "llm_context_window" in self.settings.model_fields_set
        return min(configured, told) if explicit else told

    def server_window(self) -> int | None:
        """The window the server states (``/v1/models``, llama.cpp's ``/props``), or None."""
        facts = self.facts()
        if facts.window is not None or facts.window_checked:
            return facts.window
        facts.window_checked = True
        if self._azure or self.server.startswith("https://api.openai.com"):
            return None  # neither says; their windows are larger than any default here
        facts.window = capabilities.ask_window(self.server, self.model, self._key())
        return facts.window

    def prompt_rate(self) -> float | None:
        """Prompt tokens a second this server reads: measured on real calls, else the
        setting, else a CPU's for a one-at-a-time server; None: fast, no time budget."""
        measured = self.facts().typical_rate()
        if measured is not None:
            return measured
        return self._rate or (retry.CPU_PROMPT_RATE if self.serial else None)

    def warm_up(self) -> None:
        """Import what the first call would (the SDK loads its resources on first use,
        ~17 ms under the import lock, which a process's first concurrent runs queued on)."""
        _ = self._client.chat.completions.with_streaming_response.create
        _ = self._client.completions.with_streaming_response.create

    # -- one call ---------------------------------------------------------------------------

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
        on_delta: Delta | None = None,
        cancel: threading.Event | None = None,
        redactor: Redactor | None = None,
        model: str | None = None,
        stop_at: StopAt | None = None,
        top_logprobs: int | None = None,
    ) -> Completion:
        """One answer to ``messages``; raises LLMError when there is none.

        ``model`` overrides ``settings.llm_model`` (or the Azure deployment) for this call:
        a skill whose template names a model, e.g. a fine-tuned one, runs on that model.

        With ``json_schema`` the answer must be JSON matching it: a wrong answer gets one
        repair request that quotes the problem (``on_delta`` then sees both attempts' text).
        A final assistant message is a prefill: the answer starts with it (a JSON answer
        leaves it out, e.g. a self-ask step on a prefilled draft). ``redactor``
        keeps placeholders the same across several calls of one run; without it each call
        redacts on its own when the settings ask for redaction. ``stop_at`` sees the text
        written so far after each piece; when it gives a position, the answer ends there
        (finish reason ``"stop_at"``) and the stream is closed, so the model stops writing
        (a summary that has said enough, ``skills.size``). A JSON answer is never cut.
        ``top_logprobs`` asks for the first answer token's likeliest alternatives
        (``Completion.alternatives``); a server that refuses the request, or answers without
        them, raises ``LLMError`` of kind ``unsupported`` (no retry), remembered per server
        and model (``Facts.logprobs``) so the next such call is not sent.
        """
        if not messages:
            raise LLMError("bad_request", "Nothing to send: the message list is empty.")
        validator = structured.validator_for(json_schema) if json_schema is not None else None
        if redactor is None and self._policy is not None:
            redactor = Redactor(self._policy)
        if redactor is not None:
            messages = [Message(m.role, redactor.redact(m.content)) for m in messages]
        sent, start = split(messages)  # JSON takes no prefill: the turn is left out
        base: dict[str, Any] = {"model": model or self.model}
        if max_tokens is not None:
            base["max_tokens"] = max_tokens
        if temperature is not None:
            base["temperature"] = temperature
        facts = self.facts(base["model"]) if top_logprobs is not None else None
        if facts is not None:
            if facts.logprobs is False:
                raise self.failures.no_logprobs()
            base.update(logprobs=True, top_logprobs=top_logprobs)
        if json_schema is not None and validator is not None:
            return self._json(sent, base, json_schema, validator, on_delta, cancel, redactor)
        request = replace(self._plain(sent, base, start), stop_at=stop_at,
                          logprobs=top_logprobs is not None)  # fmt: skip
        try:
            answer = self._call(request, on_delta, cancel)
        except _Unsupported:  # only a request for logprobs gets here
            answer = None
        if facts is not None:  # what the server does with logprobs, learnt once
            facts.logprobs = answer is not None and answer.alternatives is not None
        if answer is None or (facts is not None and not facts.logprobs):
            raise self.failures.no_logprobs()
        return self._completion(answer, answer.requests, request.messages, redactor)

    def _plain(self, sent: list[Message], base: dict[str, Any], start: str | None) -> Request:
        if start is None:
            return Request(self._chat(base, sent), sent)
        if self.prefill_mode == "chatml":
            payload = {**base, "prompt": chatml(sent, start), "stop": CHATML_STOP}
            turns = [*sent, Message("assistant", start)]  # what the raw prompt holds
            return Request(payload, turns, prefill=start, completions_api=True)
        if self.prefill_mode == "continue":
            turns = [*sent, Message("assistant", start)]
            return Request(self._chat(base, turns), turns, prefill=start)
        asked = instructed(sent, start)
        return Request(self._chat(base, asked), asked)

    def _json(
        self,
        sent: list[Message],
        base: dict[str, Any],
        schema: dict[str, Any],
        validator: Any,
        on_delta: Delta | None,
        cancel: threading.Event | None,
        redactor: Redactor | None,
    ) -> Completion:
        facts = self.facts(base["model"])
        requests = 0
        for mode in structured.modes_from(facts.json_mode):
            turns = structured.with_schema(sent, schema) if mode == "prompt" else sent
            fields = structured.request_fields(mode, schema)
            request = Request(self._chat({**base, **fields}, turns), turns,
                               constrained=mode != "prompt")  # fmt: skip
            try:
                answer = self._call(request, on_delta, cancel)
            except _Unsupported as refused:
                requests += refused.attempts
                continue
            facts.json_mode = mode
            break
        else:  # pragma: no cover - "prompt" is never refused as a mode
            raise LLMError("bad_request", f"{self.failures.where} refused every way of JSON.")
        requests += answer.requests
        usage = answer.usage
        data, problem = structured.parse_json(answer.text, validator)
        if problem is not None:
            turns = [*turns, Message("assistant", answer.text), structured.repair_message(problem)]
            request = Request(self._chat({**base, **fields}, turns), turns,
                               constrained=request.constrained)  # fmt: skip
            answer = self._call(request, on_delta, cancel)
            usage, requests = usage + answer.usage, requests + answer.requests
            data, problem = structured.parse_json(answer.text, validator)
            if problem is not None:
                raise LLMError(
                    "bad_response",
                    f"The model {self.model} at {self.server} twice answered with JSON "
                    f"that does not match the output schema ({problem}). Try a more "
                    "capable model, or simplify the skill's output schema.",
                    attempts=requests,
                )
        done = _Answer(answer.text, usage, answer.model, answer.finish_reason, requests,
                       answer.first_token_s)  # fmt: skip
        return self._completion(done, requests, turns, redactor, data=data, json_mode=mode)

    def _completion(
        self,
        answer: _Answer,
        requests: int,
        sent: list[Message],
        redactor: Redactor | None,
        *,
        data: Any = None,
        json_mode: str | None = None,
    ) -> Completion:
        return Completion(
            text=answer.text,
            usage=answer.usage,
            model=answer.model,
            finish_reason=answer.finish_reason,
            data=data,
            attempts=requests,
            sent=tuple(sent),
            redactions=redactor.report() if redactor is not None else {},
            first_token_s=answer.first_token_s,
            json_mode=json_mode,
            alternatives=answer.alternatives,
        )

    @staticmethod
    def _chat(base: dict[str, Any], messages: list[Message]) -> dict[str, Any]:
        return {**base, "messages": [{"role": m.role, "content": m.content} for m in messages]}

    # -- one request, with retries ----------------------------------------------------------

    def _call(
        self, request: Request, on_delta: Delta | None, cancel: threading.Event | None
    ) -> _Answer:
        prompt_tokens = tokens.count_messages(request.messages)
        answer_tokens = request.payload.get("max_tokens") or 0
        window = self._known_window()
        if window is not None and prompt_tokens + answer_tokens > window:
            # Refused here: llama.cpp's Python server answers such a streamed request with
            # an empty 200 and nothing to go on.
            raise self.failures.too_long(prompt_tokens, answer_tokens, window)
        first_s = retry.first_token_timeout(
            self.settings.llm_timeout_s, prompt_tokens, self._timeout_rate()
        )
        attempt = 0
        while True:
            attempt += 1
            self._check_cancel(cancel)
            try:
                create: Callable[..., Any] = (
                    self._client.completions.with_streaming_response.create
                    if request.completions_api
                    else self._client.chat.completions.with_streaming_response.create
                )
                got = read_answer(create, request, model=self.model, failures=self.failures,
                                  window=self.context_window, on_delta=on_delta, cancel=cancel,
                                  first_s=first_s, gap_s=self.settings.llm_timeout_s)  # fmt: skip
            except Failure as failure:
                failure.error.attempts = attempt
                if failure.window is not None:  # the server said its window: pack for it
                    self.facts(request.payload["model"]).window = failure.window
                if failure.unsupported:
                    raise _Unsupported(attempt) from None
                if not failure.retryable or attempt > self.settings.llm_max_retries:
                    if failure.retryable and self.settings.llm_max_retries:
                        failure.error.args = (f"{failure.error} Gave up after {attempt} tries.",)
                    raise failure.error from None
                wait = failure.retry_after
                if wait is not None and wait > retry.MAX_WAIT_S:
                    failure.error.args = (
                        f"{failure.error} The server asks to wait {wait:.0f} s; try again later.",
                    )
                    raise failure.error from None
                self._wait(retry.backoff(attempt) if wait is None else wait, cancel)
                continue
            used = usage_of(self.settings, request.payload["model"], request.messages, got.text,
                            got.model, got.usage)  # fmt: skip
            if got.first_token_s is not None:
                facts = self.facts(request.payload["model"])
                facts.record_rate(used.prompt_tokens, got.first_token_s)
            return _Answer(got.text, used, got.model, got.finish_reason, attempt, got.first_token_s,
                           got.alternatives)  # fmt: skip

    def _timeout_rate(self) -> float:
        """The prompt rate the first-token deadline assumes: the slower of the setting (or
        its default) and the slowest rate measured here."""
        default = retry.CPU_PROMPT_RATE if self.serial else retry.FAST_PROMPT_RATE
        configured = self._rate or default
        measured = self.facts().slowest_rate()
        return min(configured, measured) if measured is not None else configured

    # -- helpers ----------------------------------------------------------------------------

    def _key(self) -> str | None:
        secret = self.settings.llm_api_key
        return secret.get_secret_value() if secret is not None else None

    def _known_window(self) -> int | None:
        """The window when it is known, not assumed: the server's, or the one set."""
        if "llm_context_window" in self.settings.model_fields_set:
            return self.context_window()
        return self.facts().window

    def _wait(self, seconds: float, cancel: threading.Event | None) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif cancel is not None:
            cancel.wait(seconds)
        else:
            threading.Event().wait(seconds)
        self._check_cancel(cancel)

    def _check_cancel(self, cancel: threading.Event | None) -> None:
        if cancel is not None and cancel.is_set():
            raise self.failures.cancelled()


class _Unsupported(Exception):
    """The server refused the structured-output mode: try the next one."""

    def __init__(self, attempts: int) -> None:
        super().__init__("unsupported output mode")
        self.attempts = attempts
