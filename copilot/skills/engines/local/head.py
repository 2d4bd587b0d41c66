"""A logistic-regression head on sentence vectors: the part of the local sentiment
score that is learnt from many rated sentences rather than a few hundred prototypes.

Why: the prototype bank is hand-written and leans towards the domains it was written for
(product reviews first). A linear read-out of the same vectors, fitted on ~19,000
human-rated sentences from four kinds of text (product reviews, film reviews, newspaper
editorials, tweets; the ICWSM 2014 sets that ship in the vaderSentiment source
distribution, MIT licence), generalises across domains better than nearest neighbours.
It has three classes (positive, negative, neutral) and scores P(positive) - P(negative),
the same form as the bank's vote, so factual text stays near 0. The weights are made by
``bench/train_sentiment_head.py`` (reproducible from the pinned sdist) and shipped as
``sentiment_head_e5.json`` for the engine's own encoder (``encoder.py``) and
``sentiment_head.json`` for MiniLM (the index's embedder, which the engine falls back to):
3 x 385 numbers each, no data, nothing downloaded.

A head is only valid in the vector space it was fitted in (``model_ids``); any other
embedder (an OpenAI or Azure model) gets ``None`` and the engine scores without it.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from copilot.errors import CopilotError

HEAD_FILE = Path(__file__).with_name("sentiment_head.json")  # MiniLM's
E5_HEAD_FILE = Path(__file__).with_name("sentiment_head_e5.json")
HEAD_FILES = (E5_HEAD_FILE, HEAD_FILE)
MAX_HEAD_BYTES = 1_000_000  # the real file is ~10 KB: anything far larger is not a head


class HeadFileError(CopilotError):
    """The shipped head file is missing fields, has the wrong shape or non-finite numbers."""

    kind = "sentiment_head_invalid"
    title = "The sentiment model file is damaged"


CLASSES = ["positive", "negative", "neutral"]


class SentimentHead:
    """``scores(vectors)``: P(positive) − P(negative) per row, in [-1, 1]."""

    def __init__(self, weights: np.ndarray, biases: np.ndarray, model_ids: frozenset[str]) -> None:
        self.weights = weights.astype(np.float32)  # one row per class of ``CLASSES``
        self.biases = biases.astype(np.float32)
        self.model_ids = model_ids

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.weights.T + self.biases
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        result: np.ndarray = (p[:, 0] - p[:, 1]) / p.sum(axis=1)
        return result


def parse_head(raw: bytes, source: str) -> SentimentHead:
    """Check and read a head file's bytes; every problem names ``source`` and the field."""
    if len(raw) > MAX_HEAD_BYTES:
        raise HeadFileError(f"{source}: {len(raw)} bytes, more than a head file can be")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeadFileError(f"{source}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise HeadFileError(f"{source}: expected a JSON object")
    weights, biases, ids = (data.get(k) for k in ("weights", "biases", "model_ids"))
    dim = data.get("dim")
    if data.get("classes") != CLASSES:
        raise HeadFileError(f"{source}: 'classes' must be {CLASSES}")
    if not isinstance(dim, int) or dim <= 0:
        raise HeadFileError(f"{source}: 'dim' must be a positive integer")
    shape = f"{len(CLASSES)} lists of {dim} numbers"
    if not isinstance(weights, list) or len(weights) != len(CLASSES):
        raise HeadFileError(f"{source}: 'weights' must be {shape}")
    if not all(isinstance(row, list) and len(row) == dim for row in weights):
        raise HeadFileError(f"{source}: 'weights' must be {shape}")
    if not isinstance(biases, list) or len(biases) != len(CLASSES):
        raise HeadFileError(f"{source}: 'biases' must be {len(CLASSES)} numbers")
    for name, values in (("weights", [w for row in weights for w in row]), ("biases", biases)):
        if not all(_finite(v) for v in values):
            raise HeadFileError(f"{source}: {name!r} holds a value that is not a finite number")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise HeadFileError(f"{source}: 'model_ids' must be a non-empty list of strings")
    return SentimentHead(
        np.asarray(weights, dtype=np.float32), np.asarray(biases, dtype=np.float32), frozenset(ids)
    )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@lru_cache(maxsize=4)
def _load(path: Path) -> SentimentHead | None:
    if not path.is_file():
        return None
    return parse_head(path.read_bytes(), str(path))


def head_for(
    model_id: str, dim: int, paths: Path | tuple[Path, ...] = HEAD_FILES
) -> SentimentHead | None:
    """The shipped head fitted in this embedder's vector space, else None."""
    for path in (paths,) if isinstance(paths, Path) else paths:
        head = _load(path)
        if head is not None and model_id in head.model_ids and head.weights.shape[1] == dim:
            return head
    return None
