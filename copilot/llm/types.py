"""Shapes shared by everything that talks to a model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message, exactly as it is (or would be) sent to the model."""

    role: Role
    content: str


# Where an answer should end, given the text written so far: a position in it, or None to
# go on (``OpenAIEngine.complete``'s ``stop_at``).
StopAt = Callable[[str], "int | None"]
