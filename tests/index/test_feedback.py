"""The dense leg's feedback query (Rocchio on stored vectors): where the query moves."""

from __future__ import annotations

import numpy as np
import pytest

from copilot.index.feedback import feedback_query


def test_the_query_keeps_half_the_weight_against_the_mean_of_the_passages() -> None:
    query = np.array([3.0, 0.0, 0.0])  # lengths do not matter: every vector is unit first
    moved = feedback_query(query, [np.array([0.0, 5.0, 0.0]), np.array([0.0, 0.0, 0.5])])
    expected = np.array([1.0, 0.5, 0.5])
    assert moved == pytest.approx(expected / np.linalg.norm(expected))
    assert float(np.linalg.norm(moved)) == pytest.approx(1.0)


def test_one_passage_like_the_query_leaves_its_direction_alone() -> None:
    query = np.array([0.6, 0.8])
    assert feedback_query(query, [2 * query]) == pytest.approx(query)


def test_passages_without_direction_are_left_out_and_none_left_changes_nothing() -> None:
    query = np.array([0.0, 2.0])
    assert feedback_query(query, []) == pytest.approx(query)
    assert feedback_query(query, [np.zeros(2)]) == pytest.approx(query)
    assert feedback_query(query, [np.zeros(2), np.array([1.0, 0.0])]) == pytest.approx(
        np.array([1.0, 1.0]) / np.sqrt(2)
    )
    zero = np.zeros(2)  # a query without direction cannot be moved: it comes back
    assert feedback_query(zero, [np.array([1.0, 0.0])]) == pytest.approx(zero)
