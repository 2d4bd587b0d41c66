"""The one error a model call raises, so callers handle failures without importing the SDK."""

from __future__ import annotations

from typing import Literal

from copilot.errors import CopilotError, Described

ErrorKind = Literal[
    "config",
    "auth",
    "rate_limit",
    "timeout",
    "server",
    "bad_request",
    "bad_response",
    "cancelled",
    "context_overflow",
    "unsupported",
]

# What the person who asked can do about a failed model call: the HTTP status the copilot
# answers with and the words it shows. The message itself (server, model, the setting to
# change) is for whoever runs the copilot: the CLI shows it, the API and the bot do not.
ANSWERS: dict[str, tuple[int, str]] = {
    "auth": (502, "The language model server refused the copilot's credentials: tell your admin."),
    "config": (500, "The language model is not configured correctly: tell your admin."),
    "rate_limit": (503, "The language model is busy: try again in a minute."),
    "timeout": (504, "The language model took too long to answer: try again."),
    "server": (502, "The language model server failed: try again later."),
    "bad_request": (502, "The language model server refused the request."),
    "bad_response": (502, "The language model's answer was not usable: try again."),
    "cancelled": (499, "The run was cancelled."),
    "context_overflow": (
        502,
        "The prompt was longer than the language model can read: tell your admin.",
    ),
    "unsupported": (502, "The language model server cannot do what was asked of it."),
}


class LLMError(CopilotError, RuntimeError):
    """A model call that did not give a usable answer.

    ``kind`` says what went wrong in a way code can act on (``rate_limit`` and ``timeout`` are
    worth trying later, ``auth`` and ``config`` need the user); the message says it in plain
    words, names the server and model, and never contains the API key. ``status`` is the
    copilot's answer (see ``ANSWERS``); ``upstream_status`` is the model server's own, if any.
    """

    kind: ErrorKind = "server"  # every instance says its own
    status = 502
    title = "The language model didn't answer"

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        upstream_status: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, kind=kind, status=ANSWERS.get(kind, (502, ""))[0])
        self.upstream_status = upstream_status
        self.attempts = attempts

    def describe(self) -> Described:
        """Advice by kind rather than the message, which names the server and the model."""
        status, advice = ANSWERS.get(self.kind, (502, "The language model failed."))
        return Described(status=status, kind=f"llm_{self.kind}", title=self.title, detail=advice)

    def __repr__(self) -> str:
        return (
            f"LLMError(kind={self.kind!r}, upstream_status={self.upstream_status!r}, "
            f"message={str(self)!r})"
        )
