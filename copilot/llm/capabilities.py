"""What one server and model accept and how fast it reads: learned once, shared by every call.

Servers that speak the OpenAI protocol differ in what they accept and say little about
themselves. llama.cpp's Python server answers HTTP 500 to ``response_format: json_schema``
but constrains ``json_object`` with a schema; OpenAI has ``json_schema``; a CPU model reads
50 prompt tokens a second where a cloud model reads thousands. Asking again on every call
would repeat a rejected request (and on a server that computes one request at a time, make
the user wait for it) every time, so what a call learns is kept here, per server and model,
for the life of the process:

- the structured-output mode the server accepted (``json_mode``), so the next JSON call
  goes straight to it;
- the model's context window, when the server says it (``/v1/models`` of vLLM, LM Studio
  or OpenRouter, llama.cpp's ``/props``) or when a too-long prompt's error names it;
- whether it gives token probabilities (``logprobs``), so a refusal is not asked again;
- the prompt-processing rate measured on real calls (prompt tokens over the time to the
  first token), which sizes the first-token timeout and the packing budget.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

try:  # the SDK's HTTP library: httpx2 in openai>=3, httpx before
    import httpx2 as _httpx
except ImportError:  # pragma: no cover
    import httpx as _httpx  # type: ignore[no-redef]  # the same API under its old name

# A measurement counts only when the server took at least this long and read this much:
# below, network latency and queueing dominate and the "rate" says nothing about reading.
MIN_RATE_SECONDS = 1.0
MIN_RATE_TOKENS = 256
RATE_SAMPLES = 8
ASK_TIMEOUT_S = 3.0  # asking a server for its window must not hold up a run
# Keys under which servers list a model's window in ``GET /v1/models``.
WINDOW_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length")


@dataclass
class Facts:
    """What is known about one (server, model); every field starts unknown."""

    json_mode: str | None = None
    window: int | None = None  # tokens, prompt plus answer
    window_checked: bool = False  # the server was asked (whether or not it said)
    logprobs: bool | None = None  # gives token probabilities (``top_logprobs``)
    rates: deque[float] = field(default_factory=lambda: deque(maxlen=RATE_SAMPLES))

    def record_rate(self, prompt_tokens: int, first_token_s: float) -> None:
        if first_token_s >= MIN_RATE_SECONDS and prompt_tokens >= MIN_RATE_TOKENS:
            self.rates.append(prompt_tokens / first_token_s)

    def typical_rate(self) -> float | None:
        """The median measured rate (tokens/s): what a prompt of this skill will see."""
        return statistics.median(self.rates) if self.rates else None

    def slowest_rate(self) -> float | None:
        """The lowest measured rate: timeouts are sized for the worst recent case."""
        return min(self.rates) if self.rates else None


_facts: dict[tuple[str, str], Facts] = {}
_lock = threading.Lock()


def facts_for(server: str, model: str) -> Facts:
    """The shared record of ``model`` at ``server`` (created empty on first use)."""
    key = (server.rstrip("/"), model)
    with _lock:
        found = _facts.get(key)
        if found is None:
            found = _facts[key] = Facts()
        return found


def ask_window(base_url: str, model: str, key: str | None) -> int | None:
    """The window the server at ``base_url`` (".../v1") states for ``model``:
    ``GET /v1/models``, then llama.cpp's ``GET /props``; None when neither says."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    base = base_url.rstrip("/")
    root = base.removesuffix("/v1")
    readers: list[tuple[str, Callable[[Any], int | None]]] = [
        (f"{base}/models", lambda body: window_from_models(body, model)),
        (f"{root}/props", window_from_props),
    ]
    for url, read in readers:
        try:
            response = _httpx.get(url, headers=headers, timeout=ASK_TIMEOUT_S)
            found = read(response.json()) if response.status_code == 200 else None
        except (_httpx.HTTPError, ValueError):
            continue
        if found is not None:
            return found
    return None


def window_from_models(listing: Any, model: str) -> int | None:
    """The window a ``GET /v1/models`` body states for ``model`` (or its only model)."""
    entries = listing.get("data") if isinstance(listing, Mapping) else None
    if not isinstance(entries, list):
        return None
    entries = [e for e in entries if isinstance(e, Mapping)]
    mine = [e for e in entries if e.get("id") == model] or (entries if len(entries) == 1 else [])
    for entry in mine:
        for key in WINDOW_KEYS:
            value = _positive_int(entry.get(key))
            if value is not None:
                return value
        meta = entry.get("meta")
        if isinstance(meta, Mapping):  # llama.cpp's server: the runtime n_ctx when it says
            value = _positive_int(meta.get("n_ctx"))
            if value is not None:
                return value
    return None


def window_from_props(props: Any) -> int | None:
    """The runtime window in llama.cpp's ``GET /props`` (``default_generation_settings``)."""
    if not isinstance(props, Mapping):
        return None
    settings = props.get("default_generation_settings")
    for where in (settings, props):
        if isinstance(where, Mapping):
            value = _positive_int(where.get("n_ctx"))
            if value is not None:
                return value
    return None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100_000_000:
        return value
    return None
