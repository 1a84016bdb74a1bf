"""Client-side fusion of ranked lists: reciprocal rank fusion and normalised weighted sums.

Used where the engine has no fusion of its own: OpenSearch without the neural-search
plugin, and Elasticsearch (its ``rrf`` retriever is not in the integ-test
distribution). Where neural-search is present, :mod:`vistag.documents.strategies.hybrid`
fuses inside the engine. Each input is a
ranked list of ``(id, score)``; the output is a ranked list of ``(id, fused score)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from vistag.engine.adapter import RRF_RANK_CONSTANT

Ranked = Sequence[tuple[str, float]]

#: The RRF constant of Cormack et al. (2009), also Elasticsearch's default and vistag's engine-side pipeline's.
RRF_K = RRF_RANK_CONSTANT


def rrf(
    lists: Mapping[str, Ranked], k: int = RRF_K, weights: Mapping[str, float] | None = None
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ``sum_l w_l / (k + rank_l(d))`` (rank from 1)."""
    scores: dict[str, float] = {}
    for name, ranked in lists.items():
        w = (weights or {}).get(name, 1.0)
        for rank, (doc_id, _) in enumerate(ranked, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda p: (-p[1], p[0]))


def min_max(ranked: Ranked) -> dict[str, float]:
    """Scores rescaled to [0, 1] within one list (all 1.0 when they are equal)."""
    if not ranked:
        return {}
    values = [s for _, s in ranked]
    lo, hi = min(values), max(values)
    span = hi - lo
    return {d: (s - lo) / span if span > 0 else 1.0 for d, s in ranked}


def weighted_sum(lists: Mapping[str, Ranked], weights: Mapping[str, float] | None = None) -> list[tuple[str, float]]:
    """Min-max normalise each list, then ``sum_l w_l * norm_l(d)`` (missing = 0)."""
    scores: dict[str, float] = {}
    for name, ranked in lists.items():
        w = (weights or {}).get(name, 1.0)
        for doc_id, s in min_max(ranked).items():
            scores[doc_id] = scores.get(doc_id, 0.0) + w * s
    return sorted(scores.items(), key=lambda p: (-p[1], p[0]))


#: Fusions by name: each takes ``{list name: ranked list}`` and ``weights=``.
FUSIONS: dict[str, Callable[..., list[tuple[str, float]]]] = {"rrf": rrf, "weighted": weighted_sum}
