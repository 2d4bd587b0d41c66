"""What one model call gives back: the answer and everything known about how it came."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from copilot.llm.types import Message
from copilot.llm.usage import Usage


@dataclass(frozen=True)
class Completion:
    """One answer, what it cost, and what was sent for it (after redaction)."""

    text: str
    usage: Usage  # summed over every attempt that produced an answer
    model: str
    finish_reason: str | None
    data: Any = None  # the parsed and validated JSON when a schema was given
    attempts: int = 1  # HTTP requests made, failed ones and the JSON repair included
    sent: tuple[Message, ...] = ()  # the exact messages of the last request (after redaction)
    redactions: Mapping[str, int] = field(default_factory=dict)  # kind -> distinct values
    first_token_s: float | None = None  # request to first chunk, of the last request
    json_mode: str | None = None  # how JSON was asked for (structured.JSON_MODES)
    # With ``top_logprobs``: the first answer token's likeliest alternatives as (token, log
    # probability); None when the server sent none.
    alternatives: tuple[tuple[str, float], ...] | None = None
