"""When to try a model call again, how long to wait first, and how long to wait at all."""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Mapping

MAX_WAIT_S = 30.0  # the longest wait before a retry; a server asking for more is not retried
BACKOFF_BASE_S = 0.5  # the first backoff; doubles with each attempt
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # never 400/401/403/404: same answer again
# Prompt tokens a second when nothing better is known: a GPU or cloud server, and a CPU
# server that computes one request at a time (llama.cpp on a laptop reads 40-80).
FAST_PROMPT_RATE = 1000.0
CPU_PROMPT_RATE = 25.0

# What servers say when the prompt does not fit: OpenAI and vLLM ("maximum context length
# is 8192 tokens"), llama.cpp ("exceed context window of 2048", "exceeds the available
# context size"), Azure's code context_length_exceeded, Ollama and others.
_OVERFLOW = re.compile(
    r"context[ _](?:length|window|size)|maximum context|too many tokens|prompt is too long|"
    r"exceeds? the (?:available )?context",
    re.IGNORECASE,
)
_WINDOW_NUMBER = re.compile(
    r"(?:maximum context length is|context (?:window|size|length) of|n_ctx[ =:]*)\s*(\d{3,9})",
    re.IGNORECASE,
)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a server asks for: ``retry-after-ms``, or ``Retry-After`` (seconds or date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.5, 1, 2, 4 ... s, never over MAX_WAIT_S."""
    base = min(MAX_WAIT_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
    return float(min(MAX_WAIT_S, base * random.uniform(0.75, 1.25)))


def first_token_timeout(base_s: float, prompt_tokens: int, rate: float) -> float:
    """How long to wait for the first token: the plain timeout plus the time the server
    needs to read the prompt. A CPU model reads 8,000 tokens in minutes; a fixed timeout
    either gives up on every long prompt or waits minutes for a dead cloud server."""
    return base_s + max(0, prompt_tokens) / max(rate, 1e-3)


def is_context_overflow(message: str) -> bool:
    """Whether a server's error says the prompt (plus answer) is over the model's window."""
    return bool(_OVERFLOW.search(message))


def window_in(message: str) -> int | None:
    """The window a too-long-prompt error states, e.g. 8192 in "maximum context length is
    8192 tokens"; None when it names none."""
    found = _WINDOW_NUMBER.search(message)
    return int(found.group(1)) if found else None
