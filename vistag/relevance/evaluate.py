"""Run a query set through several strategies and compare them: :func:`evaluate`, :func:`tune` for fusion
weights (chosen on some queries, reported on the others), and :func:`compare_runs` for two runs (before
and after a change).

Examples:
    >>> result = evaluate(client, "products", queries, judgments, parse_strategies(["keyword", "hybrid"]),
    ...                   baseline="keyword")                                   # doctest: +SKIP
    >>> result.comparisons["hybrid"]["ndcg@10"]["p_holm"]                       # doctest: +SKIP
    0.0021
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from vistag.engine.client import Client
from vistag.errors import ConfigError, VistagError
from vistag.relevance.judgments import Judgments
from vistag.relevance.queries import Query
from vistag.relevance.stats import (
    METRICS,
    bootstrap_ci,
    holm,
    paired_t_test,
    query_metrics,
    randomisation_test,
    wins_ties_losses,
)
from vistag.relevance.strategies import Context, Strategy, run_strategy
from vistag.search.queries import Searcher

logger = logging.getLogger(__name__)


@dataclass
class StrategyResult:
    """One strategy's run over the query set.

    Attributes:
        strategy: the strategy.
        runs: query id -> the ranked product ids.
        per_query: query id -> metric -> value.
        latencies: seconds per query as the client saw them.
        errors: query id -> why the strategy failed on it (those queries are left out of its figures).
    """

    strategy: Strategy
    runs: dict[str, list[str]] = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def values(self, metric: str, queries: Sequence[str]) -> list[float]:
        """The metric for ``queries``, in order."""
        return [self.per_query[q][metric] for q in queries]

    def summary(self, metrics: Sequence[str], seed: int = 0) -> dict[str, Any]:
        """Mean and 95 % bootstrap interval per metric, latency p50/p95 in ms."""
        out: dict[str, Any] = {"queries": len(self.per_query), "errors": len(self.errors)}
        for m in metrics:
            v = [pq[m] for pq in self.per_query.values()]
            lo, hi = bootstrap_ci(v, seed=seed)
            out[m] = {"mean": float(np.mean(v)) if v else 0.0, "ci95": [lo, hi]}
        lat = np.asarray(self.latencies) * 1000
        out["latency_ms"] = {
            "p50": float(np.percentile(lat, 50)) if len(lat) else None,
            "p95": float(np.percentile(lat, 95)) if len(lat) else None,
        }
        return out


@dataclass
class RelevanceResult:
    """What :func:`evaluate` measured.

    Attributes:
        k: the cutoff.
        metrics: metric names (``ndcg@10``, ...).
        strategies: one result per strategy, in the order given.
        baseline: the strategy the others are compared with.
        comparisons: strategy -> metric -> ``delta``, ``wins``, ``ties``, ``losses``, ``queries``,
            ``p`` (paired randomisation test), ``p_t`` (paired t-test) and ``p_holm`` (``p`` after
            Holm's correction over every comparison of that metric).
        info: engine, index, query and judgment counts, settings.
    """

    k: int
    metrics: list[str]
    strategies: list[StrategyResult]
    baseline: str
    comparisons: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def by_name(self, name: str) -> StrategyResult:
        """The result of the strategy named ``name``.

        Raises:
            ConfigError: no such strategy.
        """
        for r in self.strategies:
            if r.strategy.name == name:
                return r
        raise ConfigError(f"no strategy named {name!r} in this run")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (per-query values included), what ``vistag relevance report`` reads."""
        return {
            "k": self.k,
            "metrics": self.metrics,
            "baseline": self.baseline,
            "info": self.info,
            "summary": {r.strategy.name: r.summary(self.metrics) for r in self.strategies},
            "comparisons": self.comparisons,
            "strategies": [
                {
                    "strategy": r.strategy.to_dict(),
                    "per_query": r.per_query,
                    "runs": r.runs,
                    "latencies": r.latencies,
                    "errors": r.errors,
                }
                for r in self.strategies
            ],
        }


def _paired(a: Sequence[float], b: Sequence[float], permutations: int, seed: int) -> dict[str, Any]:
    """Mean difference, wins/ties/losses and p-values of ``a`` against ``b`` (the same queries, in order)."""
    wins, ties, losses = wins_ties_losses(a, b)
    return {
        "queries": len(a),
        "delta": float(np.mean(np.subtract(a, b))) if len(a) else 0.0,
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "p": randomisation_test(a, b, permutations, seed),
        "p_t": paired_t_test(a, b),
    }


def _add_holm(out: dict[str, dict[str, dict[str, Any]]], metrics: Sequence[str]) -> None:
    """Set ``p_holm``: each metric's ``p`` corrected over every comparison of that metric."""
    for m in metrics:
        names = [n for n in out if m in out[n]]
        for name, adjusted in zip(names, holm([out[n][m]["p"] for n in names])):
            out[name][m]["p_holm"] = adjusted


def compare(
    results: Sequence[StrategyResult], baseline: str, metrics: Sequence[str], permutations: int = 10_000, seed: int = 0
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every strategy against ``baseline`` on the queries both answered: mean difference, wins/ties/losses,
    p-values of the paired randomisation and t-tests, and Holm's correction per metric.
    """
    base = next((r for r in results if r.strategy.name == baseline), None)
    if base is None:
        raise ConfigError(f"baseline {baseline!r} is not one of the strategies")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in results:
        if r is base:
            continue
        shared = [q for q in base.per_query if q in r.per_query]
        out[r.strategy.name] = {
            m: _paired(r.values(m, shared), base.values(m, shared), permutations, seed) for m in metrics
        }
    _add_holm(out, metrics)
    return out


def compare_runs(
    run: Mapping[str, Any],
    before: Mapping[str, Any],
    metrics: Sequence[str] | None = None,
    permutations: int = 10_000,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each strategy of ``run`` against the strategy of the same name in ``before``: an A/B of two runs.

    Two runs over the same query set and judgments -- before and after a change of model, index
    settings or fusion weights -- are compared query by query on the queries both answered, with
    the same statistics as :func:`compare` (``before_mean`` and ``after_mean`` added), Holm's
    correction over the strategies compared per metric.

    Args:
        run: a run's JSON form (:meth:`RelevanceResult.to_dict`, what ``relevance.json`` holds), the "after".
        before: the earlier run, the "before".
        metrics: metrics compared (default: those of both runs).
        permutations: sign flips of the randomisation test.
        seed: its random seed.

    Raises:
        ConfigError: the runs share no strategy name or no metric.

    Examples:
        >>> def one(name, values):
        ...     return {"metrics": ["ndcg@10"], "strategies": [{"strategy": {"name": name},
        ...             "per_query": {str(q): {"ndcg@10": v} for q, v in enumerate(values)}}]}
        >>> c = compare_runs(one("image", [1.0, 0.5, 0.5]), one("image", [0.5, 0.5, 1.0]))
        >>> c["image"]["ndcg@10"]["wins"], c["image"]["ndcg@10"]["losses"], c["image"]["ndcg@10"]["delta"]
        (1, 1, 0.0)
    """

    def by_name(r: Mapping[str, Any], which: str) -> dict[str, dict[str, dict[str, float]]]:
        try:
            return {s["strategy"]["name"]: dict(s["per_query"]) for s in r.get("strategies", [])}
        except (KeyError, TypeError, AttributeError) as e:
            raise ConfigError(f"the {which} run is not a relevance run: strategies need a name and per_query") from e

    after_runs, before_runs = by_name(run, "later"), by_name(before, "earlier")
    names = [n for n in after_runs if n in before_runs]
    if not names:
        raise ConfigError("the two runs share no strategy name: nothing to compare")
    metrics = list(metrics or [m for m in run.get("metrics", []) if m in before.get("metrics", [])])
    if not metrics:
        raise ConfigError("the two runs share no metric: nothing to compare")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        a, b = after_runs[name], before_runs[name]
        shared = [q for q in b if q in a]
        out[name] = {}
        for m in metrics:
            after, earlier = [a[q][m] for q in shared], [b[q][m] for q in shared]
            out[name][m] = _paired(after, earlier, permutations, seed)
            out[name][m]["after_mean"] = float(np.mean(after)) if shared else 0.0
            out[name][m]["before_mean"] = float(np.mean(earlier)) if shared else 0.0
    _add_holm(out, metrics)
    return out


def evaluate(
    client: Client | Searcher,
    index: str,
    queries: Sequence[Query],
    judgments: Judgments,
    strategies: Sequence[Strategy],
    *,
    k: int = 10,
    baseline: str | None = None,
    context: Context | None = None,
    embedder: Any = None,
    permutations: int = 10_000,
    seed: int = 0,
) -> RelevanceResult:
    """Run every judged query through every strategy that applies to it, and compare them.

    A query counts when the judgments hold at least one relevant document for it. A strategy
    that returns nothing scores 0 on that query; one that fails on a query (a photo that cannot
    be read, say) has the error recorded under the query's id and the query left out of its
    figures and of its comparisons.

    Args:
        client: an ``Elasticsearch``/``OpenSearch`` client (or a :class:`~vistag.search.queries.Searcher`).
        index: the index (or alias) searched.
        queries: the query set.
        judgments: graded judgments by query id.
        strategies: what is compared.
        k: the cutoff of every metric.
        baseline: the strategy the others are compared with (default: the first).
        context: tag relations, text -> image projection and tag statistics some strategies need.
        embedder: embeds image queries (default: the network named in the index's documents).
        permutations: of the randomisation test.
        seed: of the randomisation test and the bootstrap intervals.

    Raises:
        ConfigError: no strategies, no judged query, or an unknown baseline.
    """
    if not strategies:
        raise ConfigError("no strategies to evaluate")
    searcher = client if isinstance(client, Searcher) else Searcher(client, index, embedder=embedder)
    judged = [q for q in queries if any(g > 0 for g in judgments.get(q.id, {}).values())]
    if not judged:
        raise ConfigError("no query of the set has a relevant document in the judgments")
    metrics = [f"{m}@{k}" for m in METRICS]
    results = []
    for strategy in strategies:
        result = StrategyResult(strategy)
        for query in judged:
            if not strategy.applies_to(query):
                continue
            started = time.perf_counter()
            try:
                ranked = run_strategy(searcher, strategy, query, k, context)
            except VistagError as exc:
                result.errors[query.id] = str(exc)
                logger.warning("strategy %s, query %s: %s", strategy.name, query.id, exc)
                continue
            result.latencies.append(time.perf_counter() - started)
            result.runs[query.id] = ranked
            result.per_query[query.id] = query_metrics(ranked, judgments[query.id], k)
        results.append(result)
    name = baseline or strategies[0].name
    return RelevanceResult(
        k,
        metrics,
        results,
        name,
        compare(results, name, metrics, permutations, seed),
        {
            "engine": searcher.client.label,
            "index": index,
            "queries": len(queries),
            "judged_queries": len(judged),
            "judgments": sum(len(v) for v in judgments.values()),
            "permutations": permutations,
            "seed": seed,
        },
    )


def split_queries(
    queries: Sequence[Query], tune_fraction: float = 0.5, seed: int = 0
) -> tuple[list[Query], list[Query]]:
    """Queries into a tuning part and a held-out part, by a hash of the id (stable across runs).

    Examples:
        >>> a, b = split_queries([Query(str(i), "x") for i in range(100)])
        >>> len(a) + len(b), 35 < len(a) < 65
        (100, True)
    """
    tune: list[Query] = []
    held: list[Query] = []
    for q in queries:
        h = int.from_bytes(hashlib.sha256(f"{seed}:{q.id}".encode()).digest()[:8], "big") / 2**64
        (tune if h < tune_fraction else held).append(q)
    return tune, held


#: Default weight grid of :func:`tune`: BM25 at 1, tags and text -> image (``image``) at 0 to 3.
WEIGHT_GRID = [
    {"text": 1.0, "tags": t, "image": i} for t in (0.0, 0.5, 1.0, 2.0, 3.0) for i in (0.0, 0.5, 1.0, 2.0, 3.0)
]


@dataclass
class TuneResult:
    """What :func:`tune` chose and how it did on the queries it never saw.

    Attributes:
        weights: the chosen weights.
        tuned_on: query ids the weights were chosen on.
        tuning_score: their mean ``metric`` with those weights.
        grid: every weighting tried with its tuning score.
        held_out: the given strategy and the tuned one on the held-out queries (with significance).
    """

    weights: dict[str, float]
    tuned_on: list[str]
    tuning_score: float
    grid: list[dict[str, Any]]
    held_out: RelevanceResult


def tune(
    client: Client | Searcher,
    index: str,
    queries: Sequence[Query],
    judgments: Judgments,
    strategy: Strategy,
    *,
    grid: Sequence[Mapping[str, float]] = WEIGHT_GRID,
    metric: str = "ndcg",
    k: int = 10,
    tune_fraction: float = 0.5,
    context: Context | None = None,
    seed: int = 0,
) -> TuneResult:
    """Choose a fusion's weights on part of the queries and report them on the rest, never the same queries.

    Args:
        client: the client (or a searcher).
        index: the index searched.
        queries: the query set (split by :func:`split_queries`).
        judgments: graded judgments.
        strategy: a ``hybrid`` strategy; its ``params.weights`` are what is tuned.
        grid: the weightings tried.
        metric: the metric stem maximised (``ndcg``, ``recall``, ``capped_recall``, ``precision``, ``mrr``).
        k: the cutoff.
        tune_fraction: share of the queries the weights are chosen on.
        context: what the strategy needs (relations, projection, tag statistics).
        seed: salts the split.

    Raises:
        ConfigError: not a hybrid strategy, or a split that leaves one side empty.
    """
    if strategy.kind != "hybrid":
        raise ConfigError(f"tune chooses a hybrid's weights; {strategy.name!r} is a {strategy.kind} strategy")
    tuning, held = split_queries(queries, tune_fraction, seed)
    if not tuning or not held:
        raise ConfigError(f"{len(queries)} queries split into {len(tuning)} to tune and {len(held)} to report on")
    searcher = client if isinstance(client, Searcher) else Searcher(client, index)
    name = f"{metric}@{k}"
    scores: list[dict[str, Any]] = []
    for weights in grid:
        candidate = replace(strategy, params={**strategy.params, "weights": dict(weights)})
        run = evaluate(searcher, index, tuning, judgments, [candidate], k=k, context=context, permutations=1)
        v = run.strategies[0].per_query.values()
        scores.append({"weights": dict(weights), "score": float(np.mean([pq[name] for pq in v])) if v else 0.0})
    best = max(scores, key=lambda s: float(s["score"]))
    tuned = replace(strategy, name=f"{strategy.name} (tuned)", params={**strategy.params, "weights": best["weights"]})
    held_out = evaluate(searcher, index, held, judgments, [strategy, tuned], k=k, context=context, seed=seed)
    return TuneResult(best["weights"], [q.id for q in tuning], best["score"], scores, held_out)
