"""Per-query metrics of a run, and how to tell two strategies apart on the same queries.

* :func:`query_metrics` -- nDCG@k (graded, linear gains), recall@k, precision@k and MRR@k of one
  ranked list against one query's judgments, by the formulas of trec_eval and ranx
  (:mod:`vistag.evaluation.ranking`);
* :func:`wins_ties_losses` -- per-query comparison against a baseline;
* :func:`randomisation_test` -- two-sided paired randomisation (sign-flip permutation) test of
  the mean difference (Smucker, Allan and Carterette's recommendation for IR);
* :func:`paired_t_test` -- the paired t-test (scipy);
* :func:`holm` -- Holm-Bonferroni correction of several p-values (the comparisons of every
  strategy against one baseline);
* :func:`bootstrap_ci` -- a percentile bootstrap confidence interval of a mean.

Examples:
    >>> query_metrics(["d1", "d9"], {"d1": 2, "d2": 1}, k=2)["recall@2"]
    0.5
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from vistag.evaluation.ranking import capped_recall_at_k, ndcg_at_k, precision_at_k, recall_at_k, reciprocal_rank

#: The metrics :func:`query_metrics` computes, by name stem.
METRICS = ("ndcg", "recall", "capped_recall", "precision", "mrr")


def query_metrics(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> dict[str, float]:
    """``ndcg@k``, ``recall@k``, ``capped_recall@k``, ``precision@k`` and ``mrr@k`` of one ranked list of ids.

    Unjudged documents count as not relevant; relevant means a grade above 0. ``capped_recall@k``
    divides by ``min(k, relevant)`` instead of all relevant documents (1.0 when the top ``k``
    cannot be better; what vistag's relevance benchmark reports for queries with hundreds of
    relevant products).

    Examples:
        >>> m = query_metrics(["a", "b", "c"], {"c": 1}, k=3)
        >>> m["mrr@3"], round(m["ndcg@3"], 4)
        (0.3333333333333333, 0.5)
    """
    gains = [float(judged.get(doc, 0)) for doc in ranked[:k]]
    relevant = [float(g) for g in judged.values() if g > 0]
    return {
        f"ndcg@{k}": ndcg_at_k(gains, relevant, k),
        f"recall@{k}": recall_at_k(gains, len(relevant), k),
        f"capped_recall@{k}": capped_recall_at_k(gains, len(relevant), k),
        f"precision@{k}": precision_at_k(gains, k),
        f"mrr@{k}": reciprocal_rank(gains, k),
    }


def wins_ties_losses(values: Sequence[float], baseline: Sequence[float], eps: float = 1e-9) -> tuple[int, int, int]:
    """Queries where ``values`` beat, tie with and lose to ``baseline``.

    Examples:
        >>> wins_ties_losses([1, 0.5, 0], [0.5, 0.5, 1])
        (1, 1, 1)
    """
    d = np.asarray(values, float) - np.asarray(baseline, float)
    return int((d > eps).sum()), int((np.abs(d) <= eps).sum()), int((d < -eps).sum())


def randomisation_test(
    values: Sequence[float], baseline: Sequence[float], permutations: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p-value of the paired randomisation test of the mean difference.

    Under the null hypothesis each query's two values are exchangeable, so each difference's
    sign is flipped at random; the p-value is the share of ``permutations`` sign patterns (plus
    the observed one) whose mean difference is at least as far from 0 as the observed one. With
    16 or fewer queries every sign pattern is enumerated (the exact test).

    Raises:
        ValueError: lists of different lengths.

    Examples:
        >>> randomisation_test([1.0, 1.0], [1.0, 1.0])
        1.0
    """
    d = np.asarray(values, float) - np.asarray(baseline, float)
    if d.shape != np.asarray(baseline, float).shape:
        raise ValueError("paired tests need the same queries in both lists")
    n = len(d)
    if n == 0:
        return 1.0
    observed = abs(d.mean())
    if n <= 16:  # exact: every sign pattern
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        means = np.abs((signs * d).mean(axis=1))
        return float((means >= observed - 1e-12).mean())
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, permutations, 1000):
        m = min(1000, permutations - start)
        signs = rng.integers(0, 2, size=(m, n)) * 2 - 1
        hits += int((np.abs((signs * d).mean(axis=1)) >= observed - 1e-12).sum())
    return (hits + 1) / (permutations + 1)


def paired_t_test(values: Sequence[float], baseline: Sequence[float]) -> float:
    """Two-sided p-value of the paired t-test (1.0 when every difference is 0).

    Examples:
        >>> round(paired_t_test([0.5, 0.6, 0.7, 0.9], [0.4, 0.5, 0.5, 0.6]), 4)
        0.0354
    """
    from scipy import stats

    d = np.asarray(values, float) - np.asarray(baseline, float)
    if len(d) < 2 or np.allclose(d, d[0]):
        return 1.0 if np.allclose(d, 0) else 0.0
    return float(stats.ttest_rel(values, baseline).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order), for several comparisons at once.

    Examples:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, float)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return [round(float(x), 12) for x in adjusted]


def bootstrap_ci(
    values: Sequence[float], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values``.

    Examples:
        >>> bootstrap_ci([0.5, 0.5, 0.5])
        (0.5, 0.5)
    """
    v = np.asarray(values, float)
    if len(v) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))
