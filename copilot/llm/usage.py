"""What a call used and what it cost: the server's token counts (or ours), priced in USD.

Kept apart from the engine because the numbers are plain data that runs, the API and the
CLI all add up and show, with no need for an HTTP client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from copilot.config import Settings
from copilot.llm import tokens
from copilot.llm.types import Message


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    estimated: bool  # True when the server sent no usage and we counted with tiktoken

    def __add__(self, other: Usage) -> Usage:
        cost = None
        if self.cost_usd is not None and other.cost_usd is not None:
            cost = self.cost_usd + other.cost_usd
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            cost,
            self.estimated or other.estimated,
        )


def estimate_cost(
    settings: Settings, model: str, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """USD for a call, from ``settings.llm_prices`` (per 1k input/output tokens).

    Servers report dated names ("gpt-4o-mini-2024-07-18"): the exact name wins, else the
    longest price key the name starts with. None when the model has no known price.
    """
    prices = settings.llm_prices
    names = [model, model.rsplit("/", 1)[-1]]  # "openai/gpt-4o" from routers
    for name in names:
        price = prices.get(name)
        if price is None:
            keys = [k for k in prices if name.startswith(k)]
            price = prices[max(keys, key=len)] if keys else None
        if price is not None:
            return prompt_tokens / 1000 * price[0] + completion_tokens / 1000 * price[1]
    return None


def usage_of(
    settings: Settings,
    requested_model: str,
    messages: Sequence[Message],
    text: str,
    model: str,
    reported: Any,
) -> Usage:
    """The usage of one answer: the server's ``reported`` counts when it sent whole numbers,
    else counted here with tiktoken (marked ``estimated``). The cost is looked up under the
    model the server named, else under the one we asked for (a deployment alias, say)."""
    prompt = getattr(reported, "prompt_tokens", None)
    completion = getattr(reported, "completion_tokens", None)
    estimated = not isinstance(prompt, int) or not isinstance(completion, int)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        prompt, completion = tokens.count_messages(messages), tokens.count_tokens(text)
    cost = estimate_cost(settings, model, prompt, completion)
    if cost is None and model != requested_model:
        cost = estimate_cost(settings, requested_model, prompt, completion)
    return Usage(prompt, completion, cost, estimated)
