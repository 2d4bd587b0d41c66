"""Structured output: how JSON is asked for, and the answer parsed and checked against a schema.

Servers differ in how they constrain output, so a JSON call tries, in order, the modes in
``JSON_MODES`` and keeps the first one the server accepts (``capabilities`` remembers it):

1. ``json_schema``: OpenAI's structured outputs (OpenAI, Azure, vLLM, Ollama, llama-server);
2. ``json_object``: ``{"type": "json_object", "schema": ...}``, which llama.cpp's Python
   server turns into a grammar (it answers HTTP 500 to ``json_schema``);
3. ``grammar``: a GBNF grammar built from the schema, sent as ``extra_body``;
4. ``prompt``: no constraint at all, the schema written into the system message.

Whatever the mode, the answer is parsed and validated here: models wrap JSON in Markdown
fences or add a sentence around it, both tolerated. What does not parse or validate is
described in plain words, because that description goes back to the model in the one
repair request the engine makes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import jsonschema

from copilot.llm.errors import LLMError
from copilot.llm.grammar import gbnf_for
from copilot.llm.types import Message

JsonMode = Literal["json_schema", "json_object", "grammar", "prompt"]
JSON_MODES: tuple[JsonMode, ...] = ("json_schema", "json_object", "grammar", "prompt")

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
# Words in a server's error that show it refused the way output was constrained, not the
# request as such: "response_format", "json_schema", "grammar", "structured output" ...
_FORMAT_WORDS = re.compile(
    r"response_format|json_schema|json_object|json schema|grammar|structured output|"
    r"guided_|\bschema\b",
    re.IGNORECASE,
)


def validator_for(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise LLMError(
            "config", f"The output schema is not valid JSON Schema: {exc.message}"
        ) from None
    return jsonschema.Draft202012Validator(schema)


def modes_from(accepted: str | None) -> tuple[JsonMode, ...]:
    """The modes to try: from the one the server accepted before (if any) downwards."""
    if accepted in JSON_MODES:
        return JSON_MODES[JSON_MODES.index(accepted) :]
    return JSON_MODES


def request_fields(mode: JsonMode, schema: dict[str, Any]) -> dict[str, Any]:
    """The request fields that ask for ``schema`` in ``mode`` (none for ``prompt``)."""
    if mode == "json_schema":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema, "strict": False},
            }
        }
    if mode == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if mode == "grammar":
        return {"extra_body": {"grammar": gbnf_for(schema)}}
    return {}


def with_schema(messages: Sequence[Message], schema: dict[str, Any]) -> list[Message]:
    """The messages with the schema written into the system message, for ``prompt`` mode.

    The system message, not the last turn: it is the same for every call of a skill, so a
    server's prompt cache keeps reusing it.
    """
    rule = (
        "Reply with one JSON value and nothing else (no Markdown fences, no words before or "
        "after it). It must match this JSON Schema: "
        + json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
    )
    out = list(messages)
    if out and out[0].role == "system":
        out[0] = replace(out[0], content=f"{out[0].content}\n\n{rule}")
    else:
        out.insert(0, Message("system", rule))
    return out


def is_format_rejection(status: int, message: str) -> bool:
    """Whether an error answer to a constrained request refuses the constraint itself.

    A 400 or 422 to a request that differs from a plain one only in how output is
    constrained is a refusal of that constraint; a 500 or 501 is one only when it says so
    (llama.cpp's "Input should be 'text' or 'json_object'" names ``response_format``):
    otherwise it is a server fault like any other.
    """
    if status in (400, 422):
        return True
    return status in (500, 501) and bool(_FORMAT_WORDS.search(message))


def parse_json(text: str, validator: jsonschema.Draft202012Validator) -> tuple[Any, str | None]:
    """(data, None) for a valid answer, else (None, what was wrong in plain words)."""
    candidate = text.strip()
    fenced = _FENCE.search(candidate)
    if fenced:
        candidate = fenced.group(1).strip()
    try:
        data = json.loads(candidate)
    except ValueError as exc:
        start, end = candidate.find("{"), candidate.rfind("}")
        try:
            data = json.loads(candidate[start : end + 1]) if 0 <= start < end else None
        except ValueError:
            data = None
        if data is None:
            return None, f"it is not valid JSON ({exc})"
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return data, None
    problems = []
    for error in errors[:3]:
        where = "".join(f"[{p!r}]" for p in error.absolute_path) or "the top level"
        problems.append(f"at {where}: {error.message[:200]}")
    return None, "it does not match the schema: " + "; ".join(problems)


def repair_message(problem: str) -> Message:
    """The user turn of the one repair attempt: what was wrong, and what to send instead."""
    return Message(
        "user",
        f"Your previous reply cannot be used because {problem}. "
        "Reply again with only the corrected JSON value that matches the requested schema: "
        "no explanation, no Markdown fences.",
    )
