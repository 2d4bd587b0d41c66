"""Pseudo-relevance feedback for the dense leg of hybrid search (Rocchio on vectors).

A short query and a long passage that answers it share few words and sit apart in
MiniLM's space; the passages the first fused list puts on top are mostly right, and they
are written in the collection's own words. So hybrid search runs its dense list twice:
once for the query, then for the query moved towards the mean of the first fused list's
top chunks (``COPILOT_SEARCH_FEEDBACK``, 3 by default; their stored vectors: nothing is
embedded again), and fuses the second dense list with the same BM25 list.

Measured in docs/benchmarks.md ("Feedback for the dense leg"), nDCG@10 of hybrid through
``copilot eval retrieval``, the setting fixed before the first run (Rocchio with both
weights 1 and three passages, the usual first choice, not fitted): Cranfield 0.421 ->
0.435, generated mail seed 1 0.859 -> 0.873, seed 0 0.879 -> 0.879. Tried beside it and
not kept (``bench/feedback_variants.py``): feedback from the dense list alone (a loss on
mail), the query weighted as one passage among four (more on Cranfield, a loss on mail),
and BM25 expanded by the passages' terms (−0.05 to −0.10 on mail: a known-item query
drifts to the wrong thread).

Why only the dense leg: BM25 already has the query's exact words, names and numbers,
which expansion dilutes; the dense vector is what a passage's vocabulary can correct.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["feedback_query"]


def feedback_query(query: np.ndarray, passages: Sequence[np.ndarray]) -> np.ndarray:
    """``query`` moved towards the mean of ``passages`` (each unit-normalised first), as a
    unit vector. A passage without direction (a zero vector) is left out; with no passage
    left, or a query without direction, the query comes back as it was.

    Rocchio's update with α = β = 1: the query keeps half the weight, so one off-topic
    passage among three moves it by a sixth.
    """
    q = np.asarray(query, dtype=np.float32)
    rows = [p for p in (_unit(np.asarray(v, dtype=np.float32)) for v in passages) if p is not None]
    unit = _unit(q)
    if unit is None or not rows:
        return q
    moved = _unit(unit + np.mean(rows, axis=0))
    return q if moved is None else moved


def _unit(vector: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(vector))
    return vector / norm if np.isfinite(norm) and norm > 0.0 else None
