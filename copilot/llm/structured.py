"""Structured output: the model's answer parsed as JSON and checked against a JSON Schema.

Models wrap JSON in Markdown fences or add a sentence around it; both are tolerated. What
does not parse or validate is described in plain words, because that description goes back
to the model in the one repair request the engine makes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from copilot.llm.errors import LLMError
from copilot.llm.types import Message

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)


def validator_for(schema: dict) -> jsonschema.Draft202012Validator:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise LLMError(
            "config", f"The output schema is not valid JSON Schema: {exc.message}"
        ) from None
    return jsonschema.Draft202012Validator(schema)


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
