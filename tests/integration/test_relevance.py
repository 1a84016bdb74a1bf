"""`vistag relevance` against a real node: strategies side by side on a small catalog, the CLI's report, a stored
template as a strategy, and the engine's own `_rank_eval` agreeing with vistag's metrics where the engine has it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from vistag.cli.main import main
from vistag.relevance.evaluate import evaluate
from vistag.relevance.judgments import from_labels
from vistag.relevance.queries import sample_queries, write_queries
from vistag.relevance.rank_eval import has_rank_eval, rank_eval
from vistag.relevance.strategies import parse_strategies
from vistag.search import Searcher

pytest.importorskip("torch")
pytestmark = pytest.mark.torch


@pytest.fixture
def indexed(node, small_catalog, tmp_path):
    catalog, images, rows = small_catalog
    argv = ["-q", "index", "--url", node.url, "--catalog", str(catalog), "--images", str(images)]
    assert main([*argv, "--dead-letter", str(tmp_path / "dead.jsonl")]) == 0
    queries = sample_queries(rows, 12, kind="title", seed=1, split_column=None)
    judgments = from_labels(rows, {q.id: q.product for q in queries}, ["articleType"])
    return node, catalog, rows, queries, judgments


def test_strategies_side_by_side_with_significance(indexed):
    node, _, _, queries, judgments = indexed
    client = node.client()
    try:
        strategies = parse_strategies(["keyword", "image", "hybrid"])
        result = evaluate(client, "products", queries, judgments, strategies, permutations=500)
    finally:
        client.close()
    judged = [q for q in queries if any(judgments[q.id].values())]
    keyword = result.by_name("keyword")
    assert set(keyword.per_query) == {q.id for q in judged} and not keyword.errors
    assert all(q.product not in keyword.runs[q.id] for q in judged)  # a query never finds its own product
    # full titles name the type: BM25 ranks same-type products first; the photo's neighbours share its type too
    assert result.by_name("keyword").summary(result.metrics)["ndcg@10"]["mean"] > 0.4
    assert result.by_name("image").summary(result.metrics)["capped_recall@10"]["mean"] > 0.3
    c = result.comparisons["image"]["ndcg@10"]
    assert c["wins"] + c["ties"] + c["losses"] == len(judged) and 0 < c["p"] <= 1 and c["p_holm"] >= c["p"]
    assert len(keyword.latencies) == len(judged) and all(t > 0 for t in keyword.latencies)


def test_cli_run_writes_the_report_and_report_renders_it_again(indexed, tmp_path, capsys):
    node, catalog, _, queries, _ = indexed
    path = write_queries(queries, tmp_path / "queries.jsonl")
    out = tmp_path / "report"
    argv = ["-q", "relevance", "run", "--url", node.url, "--queries", str(path), "--judge-by", "articleType"]
    assert (
        main([*argv, "--catalog", str(catalog), "--strategy", "keyword", "--strategy", "image", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "| image | " in printed and "keyword (baseline)" in printed
    run = json.loads((out / "relevance.json").read_text())
    assert run["baseline"] == "keyword" and set(run["summary"]) == {"keyword", "image"}
    assert (out / "relevance.png").stat().st_size > 1000
    again = tmp_path / "again"
    assert main(["-q", "relevance", "report", "--run", str(out / "relevance.json"), "--out", str(again)]) == 0
    assert (again / "relevance.md").read_text() == (out / "relevance.md").read_text()
    capsys.readouterr()
    assert main([*argv[:-2], "--judgments", str(tmp_path / "none.qrels"), "--strategy", "keyword"]) == 1
    assert "none.qrels does not exist" in capsys.readouterr().err


def test_a_stored_template_is_a_strategy_equal_to_vistags_own_query(indexed):
    node, _, _, queries, judgments = indexed
    client = node.client()
    try:
        searcher = Searcher(client, "products")
        if not searcher.adapter.search_templates:
            pytest.skip(f"{client.label} has no lang-mustache module: no stored search templates to run")
        template = {"name": "stored", "kind": "template", "params": {"id": "products-keyword"}}
        template["params"]["params"] = {"query": "{text}", "size": "{k}", "from": 0}
        result = evaluate(searcher, "products", queries, judgments, parse_strategies(["keyword", template]))
    finally:
        client.close()
    assert result.by_name("stored").runs == result.by_name("keyword").runs


def test_rank_eval_agrees_with_vistags_metrics(indexed):
    node, _, _, queries, judgments = indexed
    client = node.client()
    try:
        searcher = Searcher(client, "products")
        if not has_rank_eval(searcher):
            pytest.skip(f"{client.label} has no rank-eval module: _rank_eval is not available there")
        ours = evaluate(searcher, "products", queries, judgments, parse_strategies(["keyword"]))
        for metric in ("ndcg", "recall", "precision", "mrr"):
            theirs = rank_eval(searcher, queries, judgments, parse_strategies(["keyword"])[0], metric, 10)
            mine = {q: v[f"{metric}@10"] for q, v in ours.by_name("keyword").per_query.items()}
            assert set(theirs) >= set(mine)
            for q, value in mine.items():
                assert theirs[q] == pytest.approx(value, abs=1e-6), (metric, q)
    finally:
        client.close()


def test_tune_chooses_weights_on_some_queries_and_reports_on_the_others(indexed):
    from vistag.analyzers.relations import TagRelations
    from vistag.catalog.schema import CatalogSchema
    from vistag.catalog.vocabulary import tags_from_labels
    from vistag.relevance.evaluate import split_queries, tune
    from vistag.relevance.strategies import Context

    node, _, rows, queries, judgments = indexed
    relations = TagRelations.fit([tags_from_labels(r, CatalogSchema.bundled().tags) for r in rows])
    context = Context(relations, None, relations.document_frequency(), len(rows))
    grid = [{"text": 1.0, "tags": 0.0}, {"text": 0.0, "tags": 1.0}]
    hybrid = parse_strategies([{"name": "hybrid", "kind": "hybrid", "params": {"where": "client"}}])[0]
    client = node.client()
    try:
        searcher = Searcher(client, "products")
        result = tune(searcher, "products", queries, judgments, hybrid, grid=grid, context=context, seed=3)
        tuning, held = split_queries(queries, 0.5, seed=3)
        assert result.tuned_on == [q.id for q in tuning]
        assert set(result.held_out.by_name("hybrid").per_query) <= {q.id for q in held}  # never the tuning queries
        assert result.weights in grid and len(result.grid) == 2
        # the weights reach the fusion: text alone and tags alone rank differently
        text_only = replace(hybrid, name="t", params={"where": "client", "weights": grid[0]})
        tags_only = replace(hybrid, name="g", params={"where": "client", "weights": grid[1]})
        runs = evaluate(searcher, "products", queries, judgments, [text_only, tags_only], context=context)
        assert runs.by_name("t").runs != runs.by_name("g").runs
    finally:
        client.close()
