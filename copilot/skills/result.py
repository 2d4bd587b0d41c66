"""What a skill run returns, and the token and cost tally of its model calls."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from copilot.llm.openai_engine import Completion
from copilot.llm.types import Message
from copilot.skills.types import Citation, Source


@dataclass
class RunResult:
    skill_id: str
    skill_version: str
    engine: str
    model: str | None
    text: str  # what the user sees (the final answer only)
    data: Any  # structured output (JSON skills)
    citations: list[Citation]
    invalid_citations: list[int]  # numbers the model cited that it was never given
    sources: list[Source]
    messages: list[Message]  # exactly what was (or, in a dry run, would be) sent
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: float = 0.0
    prep_ms: float = 0.0
    redactions: dict[str, int] = field(default_factory=dict)
    note: str = ""
    dropped: list[tuple[str, str]] = field(default_factory=list)
    run_id: str | None = None
    dry_run: bool = False
    budget_tokens: int = 0  # tokens the sources could fill in this model's window

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Tally:
    """Calls, tokens and cost summed over every model call of one run."""

    calls: int = 0
    prompt: int = 0
    completion: int = 0
    cost: float | None = None
    model: str | None = None

    def add(self, c: Completion) -> None:
        self.calls += 1
        self.prompt += c.usage.prompt_tokens
        self.completion += c.usage.completion_tokens
        if c.usage.cost_usd is not None:
            self.cost = (self.cost or 0.0) + c.usage.cost_usd
        self.model = c.model or self.model
