"""The same query set and judgments through the engine's own ``_rank_eval`` API, to check vistag's metrics.

``_rank_eval`` (the rank-eval module: OpenSearch ships it in its full distribution,
Elasticsearch's integration-test distribution does not) runs each query's request and scores
it against the ratings sent with it. Its DCG uses exponential gains (``2^grade - 1``), equal to
vistag's linear gains when grades are 0 or 1; with graded judgments compare binary
judgments, or expect a difference.

Examples:
    >>> rank_eval_metric("ndcg", 10)
    {'dcg': {'k': 10, 'normalize': True}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vistag.documents.strategies import keyword
from vistag.errors import ConfigError
from vistag.relevance.judgments import Judgments
from vistag.relevance.queries import Query
from vistag.relevance.strategies import Strategy
from vistag.search.queries import Searcher

#: The rank-eval module's name, as the engine's ``_nodes`` lists it.
MODULE = "rank-eval"


def rank_eval_metric(metric: str, k: int) -> dict[str, Any]:
    """The ``_rank_eval`` metric object of a vistag metric stem (``ndcg``, ``recall``, ``precision``, ``mrr``).

    Raises:
        ConfigError: a metric the API does not have (``capped_recall``).
    """
    if metric == "ndcg":
        return {"dcg": {"k": k, "normalize": True}}
    if metric == "recall":
        return {"recall": {"k": k, "relevant_rating_threshold": 1}}
    if metric == "precision":
        return {"precision": {"k": k, "relevant_rating_threshold": 1, "ignore_unlabeled": False}}
    if metric == "mrr":
        return {"mean_reciprocal_rank": {"k": k, "relevant_rating_threshold": 1}}
    raise ConfigError(f"_rank_eval has no {metric!r} metric")


def has_rank_eval(searcher: Searcher) -> bool:
    """Whether the engine behind ``searcher`` lists the rank-eval module."""
    info = searcher.client.info()
    return bool(info.modules) and MODULE in info.modules


def _request(searcher: Searcher, strategy: Strategy, query: Query, k: int) -> dict[str, Any]:
    if strategy.kind == "keyword":
        body = searcher.body(keyword, keyword.params(query.text, k, 0, None, None))
    else:
        raise ConfigError(
            f"strategy {strategy.name!r}: _rank_eval runs keyword strategies here "
            f"(a {strategy.kind} has no plain request)"
        )
    body = {key: v for key, v in body.items() if key not in ("size", "from", "_source", "highlight")}
    if query.product:  # left out of the results, as vistag's own run leaves it out
        body["query"] = {"bool": {"must": [body["query"]], "must_not": [{"ids": {"values": [query.product]}}]}}
    return body


def rank_eval(
    searcher: Searcher,
    queries: Sequence[Query],
    judgments: Judgments,
    strategy: Strategy,
    metric: str = "ndcg",
    k: int = 10,
) -> dict[str, float]:
    """Per-query ``metric@k`` of ``strategy`` as the engine's ``_rank_eval`` computes it.

    Args:
        searcher: the index's searcher.
        queries: the query set (those with judgments are sent).
        judgments: the ratings, sent with each request.
        strategy: a ``keyword`` strategy.
        metric: ``ndcg``, ``recall``, ``precision`` or ``mrr``.
        k: the cutoff.

    Raises:
        ConfigError: the engine has no rank-eval module, or a strategy or metric it cannot run.
    """
    if not has_rank_eval(searcher):
        raise ConfigError(f"{searcher.client.label} has no {MODULE} module: _rank_eval is not available there")
    requests = [
        {
            "id": q.id,
            "request": _request(searcher, strategy, q, k),
            "ratings": [{"_index": searcher.index, "_id": d, "rating": g} for d, g in judgments[q.id].items()],
        }
        for q in queries
        if judgments.get(q.id)
    ]
    body = {"requests": requests, "metric": rank_eval_metric(metric, k)}
    resp = searcher.client.perform("POST", f"/{searcher.index}/_rank_eval", body)
    failures = resp.get("failures") or {}
    if failures:
        first = next(iter(failures.items()))
        raise ConfigError(f"_rank_eval failed on {len(failures)} queries, e.g. {first[0]}: {str(first[1])[:300]}")
    return {qid: float(d["metric_score"]) for qid, d in resp["details"].items()}
