"""Shapes shared by everything that talks to a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message, exactly as it is (or would be) sent to the model."""

    role: Role
    content: str
