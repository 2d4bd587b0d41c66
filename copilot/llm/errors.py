"""The one error a model call raises, so callers handle failures without importing the SDK."""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal[
    "config", "auth", "rate_limit", "timeout", "server", "bad_request", "bad_response", "cancelled"
]


class LLMError(RuntimeError):
    """A model call that did not give a usable answer.

    ``kind`` says what went wrong in a way code can act on (``rate_limit`` and ``timeout`` are
    worth trying later, ``auth`` and ``config`` need the user); the message says it in plain
    words, names the server and model, and never contains the API key.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.status = status
        self.attempts = attempts

    def __repr__(self) -> str:
        return f"LLMError(kind={self.kind!r}, status={self.status!r}, message={str(self)!r})"
