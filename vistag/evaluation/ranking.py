"""Ranking metrics of one result list against relevance judgments (the formulas of trec_eval and ranx).

Each function takes the ranked result as relevance flags or graded gains in rank
order (``ranked[0]`` is the first hit) and what the judgments know about the query:

* :func:`precision_at_k` -- relevant hits in the top ``k`` / ``k``;
* :func:`recall_at_k` -- relevant hits in the top ``k`` / all relevant documents;
* :func:`capped_recall_at_k` -- relevant hits in the top ``k`` / ``min(k, relevant)``
  (1.0 when the top ``k`` is as good as it can be; vistag's relevance benchmark reports it);
* :func:`reciprocal_rank` -- 1 / rank of the first relevant hit (0 when none);
* :func:`ndcg_at_k` -- DCG with gain ``g`` at rank ``r`` worth ``g / log2(r + 1)``
  (linear gains, as trec_eval's ``ndcg_cut`` and ranx's ``ndcg``), divided by the DCG
  of the ideal order of the judged gains.

Examples:
    >>> round(ndcg_at_k([1, 0, 1], [1, 1], k=3), 4)
    0.9197
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Gains = Sequence[float]


def _check(k: int) -> None:
    if k < 1:
        raise ValueError("k must be at least 1")


def precision_at_k(ranked: Gains, k: int) -> float:
    """Share of the first ``k`` positions holding a relevant hit (gain > 0); short lists count as misses.

    Examples:
        >>> precision_at_k([1, 0, 1, 0], k=2)
        0.5
    """
    _check(k)
    return sum(1 for g in list(ranked)[:k] if g > 0) / k


def recall_at_k(ranked: Gains, n_relevant: int, k: int) -> float:
    """Relevant hits in the top ``k`` / all ``n_relevant`` relevant documents (0 when there are none).

    Examples:
        >>> recall_at_k([1, 0, 1], n_relevant=4, k=3)
        0.5
    """
    _check(k)
    return sum(1 for g in list(ranked)[:k] if g > 0) / n_relevant if n_relevant > 0 else 0.0


def capped_recall_at_k(ranked: Gains, n_relevant: int, k: int) -> float:
    """Relevant hits in the top ``k`` / ``min(k, n_relevant)``: 1.0 when the top ``k`` cannot be better.

    Examples:
        >>> capped_recall_at_k([1, 1, 0], n_relevant=40, k=3)
        0.6666666666666666
    """
    _check(k)
    return sum(1 for g in list(ranked)[:k] if g > 0) / max(1, min(k, n_relevant))


def reciprocal_rank(ranked: Gains, k: int | None = None) -> float:
    """1 / the rank of the first relevant hit within the first ``k`` (all when ``None``); 0 when there is none.

    Examples:
        >>> reciprocal_rank([0, 0, 1])
        0.3333333333333333
    """
    for rank, gain in enumerate(list(ranked)[:k] if k else ranked, start=1):
        if gain > 0:
            return 1.0 / rank
    return 0.0


def dcg(gains: Gains, k: int) -> float:
    """Discounted cumulative gain of the first ``k`` gains: ``sum(g_r / log2(r + 1))``.

    Examples:
        >>> dcg([3, 2], k=2) == 3 + 2 / math.log2(3)
        True
    """
    _check(k)
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(list(gains)[:k], start=1) if g > 0)


def ndcg_at_k(ranked: Gains, judged: Gains | int, k: int) -> float:
    """nDCG@k: the DCG of ``ranked`` over the DCG of the ideal ranking of the judged gains.

    Args:
        ranked: the gain of each hit in rank order (``True``/``False`` or grades).
        judged: the gains of every relevant document the judgments know for the query
            (any order), or their number when relevance is binary.
        k: cutoff.

    Examples:
        >>> ndcg_at_k([True, False], 1, k=10)
        1.0
    """
    ideal_gains = [1.0] * judged if isinstance(judged, int) else sorted((float(g) for g in judged), reverse=True)
    ideal = dcg(ideal_gains, k)
    return dcg([float(g) for g in ranked], k) / ideal if ideal > 0 else 0.0
