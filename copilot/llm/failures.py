"""What went wrong with one model request, in words a person can act on, and whether
asking again can help.

Every failure names the server and model (never the API key) and the setting to change.
Kept apart from the engine so the retry loop reads as a loop: the engine asks
``Failures.classify`` and acts on ``Failure.retryable`` and ``Failure.unsupported``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import openai

from copilot.llm import retry, structured
from copilot.llm.errors import ErrorKind, LLMError
from copilot.llm.streaming import Deadline

MAX_DETAIL = 300  # characters of a server's error message quoted in ours


@dataclass
class Failure(Exception):
    """One failed request, before the engine decides whether to try again."""

    error: LLMError
    retryable: bool
    retry_after: float | None = None
    unsupported: bool = False  # the server refused the way output was constrained
    window: int | None = None  # the window a too-long-prompt error stated


@dataclass(frozen=True)
class Failures:
    """The errors of one engine: ``where`` is "the model M at URL"; ``serial`` a server
    that computes one request at a time; ``key`` the API key to keep out of messages."""

    where: str
    serial: bool
    key: str | None = None

    def scrub(self, text: str) -> str:
        if self.key and len(self.key) >= 4:
            text = text.replace(self.key, "***")
        return text[:MAX_DETAIL]

    def cancelled(self) -> LLMError:
        return LLMError("cancelled", f"The request to {self.where} was cancelled.")

    def timeout(self, late: Deadline | None) -> Failure:
        if late is not None and late.first:
            what = (
                f"No first token from {self.where} within {late.waited_s:.0f} s (the "
                "timeout plus the time to read the prompt at COPILOT_LLM_PROMPT_RATE)."
            )
        elif late is not None:
            what = f"The answer from {self.where} stalled for {late.waited_s:.0f} s."
        else:
            what = f"No answer from {self.where} in time."
        advice = " Raise COPILOT_LLM_TIMEOUT_S or check that the server is not overloaded."
        if self.serial:
            advice += (
                " The server computes one request at a time and is still working on this "
                "one, so it was not sent again."
            )
        return Failure(LLMError("timeout", what + advice), retryable=not self.serial)

    def connection(self, exc: BaseException) -> Failure:
        error = LLMError(
            "server",
            f"Could not reach {self.where} ({self.scrub(str(exc) or type(exc).__name__)}). "
            "Check that the server is running and COPILOT_LLM_BASE_URL is right.",
        )
        return Failure(error, retryable=True)

    def bad_response(self, exc: Exception) -> Failure:
        detail = self.scrub(f"{type(exc).__name__}: {exc}")
        error = LLMError(
            "bad_response",
            f"Unusable reply from {self.where}: not a valid chat completion ({detail}). "
            "Check that COPILOT_LLM_BASE_URL points at an OpenAI-compatible /v1 endpoint.",
        )
        return Failure(error, retryable=True)

    def empty(self, prompt_tokens: int) -> Failure:
        """A stream that ended before its first chunk: a server fault, or (llama.cpp's
        Python server) a prompt over the window, which asking again cannot fix."""
        failure = self.bad_response(ValueError("the stream ended before any answer"))
        failure.error.args = (
            f"{failure.error} A llama.cpp server does this when the prompt (about "
            f"{prompt_tokens} tokens) is longer than its window: check "
            "COPILOT_LLM_CONTEXT_WINDOW against the server's context size.",
        )
        failure.retryable = not self.serial
        return failure

    def no_logprobs(self) -> LLMError:
        """A server that refused to give token probabilities."""
        return LLMError(
            "unsupported",
            f"{self.where} does not give token probabilities (logprobs), which reading a "
            "label off the first answer token needs.",
        )

    def too_long(self, prompt_tokens: int, answer_tokens: int, window: int) -> LLMError:
        """A prompt that cannot fit, found before it was sent."""
        return LLMError(
            "context_overflow",
            f"The prompt is too long for {self.where}: about {prompt_tokens} tokens plus "
            f"{answer_tokens} for the answer, over its {window}-token window. Shorten the "
            "input, or set COPILOT_LLM_CONTEXT_WINDOW to the model's real window if it is "
            "larger.",
        )

    def classify(
        self,
        exc: openai.APIError,
        *,
        constrained: bool,
        window: Callable[[], int],
        logprobs: bool = False,
    ) -> Failure:
        """Sort an SDK error into our kinds. ``constrained``: the request carried a
        response_format or grammar (a refusal of it is ``unsupported``, not a fault);
        ``logprobs``: it asked for token probabilities (a refusal naming them is
        ``unsupported`` too); ``window``: the window the prompt was packed for, for a
        too-long error."""
        if isinstance(exc, openai.APITimeoutError):
            return self.timeout(None)
        if isinstance(exc, openai.APIConnectionError):
            return self.connection(exc.__cause__ or exc)
        if not isinstance(exc, openai.APIStatusError):  # an error event inside a stream
            detail = self.scrub(exc.message)
            if retry.is_context_overflow(detail):
                return self._overflow(400, detail, window)
            return Failure(LLMError("server", f"Error from {self.where}: {detail}"), True)
        status = exc.status_code
        detail = self.scrub(error_detail(exc))
        if status in (400, 413, 422, 500) and retry.is_context_overflow(detail):
            return self._overflow(status, detail, window)
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
            kind, f"HTTP {status} from {self.where}: {detail}. {advice}", upstream_status=status
        )
        unsupported = (constrained and structured.is_format_rejection(status, detail)) or (
            logprobs and status in (400, 422, 500, 501) and "logprob" in detail.lower()
        )
        retry_after = retry.retry_after_seconds(exc.response.headers)
        retryable = status in retry.RETRY_STATUSES and not unsupported
        return Failure(error, retryable, retry_after, unsupported=unsupported)

    def _overflow(self, status: int, detail: str, window: Callable[[], int]) -> Failure:
        told = retry.window_in(detail)
        error = LLMError(
            "context_overflow",
            f"The prompt is too long for {self.where} (HTTP {status}: {detail}). The "
            f"copilot packed for a {window()}-token window; set COPILOT_LLM_CONTEXT_WINDOW "
            f"to the model's real window{f' ({told})' if told else ''} and run again.",
            upstream_status=status,
        )
        return Failure(error, retryable=False, window=told)


def error_detail(exc: openai.APIStatusError) -> str:
    """The server's own error message, from an OpenAI-shaped body or the status line."""
    body = exc.body
    if isinstance(body, Mapping):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, Mapping) else error
        if message:
            return str(message)
    return exc.message or f"HTTP {exc.status_code}"
