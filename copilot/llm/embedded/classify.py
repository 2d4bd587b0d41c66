"""Classification by the model's first answer token: the ``/copilot/classify`` route.

Why: a label is one token. Generating a sentiment skill's JSON answer (label, score,
aspects with evidence) takes the 1.5B model ~2.7 s for a one-sentence review on two idle
CPU cores, more for a longer text; reading the text and looking at the probabilities of the
first answer token takes ~0.4 s (6× less, ``bench/sentiment_paths.py``), and the
answer cannot stray from the labels asked for (no sampling, no JSON to repair). On the
project's sentiment sets the constrained answer of Qwen2.5-Coder-1.5B is also right more
often than the embedding engine (docs/benchmarks.md, "Sentiment by the model's first
token").

A request names a ``prefix`` (the instruction, examples and the start of the user's turn,
with the chat template's special tokens), the ``texts`` to classify, what follows each
text (``after``: the end of the turn and the start of the answer) and the ``choices``, each
a list of spellings. The prefix is read once per request (and not at all when the model
still holds it); each text is read after it and the model's next-token distribution is
read off, so a batch of 16 short texts costs 16 short reads. A text is data: it is
tokenized without special tokens, so a "<|im_end|>" inside it is text, not the end of the
turn, and it is cut to ``max_text_tokens`` (the reply says which were cut).

The answer for each text is the log-probability of each choice (the log-sum of its
spellings' first tokens), normalised over the choices: what the model would answer if it
could answer nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from copilot.errors import CopilotError

CLASSIFY_PATH = "/copilot/classify"
BATCH = 16  # texts a client sends per request: ~5 s of the model on two cores, so a user's
# run waits at most that long behind a long scoring
MAX_TEXTS = 64  # per request: the client sends batches, so one request holds the model briefly
MAX_CHOICES = 16
MAX_PREFIX_CHARS = 32_000
MAX_TEXT_CHARS = 64_000  # before tokenizing; the token cut comes after


class ClassifyRequestError(CopilotError, ValueError):
    """A request the route refuses (HTTP 400), with the reason in words."""

    kind = "bad_classify_request"
    status = 400
    title = "The model cannot answer this classification"


@dataclass(frozen=True)
class ClassifyRequest:
    prefix: str
    texts: list[str]
    after: str
    choices: list[list[str]]
    max_text_tokens: int


def parse(body: Any) -> ClassifyRequest:
    """The request body checked: types, counts and sizes, each refusal naming the field."""
    if not isinstance(body, dict):
        raise ClassifyRequestError("the body must be a JSON object")
    prefix, after = body.get("prefix"), body.get("after", "")
    texts, choices = body.get("texts"), body.get("choices")
    limit = body.get("max_text_tokens", 512)
    if not isinstance(prefix, str) or not prefix or len(prefix) > MAX_PREFIX_CHARS:
        raise ClassifyRequestError(f"prefix: a non-empty string of at most {MAX_PREFIX_CHARS}")
    if not isinstance(after, str) or len(after) > MAX_PREFIX_CHARS:
        raise ClassifyRequestError(f"after: a string of at most {MAX_PREFIX_CHARS} characters")
    if not isinstance(texts, list) or not 1 <= len(texts) <= MAX_TEXTS:
        raise ClassifyRequestError(f"texts: a list of 1 to {MAX_TEXTS} strings")
    if not all(isinstance(t, str) and len(t) <= MAX_TEXT_CHARS for t in texts):
        raise ClassifyRequestError(f"texts: each a string of at most {MAX_TEXT_CHARS} characters")
    if (
        not isinstance(choices, list)
        or not 2 <= len(choices) <= MAX_CHOICES
        or not all(
            isinstance(c, list) and c and all(isinstance(s, str) and s.strip() for s in c)
            for c in choices
        )
    ):
        raise ClassifyRequestError(
            f"choices: 2 to {MAX_CHOICES} lists of spellings (non-empty strings)"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ClassifyRequestError("max_text_tokens: a positive integer")
    return ClassifyRequest(prefix, texts, after, choices, limit)


def first_tokens(llama: Any, choices: list[list[str]]) -> list[list[int]]:
    """Each choice's first tokens (one per spelling, duplicates dropped); two choices that
    begin with the same token cannot be told apart, which is refused."""
    out: list[list[int]] = []
    owner: dict[int, int] = {}
    for i, spellings in enumerate(choices):
        ids: list[int] = []
        for spelling in spellings:
            tokens = llama.tokenize(_utf8(spelling), add_bos=False, special=False)
            if tokens and tokens[0] not in ids:
                ids.append(tokens[0])
        for token in ids:
            if owner.setdefault(token, i) != i:
                raise ClassifyRequestError(
                    f"choices {choices[owner[token]]!r} and {spellings!r} begin with the same "
                    "token: the model's first token cannot tell them apart"
                )
        out.append(ids)
    return out


def classify(llama: Any, request: ClassifyRequest) -> dict[str, Any]:
    """Run ``request`` on the loaded model (the caller holds its lock); the route's reply."""
    import llama_cpp

    choice_ids = first_tokens(llama, request.choices)
    prefix = llama.tokenize(_utf8(request.prefix), add_bos=False, special=True)
    after = llama.tokenize(_utf8(request.after), add_bos=False, special=True)
    room = llama.n_ctx() - len(prefix) - len(after) - 1
    if room < 1:
        raise ClassifyRequestError(
            f"the prefix ({len(prefix)} tokens) leaves no room in the model's window "
            f"of {llama.n_ctx()} tokens"
        )
    budget = min(request.max_text_tokens, room)
    held = llama.longest_token_prefix(llama.input_ids[: llama.n_tokens].tolist(), prefix)
    read = 0
    if held < len(prefix):  # another prompt came in between: read the prefix again
        llama.n_tokens = held
        llama.eval(prefix[held:])
        read += len(prefix) - held
    vocab = llama.n_vocab()
    logprobs: list[list[float]] = []
    cut: list[bool] = []
    for text in request.texts:
        tokens = llama.tokenize(_utf8(text), add_bos=False, special=False)
        cut.append(len(tokens) > budget)
        llama.n_tokens = len(prefix)  # drop the previous text; ``eval`` clears its cache cells
        suffix = tokens[:budget] + after
        llama.eval(suffix)
        read += len(suffix)
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama.ctx, -1), shape=(vocab,))
        logprobs.append(normalised(row, choice_ids))
    return {"logprobs": logprobs, "cut": cut, "tokens_read": read}


def _utf8(text: str) -> bytes:
    """``text`` for the tokenizer; a lone surrogate (a JSON "\\ud800" escape from a badly
    decoded cell or mail) cannot be encoded and becomes "?" rather than failing the batch."""
    return text.encode("utf-8", "replace")


def normalised(logits: np.ndarray, choice_ids: list[list[int]]) -> list[float]:
    """log P(choice) among the choices: the log-sum-exp of each choice's token logits,
    less their log-sum-exp over all choices (so the probabilities add up to 1)."""
    scores = np.array([np.logaddexp.reduce(logits[ids].astype(np.float64)) for ids in choice_ids])
    return [round(float(s), 6) for s in scores - np.logaddexp.reduce(scores)]
