"""Ranking metrics against cases worked out by hand (the numbers in the comments)."""

from __future__ import annotations

import math

import pytest

from vistag.evaluation.ranking import capped_recall_at_k, dcg, ndcg_at_k, precision_at_k, recall_at_k, reciprocal_rank


def test_binary_ndcg_worked_example():
    # hits at ranks 1 and 3 of 3 relevant documents:
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3) + 1/log2(4) = 2.1309
    assert ndcg_at_k([1, 0, 1, 0], 3, k=4) == pytest.approx(1.5 / (1 + 1 / math.log2(3) + 0.5))
    assert ndcg_at_k([1, 0, 1, 0], 3, k=4) == pytest.approx(0.70392, abs=1e-5)


def test_graded_ndcg_uses_linear_gains_and_the_ideal_order_of_the_judged_gains():
    # ranked gains 1, 3 against judged gains {3, 1}: DCG = 1 + 3/log2(3) = 2.8928; ideal = 3 + 1/log2(3) = 3.6309
    assert ndcg_at_k([1, 3], [1, 3], k=2) == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))
    assert ndcg_at_k([3, 1], [1, 3], k=2) == 1.0


def test_ndcg_cut_off_and_degenerate_cases():
    assert ndcg_at_k([0, 0, 1], 1, k=2) == 0.0  # the hit is below the cutoff
    assert ndcg_at_k([1], 0, k=10) == 0.0  # nothing is relevant: no ideal gain
    assert ndcg_at_k([], 5, k=10) == 0.0
    assert dcg([2, 0, 2], k=3) == pytest.approx(2 + 2 / 2)


def test_recalls_precision_and_reciprocal_rank():
    ranked = [0, 1, 1, 0, 1]
    assert precision_at_k(ranked, 4) == 0.5
    assert precision_at_k([1], 10) == 0.1  # a short list: the missing positions are misses
    assert recall_at_k(ranked, 6, k=5) == 0.5
    assert recall_at_k(ranked, 0, k=5) == 0.0
    assert capped_recall_at_k(ranked, 40, k=5) == pytest.approx(3 / 5)
    assert reciprocal_rank(ranked) == 0.5
    assert reciprocal_rank(ranked, k=1) == 0.0
    assert reciprocal_rank([0, 0]) == 0.0


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k must be at least 1"):
        ndcg_at_k([1], 1, k=0)
