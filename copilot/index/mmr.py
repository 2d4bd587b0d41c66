"""Maximal marginal relevance: relevant results that are not copies of each other.

Why: a skill that wants a handful of few-shot examples ("five replies like this one") gets
five near-identical messages from a plain top-k over a mailbox full of threads and
templates. MMR picks greedily the candidate with the best
``lambda_ * relevance - (1 - lambda_) * max similarity to what was already picked``.

Relevance is the cosine to the query vector when there is one (the same scale as the
redundancy term, so ``lambda_`` means what it says); without one, the store's score
min-max scaled to [0, 1]. The candidates come from the normal (hybrid) search, so a chunk
found only by its keywords can still be picked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from copilot.index.base import IndexStore, QueryEmbedder
from copilot.index.filters import SearchFilters
from copilot.index.search import SearchResult, clean_query, search

__all__ = ["diverse_search", "mmr"]

Candidate = tuple[str, Sequence[float] | np.ndarray, float]


def mmr(
    query_vec: Sequence[float] | np.ndarray | None,
    candidates: Sequence[Candidate],
    k: int,
    lambda_: float = 0.5,
) -> list[str]:
    """Ids of ``k`` candidates ``(id, vector, score)`` in MMR order.

    ``lambda_`` = 1 keeps the relevance order; 0 maximises diversity alone.
    """
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be between 0 and 1, got {lambda_}")
    if k < 1 or not candidates:
        return []
    vectors = _unit_rows(np.asarray([c[1] for c in candidates], dtype=np.float32))
    if query_vec is not None:
        relevance = vectors @ _unit_rows(np.asarray(query_vec, dtype=np.float32)[None, :])[0]
    else:
        scores = np.asarray([c[2] for c in candidates], dtype=np.float32)
        spread = float(scores.max() - scores.min())
        relevance = (scores - scores.min()) / spread if spread > 0 else np.ones_like(scores)
    similarity = vectors @ vectors.T
    picked: list[int] = []
    redundancy = np.full(len(candidates), -np.inf, dtype=np.float32)  # max sim to picked
    left = np.ones(len(candidates), dtype=bool)
    for _ in range(min(k, len(candidates))):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        value = np.where(left, lambda_ * relevance - (1.0 - lambda_) * penalty, -np.inf)
        best = int(np.argmax(value))
        picked.append(best)
        left[best] = False
        redundancy = np.maximum(redundancy, similarity[best])
    return [candidates[i][0] for i in picked]


def diverse_search(
    store: IndexStore,
    embedder: QueryEmbedder,
    owner: str,
    query: str,
    k: int,
    fetch_k: int = 50,
    lambda_: float = 0.5,
    filters: SearchFilters | None = None,
) -> list[SearchResult]:
    """``k`` results for ``query`` chosen by MMR among the ``fetch_k`` best (hybrid) ones.

    The candidates' vectors are read back from the store rather than embedded again
    (50 candidates would cost 50 embeddings per query).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    results = search(store, embedder, owner, query, k=max(fetch_k, k), filters=filters)
    vectors = store.vectors(owner, [r.chunk_id for r in results])
    candidates = [
        (r.chunk_id, vectors[r.chunk_id], r.score) for r in results if r.chunk_id in vectors
    ]
    query_vec = embedder.embed_query(clean_query(query))
    by_id = {r.chunk_id: r for r in results}
    return [by_id[i] for i in mmr(query_vec, candidates, k, lambda_)]


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)
