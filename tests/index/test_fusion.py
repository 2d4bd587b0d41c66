"""Hybrid fusion: distribution-based score fusion of the dense and BM25 lists."""

from __future__ import annotations

import random
import statistics

import pytest

from copilot.index.fusion import dbsf, normalise


def test_normalise_maps_mean_plus_minus_three_sigma_to_zero_and_one():
    values = normalise([1.0, 2.0, 3.0])
    assert values[1] == pytest.approx(0.5)
    assert values[0] < 0.5 < values[2]
    assert normalise([4.0, 4.0]) == [0.5, 0.5]  # no spread: nothing to tell apart
    assert normalise([]) == []


def test_a_peaked_list_outweighs_a_flat_one():
    """BM25 is sure (one hit far above the rest, say an invoice number), dense barely
    separates its hits: the confident side decides. RRF sees ranks only and prefers the
    message that is second in both lists."""
    bm25 = [("invoice", 30.0), ("memo", 2.5)] + [(f"b{i}", 2.0 - i / 100) for i in range(19)]
    dense = [(f"d{i}", 0.6 - i / 100) for i in range(20)]  # evenly spread: no side is sure
    dense[2] = ("memo", dense[2][1])
    assert dbsf([dense, bm25], [1.0, 1.0])[0][0] == "invoice"
    rrf: dict[str, float] = {}
    for ranked in (dense, bm25):
        for rank, (key, _) in enumerate(ranked, 1):
            rrf[key] = rrf.get(key, 0.0) + 1 / (60 + rank)
    assert max(rrf, key=rrf.__getitem__) == "memo"


def test_weights_scale_each_side_and_zero_mutes_it():
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    bm25 = [("c", 12.0), ("b", 6.0), ("a", 1.0)]
    assert [key for key, _ in dbsf([dense, bm25], [1.0, 0.0])] == ["a", "b", "c"]
    assert [key for key, _ in dbsf([dense, bm25], [0.0, 1.0])] == ["c", "b", "a"]
    with pytest.raises(ValueError):
        dbsf([dense, bm25], [1.0])  # one weight per list


def test_normalise_in_floats_matches_the_exact_statistics() -> None:
    # normalise sums in floats (fsum) rather than statistics.pstdev's exact fractions,
    # which cost a third of a search; every list here maps as the exact version maps it.
    rand = random.Random(7)
    for _ in range(2000):
        scores = [rand.choice([rand.random(), 30 * rand.random(), 0.5]) for _ in range(50)]
        mean, spread = statistics.fmean(scores), 6 * statistics.pstdev(scores)
        exact = [(s - (mean - spread / 2)) / spread for s in scores]
        assert normalise(scores) == pytest.approx(exact, abs=1e-12)
    # Equal scores are 0.5 however their mean rounds (3 × 0.1 does not sum to 0.3).
    assert normalise([0.1, 0.1, 0.1]) == [0.5, 0.5, 0.5]
    assert normalise([1e-300, 0.0]) == [0.5, 0.5]  # too close to square: no spread
