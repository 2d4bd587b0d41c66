"""Sentiment of many texts on a configured chat server: the label read off the first
answer token's probabilities, as the embedded model's ``classify`` reads it.

Why: the sentiment skill run once per row asks the model to write JSON (label, score,
aspects with evidence): ~60 answer tokens a row, billed and waited for, and an answer
that can stray from the schema. Asked for one token with its likeliest alternatives
(OpenAI's ``logprobs`` / ``top_logprobs``, which Azure OpenAI, vLLM and llama.cpp's
servers give too), the model's own probabilities of the four labels come back in one
short answer: the score is P(positive) - P(negative), as on the embedded model, and the
prompt is the same (``sentiment_labels.label_turns``: instruction, persona, the
template's label examples), sent as chat turns, redacted like every other call.

How an alternative counts for a label: its text, stripped and lower-cased, is the start
of exactly one label ("negative", "Negative", " neg"); "ne" (negative or neutral) and
"The" count for none. The mass of each label is normalised over the four; a label absent
from the alternatives has probability 0. An answer with no label at all is neutral with
confidence 0 and is counted in the workbook's note.

A server that refuses ``logprobs`` (or sends none) raises ``LLMError`` of kind
``unsupported`` (``OpenAIEngine.complete``, which remembers it per server and model), so
the caller falls back to the skill per row at once and the next workbook does not ask.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from copilot.llm.openai_engine import OpenAIEngine
from copilot.llm.tokens import truncate_tokens
from copilot.llm.types import Message
from copilot.skills.sentiment_io import LABELS
from copilot.skills.sentiment_labels import MAX_TEXT_TOKENS, TEXT_HEAD, Reader, label_turns
from copilot.skills.templates.models import SkillTemplate

TOP_LOGPROBS = 20  # the most OpenAI gives
WORKERS = 4  # texts in flight at once on a server that computes several requests at a time


@dataclass(frozen=True)
class Read:
    logprobs: list[list[float]]
    cut: list[bool]


def chat_labels(
    client: OpenAIEngine,
    template: SkillTemplate,
    *,
    model: str | None = None,
    cancel: threading.Event | None = None,
) -> Reader:
    """A ``Reader`` for ``read_labels`` on ``client``'s server (``model``: the skill's
    own, else the default). Texts over ``MAX_TEXT_TOKENS`` are cut (counted with
    cl100k, the copilot's budget tokenizer) and said to be. Several texts are in flight
    at once unless the server computes one request at a time (``client.serial``)."""
    turns = label_turns(template)

    def one(text: str) -> tuple[list[float], bool]:
        kept = truncate_tokens(text, MAX_TEXT_TOKENS)
        answer = client.complete(
            [*turns, Message("user", TEXT_HEAD + kept)],
            max_tokens=1,
            temperature=0.0,
            top_logprobs=TOP_LOGPROBS,
            cancel=cancel,
            model=model,
        )
        assert answer.alternatives is not None  # ``complete`` raises without them
        return label_logprobs(answer.alternatives), kept != text

    def read(texts: Sequence[str]) -> Read:
        # Unknown yet whether the server gives logprobs: one text alone first, so a
        # refusal costs one request, not a batch of them.
        unknown = client.facts(model).logprobs is None
        found = [one(texts[0])] if unknown and texts else []
        rest = texts[len(found) :]
        if client.serial or len(rest) < 2:
            found += [one(text) for text in rest]
        else:
            with ThreadPoolExecutor(min(WORKERS, len(rest))) as pool:
                found += pool.map(one, rest)
        return Read([row for row, _ in found], [was for _, was in found])

    return read


def label_logprobs(alternatives: Sequence[tuple[str, float]]) -> list[float]:
    """log P(label) in ``LABELS`` order from the first token's alternatives, normalised
    over the labels; all -inf when no alternative names a label."""
    mass = [0.0] * len(LABELS)
    for token, logprob in alternatives:
        word = token.strip().lower()
        owners = [i for i, label in enumerate(LABELS) if word and label.startswith(word)]
        if len(owners) == 1:
            mass[owners[0]] += math.exp(logprob)
    total = sum(mass)
    return [math.log(m / total) if m > 0 else -math.inf for m in mass]
