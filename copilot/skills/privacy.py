"""What leaves the machine in a run: messages redacted on the way out, the user's real
values put back into what they see."""

from __future__ import annotations

from collections.abc import Callable

from copilot.llm.redact import Redactor
from copilot.llm.types import Message


def redacted(message: Message, redactor: Redactor | None) -> Message:
    return Message(message.role, redactor.redact(message.content)) if redactor else message


def restore(text: str, redactor: Redactor | None) -> str:
    """Put the user's real values back into the answer they see: the placeholders were
    only for the trip to the model."""
    return redactor.restore(text) if redactor else text


def restoring_sink(emit: Callable[[str], None], redactor: Redactor | None) -> Callable[[str], None]:
    """A delta sink that restores placeholders, holding back a possibly split one."""
    if not redactor:
        return emit
    held = [""]

    def feed(delta: str) -> None:
        text = held[0] + delta
        cut = text.rfind("[")
        if cut != -1 and "]" not in text[cut:] and len(text) - cut < 24:
            held[0], text = text[cut:], text[:cut]
        else:
            held[0] = ""
        if text:
            emit(restore(text, redactor))

    return feed
