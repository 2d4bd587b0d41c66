"""One streamed request to the model, read to its end: the text, and what went wrong.

``OpenAIEngine`` decides whether to ask (the window), how often (its retry loop) and in
which JSON mode; this module sends one request and reads its stream: each chunk's text to
the caller as it comes (``on_delta``; a prefill first, so the caller sees the answer's
real start), the answer cut where the caller's ``stop_at`` says (leaving the loop hangs
up, so the model stops writing), and every way it can fail turned into a ``Failure``
that says whether another try may help. Once text has been shown, it never may: the
caller would see the answer twice.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai

from copilot.llm import sse, streaming, tokens
from copilot.llm.failures import Failure, Failures
from copilot.llm.types import Message, StopAt

try:  # the SDK's HTTP library: httpx2 in openai>=3, httpx before
    import httpx2 as _httpx
except ImportError:  # pragma: no cover
    import httpx as _httpx  # type: ignore[no-redef]  # the same API under its old name

Delta = Callable[[str], None]
MAX_ALTERNATIVES = 20  # OpenAI's most; a server sending more is read this far


@dataclass(frozen=True)
class Request:
    """One request as the retry loop repeats it."""

    payload: dict[str, Any]
    messages: list[Message]  # as sent (for usage estimates)
    prefill: str | None = None  # text the answer starts with, shown before the first token
    constrained: bool = False  # carries a response_format or grammar the server may refuse
    completions_api: bool = False  # /v1/completions with a raw prompt (ChatML prefill)
    stop_at: StopAt | None = None  # where the caller wants the answer to end (``complete``)
    logprobs: bool = False  # asks for the first answer token's alternatives (``top_logprobs``)


@dataclass(frozen=True)
class Streamed:
    text: str
    model: str
    finish_reason: str | None
    usage: Any  # the server's usage object, when it sent one
    first_token_s: float | None
    # The first answer token's likeliest alternatives (token, log probability), when the
    # request asked for them and the server sent them; None otherwise.
    alternatives: tuple[tuple[str, float], ...] | None = None


class _CallerError(Exception):
    """Wraps an exception raised by ``on_delta`` so it is not mistaken for a server fault."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def read_answer(
    create: Callable[..., Any],
    request: Request,
    *,
    model: str,
    failures: Failures,
    window: Callable[[], int],
    on_delta: Delta | None,
    cancel: threading.Event | None,
    first_s: float,
    gap_s: float,
) -> Streamed:
    """Send ``request`` with ``create`` (the SDK's streaming-response create) and read it
    within the deadlines: the first chunk within ``first_s``, then no gap over ``gap_s``.
    Raises ``Failure`` (``failures`` words it), or what ``on_delta`` raised."""
    options = {"stream": True, "stream_options": {"include_usage": True},
               "timeout": max(first_s, gap_s) + 5.0}  # fmt: skip
    reader = streaming.Reader(lambda: sse.ChunkStream(create(**request.payload, **options)))
    parts: list[str] = []
    shown = enough = False
    finish, usage = None, None
    alternatives: tuple[tuple[str, float], ...] | None = None
    failure: Failure
    try:
        for chunk in reader.chunks(first_s=first_s, gap_s=gap_s, cancel=cancel):
            model = chunk.get("model") or model
            if chunk.get("usage") is not None:
                usage = sse.usage_object(chunk["usage"])
            for choice in (chunk.get("choices") or [])[:1]:
                if request.logprobs and alternatives is None:
                    alternatives = _alternatives(choice)
                delta = _delta_text(choice, request.completions_api)
                if delta:
                    if request.prefill is not None and not parts:
                        parts.append(request.prefill)
                        _emit(on_delta, request.prefill)
                    if request.stop_at is not None:
                        parts, delta, enough = _until(parts, delta, request.stop_at)
                    if delta:
                        parts.append(delta)
                        shown = True
                        _emit(on_delta, delta)
                finish = "stop_at" if enough else choice.get("finish_reason") or finish
            if enough:
                break  # leaving the loop hangs up: the model stops writing
    except _CallerError as exc:
        raise exc.error from None
    except streaming.Stopped:
        raise Failure(failures.cancelled(), retryable=False) from None
    except streaming.Deadline as late:
        failure = failures.timeout(late)
    except openai.APIError as exc:
        failure = failures.classify(exc, constrained=request.constrained, window=window,
                                    logprobs=request.logprobs)  # fmt: skip
    except (_httpx.TimeoutException, TimeoutError):
        failure = failures.timeout(None)
    except _httpx.TransportError as exc:
        failure = failures.connection(exc)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        failure = failures.bad_response(exc)
    else:
        if reader.first_chunk_s is None:
            failure = failures.empty(tokens.count_messages(request.messages))
        else:
            if request.prefill is not None and not parts:
                parts.append(request.prefill)
                _emit(on_delta, request.prefill)
            return Streamed("".join(parts), model, finish, usage, reader.first_chunk_s,
                            alternatives)  # fmt: skip
    if shown:  # the caller has seen text: never retry behind its back
        failure.retryable = False
        failure.error.args = (
            f"{failure.error} The answer broke off after {len(''.join(parts))} "
            "characters had been shown, so it was not retried.",
        )
    raise failure


def _emit(on_delta: Delta | None, text: str) -> None:
    if on_delta is None:
        return
    try:
        on_delta(text)
    except BaseException as exc:  # the caller's own error, passed through
        raise _CallerError(exc) from exc


def _until(parts: list[str], delta: str, stop_at: StopAt) -> tuple[list[str], str, bool]:
    """The answer so far and the part of ``delta`` to add to it, cut where ``stop_at``
    says; and whether the answer ends there. (What was shown before the cut stays shown:
    at most the blank space before it.)"""
    written = "".join(parts)
    at = stop_at(written + delta)
    if at is None:
        return parts, delta, False
    return [written[:at]], (written + delta)[len(written) : at], True


def _delta_text(choice: dict[str, Any], completions_api: bool) -> str | None:
    if completions_api:
        text = choice.get("text")
    else:
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
    return text if isinstance(text, str) else None


def _alternatives(choice: dict[str, Any]) -> tuple[tuple[str, float], ...] | None:
    """The first token's ``top_logprobs`` in a chat chunk, as (token, log probability);
    None when this chunk carries no such list (a role-only chunk, or a server that
    ignores the request). Entries that are not a text and a finite number are skipped, a log
    probability above 0 is read as 0, and at most ``MAX_ALTERNATIVES`` are kept: a
    server's extra is not the answer, and must not break or flood the one reading it."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return None
    top = content[0].get("top_logprobs")
    if not isinstance(top, list):
        return None
    found = [
        (entry["token"], min(0.0, float(entry["logprob"])))
        for entry in top[:MAX_ALTERNATIVES]
        if isinstance(entry, dict)
        and isinstance(entry.get("token"), str)
        and isinstance(entry.get("logprob"), int | float)
        and math.isfinite(entry["logprob"])
    ]
    return tuple(found)  # empty: sent, none usable (the reader finds no label in them)
