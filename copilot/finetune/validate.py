"""The OpenAI chat fine-tuning format, checked line by line, with tokens and a cost estimate.

Why check here when the service checks too: an upload that fails validation after an hour
in the queue costs a day; a local check names the line in a second. The rules are the
service's documented ones for chat examples: ``{"messages": [...]}`` per line, roles
system/user/assistant, an optional system message first, then user and assistant turns
alternating and ending with the assistant, non-empty text contents, and each example under
the base model's training context (``finetune_max_tokens``).

Tokens are counted with cl100k (``copilot.llm.tokens``); newer models use o200k, which
differs by a few percent on English text: the estimate is for budgeting, not billing.
Cost = training tokens x epochs x the price per 1,000 tokens, in Decimal so that the
figure shown is the figure computed (100,000 tokens x $0.008 x 3 epochs is $2.40, not
$2.4000000000000004).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from copilot.llm.types import Message

# USD per 1,000 training tokens (OpenAI's published prices; the Settings field
# `finetune_prices` overrides the whole table).
DEFAULT_MAX_TOKENS = 65_536  # per example: gpt-4o-mini's training context
MAX_TOTAL_TOKENS = 100_000_000  # per file: far past any sensible skill dataset
MAX_FILE_BYTES = 512 * 1024 * 1024  # the service's own limit
MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_ERRORS = 200  # listed; the count keeps going
DEFAULT_EPOCHS = 3
ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = {"role", "content", "name", "weight"}


class FinetuneError(CopilotError, ValueError):
    """A request the fine-tuning workflow refuses, in words a person can act on."""

    kind = "finetune_refused"
    status = 422
    title = "I can't fine-tune that"


@dataclass
class Validation:
    examples: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, problem)
    error_count: int = 0
    tokens: list[int] = field(default_factory=list)  # per valid example
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error_count == 0 and self.examples > 0

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)

    def add_error(self, line: int, problem: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((line, problem))

    def as_dict(self) -> dict[str, Any]:
        t = sorted(self.tokens)
        return {
            "ok": self.ok,
            "examples": self.examples,
            "error_count": self.error_count,
            "errors": [{"line": n, "problem": p} for n, p in self.errors],
            "warnings": self.warnings,
            "total_tokens": self.total_tokens,
            "max_tokens_per_example": t[-1] if t else 0,
            "median_tokens_per_example": t[len(t) // 2] if t else 0,
        }


def max_tokens_of(settings: Any) -> int:
    return int(_settings(settings).finetune_max_tokens)


def prices_of(settings: Any) -> dict[str, float]:
    return dict(_settings(settings).finetune_prices)  # one price table: copilot/config.py


def _settings(settings: Any) -> Any:
    """The given settings, or the configured ones (env, .env) when none are given."""
    if settings is not None:
        return settings
    from copilot.config import get_settings

    return get_settings()


def check_example(record: Any, max_tokens: int) -> tuple[list[str], int]:
    """Problems with one parsed line, and its token count (0 when it has problems)."""
    if not isinstance(record, dict):
        return ["a line must be a JSON object with a 'messages' list"], 0
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["'messages' must be a non-empty list"], 0
    problems: list[str] = []
    roles: list[str] = []
    for i, m in enumerate(messages, 1):
        if not isinstance(m, dict):
            problems.append(f"message {i} is not an object")
            continue
        role, content = m.get("role"), m.get("content")
        extra = set(m) - MESSAGE_KEYS
        if extra:
            problems.append(f"message {i} has unknown keys {sorted(extra)}")
        if role not in ROLES:
            problems.append(f"message {i} has role {role!r}: use system, user or assistant")
            continue
        if not isinstance(content, str) or not content.strip():
            problems.append(f"message {i} ({role}) has no text content")
        if "weight" in m and (m["weight"] not in (0, 1) or role != "assistant"):
            problems.append(f"message {i}: weight is 0 or 1, on assistant messages only")
        roles.append(role)
    if problems:
        return problems, 0
    body = roles[1:] if roles[0] == "system" else roles
    if "system" in body:
        problems.append("a system message may only come first")
    elif not body:
        problems.append("no user and assistant messages")
    else:
        for i, role in enumerate(body):
            want = "user" if i % 2 == 0 else "assistant"
            if role != want:
                problems.append(
                    f"turn {i + 1} is {role}, expected {want}: after an optional system "
                    "message, user and assistant must alternate, starting with user"
                )
                break
        else:
            if body[-1] != "assistant":
                problems.append("the last message must be the assistant's")
    if problems:
        return problems, 0
    from copilot.llm.tokens import count_messages  # tiktoken: not for `copilot --help`

    tokens = count_messages([Message(m["role"], m["content"]) for m in messages])
    if tokens > max_tokens:
        return [f"{tokens} tokens, over the {max_tokens}-token limit per example"], tokens
    return [], tokens


def validate_lines(lines: Iterable[str | bytes], *, max_tokens: int) -> Validation:
    """Check every line; errors are (line number, problem). Blank lines are errors too."""
    result = Validation()
    seen: set[str] = set()
    duplicates = 0
    for number, raw in enumerate(lines, 1):
        if isinstance(raw, bytes):
            if len(raw) > MAX_LINE_BYTES:
                result.add_error(number, f"line is over {MAX_LINE_BYTES} bytes")
                continue
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                result.add_error(number, "not UTF-8 text")
                continue
        line = raw.rstrip("\r\n")
        if not line.strip():
            result.add_error(number, "blank line: every line must be one example")
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as e:
            result.add_error(number, f"not valid JSON ({str(e)[:120]})")
            continue
        result.examples += 1
        problems, tokens = check_example(record, max_tokens)
        for p in problems:
            result.add_error(number, p)
        if not problems:
            result.tokens.append(tokens)
            if line in seen:
                duplicates += 1
            seen.add(line)
    if result.total_tokens > MAX_TOTAL_TOKENS:
        result.add_error(0, f"{result.total_tokens} tokens in all, over {MAX_TOTAL_TOKENS}")
    if duplicates:
        result.warnings.append(f"{duplicates} lines repeat an earlier line exactly")
    if result.examples == 0 and not result.errors:
        result.add_error(0, "the file has no examples")
    return result


def validate_file(path: Path, *, max_tokens: int = DEFAULT_MAX_TOKENS) -> Validation:
    """Validate a JSONL file; a missing, huge or unreadable file raises FinetuneError."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise FinetuneError(f"cannot read {path}: {e.strerror or e}") from e
    if size > MAX_FILE_BYTES:
        raise FinetuneError(f"{path} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
    with path.open("rb") as f:
        return validate_lines(_bounded_lines(f), max_tokens=max_tokens)


def _bounded_lines(f: Any) -> Iterable[bytes]:
    """Lines of at most MAX_LINE_BYTES + 1 bytes each, so one huge line cannot eat memory."""
    while True:
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while chunk := f.readline(MAX_LINE_BYTES):  # skip the rest of this line
                if chunk.endswith(b"\n"):
                    break
        yield line


def price_per_1k(prices: dict[str, float], base_model: str) -> float:
    """The exact name's price, else the longest key the name starts with (dated names)."""
    if base_model in prices:
        return float(prices[base_model])
    keys = [k for k in prices if base_model.startswith(k)]
    if not keys:
        known = ", ".join(sorted(prices))
        raise FinetuneError(
            f"no fine-tuning price for {base_model!r} (known: {known}); add it to "
            "COPILOT_FINETUNE_PRICES"
        )
    return float(prices[max(keys, key=len)])


def estimate_cost(tokens: int, price_per_1k_tokens: float, epochs: int) -> float:
    """USD to train on ``tokens`` for ``epochs`` epochs at the given price per 1,000 tokens."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= 50:
        raise FinetuneError(f"epochs must be a whole number from 1 to 50, not {epochs!r}")
    if tokens < 0:
        raise FinetuneError("tokens cannot be negative")
    cost = Decimal(tokens) * Decimal(str(price_per_1k_tokens)) * epochs / 1000
    return float(cost)


def cost_summary(
    validation: Validation, settings: Any, base_model: str, epochs: int = DEFAULT_EPOCHS
) -> dict[str, Any]:
    price = price_per_1k(prices_of(settings), base_model)
    tokens = validation.total_tokens
    return {
        "base_model": base_model,
        "epochs": epochs,
        "training_tokens": tokens,
        "billed_tokens": tokens * epochs,
        "usd_per_1k_tokens": price,
        "cost_usd": estimate_cost(tokens, price, epochs),
    }
