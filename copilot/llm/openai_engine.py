"""The ``llm`` engine: one chat completion from OpenAI, Azure OpenAI or any compatible server.

Retries are ours, not the SDK's (``max_retries=0``), so one loop decides everything: which
failures are worth another try (429, 5xx, connection errors, timeouts, unreadable bodies),
how long to wait (``Retry-After`` / ``retry-after-ms`` when the server says, else exponential
backoff with jitter, never longer than ``retry.MAX_WAIT_S``), and when to stop. 400/401/403/404 are
never retried: asking again cannot fix a bad request, a wrong key or a missing model.

Streaming: once a delta has reached ``on_delta`` the caller may have shown it, so a failure
after that point is raised, never retried silently (a retry would show the text twice).

Timeouts: ``llm_timeout_s`` is the SDK's timeout, which for a stream is the longest gap
between two chunks; a server that stops sending ends in ``LLMError(kind="timeout")``.

Cancel: the event is checked before each request, between stream chunks and during backoff
waits; on cancel the stream is closed (which aborts the HTTP request). A server that sends
nothing at all is noticed by the timeout, not by the cancel check.

Privacy: when ``settings.redact`` is on (or names are listed), every message is redacted
before it leaves; ``Completion.sent`` holds the exact messages sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from copilot.config import Settings
from copilot.llm import retry
from copilot.llm.errors import ErrorKind, LLMError
from copilot.llm.redact import RedactionPolicy, Redactor
from copilot.llm.structured import parse_json, repair_message, validator_for
from copilot.llm.types import Message
from copilot.llm.usage import Usage, usage_of
from copilot.llm.usage import estimate_cost as estimate_cost  # re-exported

try:  # the SDK's HTTP library: httpx2 in openai>=3, httpx before
    import httpx2 as _httpx
except ImportError:  # pragma: no cover
    import httpx as _httpx  # type: ignore[no-redef]

_MAX_DETAIL = 300  # characters of a server's error message quoted in ours

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage  # summed over every attempt that produced an answer
    model: str
    finish_reason: str | None
    data: Any = None  # the parsed and validated JSON when a schema was given
    attempts: int = 1  # HTTP requests made, failed ones and the JSON repair included
    sent: tuple[Message, ...] = ()  # the exact messages of the last request (after redaction)
    redactions: Mapping[str, int] = field(default_factory=dict)  # kind -> distinct values


@dataclass
class _Failure(Exception):
    """One failed request, before we decide whether to try again."""

    error: LLMError
    retryable: bool
    retry_after: float | None = None


class _CallerError(Exception):
    """Wraps an exception raised by ``on_delta`` so it is not mistaken for a server fault."""


@dataclass(frozen=True)
class _Answer:
    text: str
    usage: Usage
    model: str
    finish_reason: str | None
    requests: int


class OpenAIEngine:
    """Chat completions with our retries, timeouts, streaming, cancel and JSON output."""

    name = "llm"

    def __init__(self, settings: Settings, *, sleep: Sleep | None = None) -> None:
        self.settings = settings
        self._sleep = sleep
        timeout = settings.llm_timeout_s
        key = settings.llm_api_key
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
                timeout=timeout,
                max_retries=0,
            )
        elif settings.llm_base_url or key:
            self.model = settings.llm_model
            self.server = settings.llm_base_url or "https://api.openai.com/v1"
            self._client = openai.OpenAI(
                base_url=settings.llm_base_url,
                api_key=key or "not-needed",
                timeout=timeout,
                max_retries=0,
            )
        else:
            raise LLMError(
                "config",
                "No LLM is configured: set COPILOT_LLM_BASE_URL (any OpenAI-compatible "
                "server), COPILOT_LLM_API_KEY (OpenAI) or COPILOT_LLM_AZURE_ENDPOINT.",
            )
        self._policy = RedactionPolicy.from_settings(settings)

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict | None = None,
        on_delta: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        redactor: Redactor | None = None,
        model: str | None = None,
    ) -> Completion:
        """One answer to ``messages``; raises LLMError when there is none.

        ``model`` overrides ``settings.llm_model`` (or the Azure deployment) for this call:
        a skill whose template names a model, e.g. a fine-tuned one, runs on that model.

        With ``json_schema`` the answer must be JSON matching it: a wrong answer gets one
        repair request that quotes the problem (``on_delta`` then sees both attempts' text).
        ``redactor`` keeps placeholders the same across several calls of one run; without it
        each call redacts on its own when the settings ask for redaction.
        """
        if not messages:
            raise LLMError("bad_request", "Nothing to send: the message list is empty.")
        validator = validator_for(json_schema) if json_schema is not None else None
        if redactor is None and self._policy is not None:
            redactor = Redactor(self._policy)
        if redactor is not None:
            messages = [Message(m.role, redactor.redact(m.content)) for m in messages]
        sent = list(messages)
        request: dict[str, Any] = {"model": model or self.model}
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        if temperature is not None:
            request["temperature"] = temperature
        if json_schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": json_schema, "strict": False},
            }

        answer = self._call(sent, request, on_delta, cancel)
        usage, requests, data = answer.usage, answer.requests, None
        if validator is not None:
            data, problem = parse_json(answer.text, validator)
            if problem is not None:
                sent = [
                    *sent,
                    Message("assistant", answer.text),
                    repair_message(problem),
                ]
                answer = self._call(sent, request, on_delta, cancel)
                usage, requests = usage + answer.usage, requests + answer.requests
                data, problem = parse_json(answer.text, validator)
                if problem is not None:
                    raise LLMError(
                        "bad_response",
                        f"The model {self.model} at {self.server} twice answered with JSON "
                        f"that does not match the output schema ({problem}). Try a more "
                        "capable model, or simplify the skill's output schema.",
                        attempts=requests,
                    )
        return Completion(
            text=answer.text,
            usage=usage,
            model=answer.model,
            finish_reason=answer.finish_reason,
            data=data,
            attempts=requests,
            sent=tuple(sent),
            redactions=redactor.report() if redactor is not None else {},
        )

    # -- one request, with retries ----------------------------------------------------------

    def _call(
        self,
        messages: list[Message],
        request: dict[str, Any],
        on_delta: Callable[[str], None] | None,
        cancel: threading.Event | None,
    ) -> _Answer:
        payload = {
            **request,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        attempt = 0
        while True:
            attempt += 1
            self._check_cancel(cancel)
            try:
                if on_delta is not None:
                    text, model, finish, usage = self._stream(payload, on_delta, cancel)
                else:
                    text, model, finish, usage = self._once(payload)
            except _Failure as failure:
                failure.error.attempts = attempt
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
                if wait is None:
                    wait = retry.backoff(attempt)
                self._wait(wait, cancel)
                continue
            used = usage_of(self.settings, payload["model"], messages, text, model, usage)
            return _Answer(text, used, model, finish, attempt)

    def _once(self, payload: dict[str, Any]) -> tuple[str, str, str | None, Any]:
        try:
            response = self._client.chat.completions.create(**payload)
            choice = response.choices[0]
            text = choice.message.content or ""
            return text, response.model or self.model, choice.finish_reason, response.usage
        except openai.APIError as exc:
            raise self._failure(exc) from None
        except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
            raise self._bad_response(exc) from None

    def _stream(
        self,
        payload: dict[str, Any],
        on_delta: Callable[[str], None],
        cancel: threading.Event | None,
    ) -> tuple[str, str, str | None, Any]:
        parts: list[str] = []
        model, finish, usage, chunks = self.model, None, None, 0
        try:
            stream = self._client.chat.completions.create(
                **payload, stream=True, stream_options={"include_usage": True}
            )
        except openai.APIError as exc:
            raise self._failure(exc) from None
        try:
            for chunk in stream:
                if cancel is not None and cancel.is_set():
                    raise _Failure(self._cancelled(), retryable=False)
                chunks += 1
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices[:1]:
                    delta = choice.delta.content if choice.delta is not None else None
                    if delta:
                        parts.append(delta)
                        try:
                            on_delta(delta)
                        except BaseException as exc:  # the caller's own error, passed through
                            raise _CallerError(exc) from exc
                    finish = choice.finish_reason or finish
        except _Failure:
            raise
        except _CallerError as exc:
            raise exc.__cause__ from None  # type: ignore[misc]
        except openai.APIError as exc:
            failure = self._failure(exc)
        except (_httpx.TimeoutException, TimeoutError):
            failure = _Failure(self._timeout(), retryable=True)
        except _httpx.TransportError as exc:
            failure = _Failure(self._connection(exc), retryable=True)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            failure = self._bad_response(exc)
        else:
            if chunks == 0:
                failure = self._bad_response(ValueError("the stream had no chunks"))
            else:
                return "".join(parts), model, finish, usage
        finally:
            stream.close()
        if parts:  # the caller has seen text: never retry behind its back
            failure.retryable = False
            failure.error.args = (
                f"{failure.error} The answer broke off after {len(''.join(parts))} "
                "characters had been shown, so it was not retried.",
            )
        raise failure

    # -- helpers ----------------------------------------------------------------------------

    def _wait(self, seconds: float, cancel: threading.Event | None) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif cancel is not None:
            cancel.wait(seconds)
        else:
            time.sleep(seconds)
        self._check_cancel(cancel)

    def _check_cancel(self, cancel: threading.Event | None) -> None:
        if cancel is not None and cancel.is_set():
            raise self._cancelled()

    def _where(self) -> str:
        return f"the model {self.model} at {self.server}"

    def _scrub(self, text: str) -> str:
        key = self.settings.llm_api_key
        if key and len(key) >= 4:
            text = text.replace(key, "***")
        return text[:_MAX_DETAIL]

    def _cancelled(self) -> LLMError:
        return LLMError("cancelled", f"The request to {self._where()} was cancelled.")

    def _timeout(self) -> LLMError:
        return LLMError(
            "timeout",
            f"No answer from {self._where()} within {self.settings.llm_timeout_s:g} s. "
            "Raise COPILOT_LLM_TIMEOUT_S or check that the server is not overloaded.",
        )

    def _connection(self, exc: Exception) -> LLMError:
        return LLMError(
            "server",
            f"Could not reach {self._where()} ({self._scrub(str(exc) or type(exc).__name__)}). "
            "Check that the server is running and COPILOT_LLM_BASE_URL is right.",
        )

    def _bad_response(self, exc: Exception) -> _Failure:
        detail = self._scrub(f"{type(exc).__name__}: {exc}")
        error = LLMError(
            "bad_response",
            f"Unusable reply from {self._where()}: not a valid chat completion ({detail}). "
            "Check that COPILOT_LLM_BASE_URL points at an OpenAI-compatible /v1 endpoint.",
        )
        return _Failure(error, retryable=True)

    def _failure(self, exc: openai.APIError) -> _Failure:
        """Sort an SDK error into our kinds, and say whether trying again can help."""
        if isinstance(exc, openai.APITimeoutError):
            return _Failure(self._timeout(), retryable=True)
        if isinstance(exc, openai.APIConnectionError):
            return _Failure(self._connection(exc.__cause__ or exc), retryable=True)
        if not isinstance(exc, openai.APIStatusError):  # an error event inside a stream
            detail = self._scrub(exc.message)
            return _Failure(LLMError("server", f"Error from {self._where()}: {detail}"), True)
        status = exc.status_code
        detail = self._scrub(_error_detail(exc))
        kind: ErrorKind
        if status in (401, 403):
            kind, advice = "auth", "Check COPILOT_LLM_API_KEY (and its access to this model)."
        elif status == 404:
            kind, advice = "config", "Check the model or deployment name and the server URL."
        elif status == 429:
            kind, advice = "rate_limit", "The server is rate limiting; try again later."
        elif status >= 500:
            kind, advice = "server", "The server failed; try again later."
        else:
            kind, advice = "bad_request", "The server refused the request as sent."
        error = LLMError(
            kind, f"HTTP {status} from {self._where()}: {detail}. {advice}", status=status
        )
        retry_after = retry.retry_after_seconds(exc.response.headers)
        return _Failure(error, status in retry.RETRY_STATUSES, retry_after)


def _error_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, Mapping) else error
        if message:
            return str(message)
    return exc.message or f"HTTP {exc.status_code}"
