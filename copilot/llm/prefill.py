"""Prefill: the answer's first words written for the model, which continues from them.

A small model asked for a reply to a mail often writes the mail again; one that has
already "said" ``Hi Maria,`` writes the reply (measured on Qwen2.5-1.5B: 2 of 3 replies
copied the mail without it). A template asks for a prefill by ending with an
``assistant:`` turn. Servers differ in whether they can continue a turn, so the engine
sends a prefill in one of three ways (``COPILOT_LLM_PREFILL``):

- ``chatml``: the chat is written out in ChatML (``<|im_start|>role ... <|im_end|>``, the
  format of Qwen2.5 and SmolLM2) with the assistant turn left open, and sent to
  ``/v1/completions``. For llama.cpp serving a ChatML model: the embedded engine.
- ``continue``: the assistant turn is sent as the last message; servers that continue a
  final assistant message (llama.cpp's ``llama-server``, Ollama) carry on from it.
- ``instruct``: for servers that would answer after it instead (OpenAI, Azure): the
  prefill becomes an instruction to begin with those words.

In the first two the answer's text starts with the prefill, as if the model had written it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from copilot.llm.types import Message

PrefillMode = Literal["chatml", "continue", "instruct"]
PREFILL_MODES: tuple[PrefillMode, ...] = ("chatml", "continue", "instruct")
CHATML_STOP = ["<|im_end|>", "<|im_start|>", "<|endoftext|>"]


def split(messages: Sequence[Message]) -> tuple[list[Message], str | None]:
    """The messages without a final assistant turn, and that turn's text (the prefill)."""
    if len(messages) > 1 and messages[-1].role == "assistant" and messages[-1].content.strip():
        return list(messages[:-1]), messages[-1].content
    return list(messages), None


def chatml(messages: Sequence[Message], prefill: str) -> str:
    """The chat as one ChatML prompt, with the assistant turn open after ``prefill``.

    Special-token lookalikes inside a message are broken up, so text from a mail cannot
    close its turn and open one of its own.
    """
    return chatml_turns(messages) + chatml_open("assistant", prefill)


def chatml_turns(messages: Sequence[Message]) -> str:
    """Closed ChatML turns, special-token lookalikes in the text broken up."""
    return "".join(f"<|im_start|>{m.role}\n{_defuse(m.content)}<|im_end|>\n" for m in messages)


def chatml_open(role: str, start: str = "") -> str:
    """A ChatML turn of ``role`` left open after ``start`` (defused like a message)."""
    return f"<|im_start|>{role}\n{_defuse(start)}"


def instructed(messages: Sequence[Message], prefill: str) -> list[Message]:
    """The messages with the last user turn asking the answer to begin with ``prefill``."""
    out = list(messages)
    rule = f"Begin your answer with exactly these words: {prefill.strip()}"
    for i in range(len(out) - 1, -1, -1):
        if out[i].role == "user":
            out[i] = replace(out[i], content=f"{out[i].content}\n\n{rule}")
            return out
    return [*out, Message("user", rule)]


def _defuse(text: str) -> str:
    return text.replace("<|im_", "<\u200b|im_").replace("<|endoftext|>", "<\u200b|endoftext|>")
