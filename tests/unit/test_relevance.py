"""vistag.relevance without an engine: metrics against hand-computed cases and ranx, judgments from files, labels
and a hand-made click log, the significance tests and their correction, query sets, strategies, the report."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from vistag.errors import ConfigError, NotFoundError
from vistag.relevance.evaluate import StrategyResult, compare, compare_runs, split_queries
from vistag.relevance.judgments import (
    from_clicks,
    from_labels,
    parse_qrels,
    read_click_log,
    read_judgments,
    write_qrels,
)
from vistag.relevance.queries import Query, parse_queries, read_queries, sample_queries
from vistag.relevance.report import comparison_markdown, markdown, plot
from vistag.relevance.stats import (
    bootstrap_ci,
    holm,
    paired_t_test,
    query_metrics,
    randomisation_test,
    wins_ties_losses,
)
from vistag.relevance.strategies import Strategy, parse_strategies


def test_metrics_of_a_hand_worked_graded_case():
    # judged: a=3, b=1, c=0 (judged not relevant), d=2 (not retrieved); ranked: c, a, x, b
    judged = {"a": 3, "b": 1, "c": 0, "d": 2}
    m = query_metrics(["c", "a", "x", "b"], judged, k=4)
    dcg = 3 / math.log2(3) + 1 / math.log2(5)  # a at rank 2, b at rank 4
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@4"] == pytest.approx(dcg / ideal)
    assert m["recall@4"] == pytest.approx(2 / 3)  # a and b of the three relevant a, b, d
    assert m["capped_recall@4"] == pytest.approx(2 / 3)  # min(4, 3) = 3
    assert m["precision@4"] == pytest.approx(2 / 4)
    assert m["mrr@4"] == pytest.approx(1 / 2)
    m2 = query_metrics(["c", "a", "x", "b"], judged, k=1)
    assert m2 == {"ndcg@1": 0.0, "recall@1": 0.0, "capped_recall@1": 0.0, "precision@1": 0.0, "mrr@1": 0.0}


def test_metrics_equal_ranx_on_random_runs():
    ranx = pytest.importorskip("ranx")
    rng = random.Random(7)
    qrels, run, ours = {}, {}, {}
    for q in range(40):
        docs = [f"d{i}" for i in range(30)]
        judged = {d: rng.choice([0, 0, 1, 2, 3]) for d in rng.sample(docs, 12)}
        if not any(judged.values()):
            judged["d0"] = 1
        ranked = rng.sample(docs, 15)
        qrels[f"q{q}"] = judged
        run[f"q{q}"] = {d: float(15 - i) for i, d in enumerate(ranked)}
        ours[f"q{q}"] = query_metrics(ranked, judged, k=10)
    names = {"ndcg@10": "ndcg@10", "recall@10": "recall@10", "precision@10": "precision@10", "mrr@10": "mrr@10"}
    scores = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), list(names.values()), return_mean=False)
    for ours_name, ranx_name in names.items():
        theirs = np.asarray(scores[ranx_name])
        mine = np.asarray([ours[q][ours_name] for q in sorted(ours)])  # ranx orders queries by id
        assert np.allclose(mine, theirs, atol=1e-9), ours_name


def test_qrels_csv_json_round_trips_and_errors_name_the_line(tmp_path):
    judgments = {"q1": {"d1": 2, "d2": 0}, "q2": {"d9": 1}}
    assert read_judgments(write_qrels(judgments, tmp_path / "j.qrels")) == judgments
    (tmp_path / "j.csv").write_text("query_id,doc_id,grade\nq1,d1,2\nq1,d2,0\nq2,d9,1\n")
    assert read_judgments(tmp_path / "j.csv") == judgments
    (tmp_path / "j.json").write_text(json.dumps(judgments))
    assert read_judgments(tmp_path / "j.json") == judgments
    (tmp_path / "rows.json").write_text(json.dumps([{"query_id": "q2", "doc_id": "d9", "grade": 1}]))
    assert read_judgments(tmp_path / "rows.json") == {"q2": {"d9": 1}}
    with pytest.raises(ConfigError, match="line 2"):
        parse_qrels("q1 0 d1 1\nq1 d2 1\n")
    with pytest.raises(ConfigError, match="row 1.*grade 'x'"):
        (tmp_path / "bad.csv").write_text("query_id,doc_id,grade\nq1,d1,x\n")
        read_judgments(tmp_path / "bad.csv")
    with pytest.raises(NotFoundError):
        read_judgments(tmp_path / "missing.qrels")


def test_judgments_from_labels_leave_the_query_product_out():
    rows = [
        {"id": "1", "articleType": "Tshirts", "baseColour": "Red"},
        {"id": "2", "articleType": "Tshirts", "baseColour": "Blue"},
        {"id": "3", "articleType": "Tshirts", "baseColour": "Red"},
        {"id": "4", "articleType": "Shoes", "baseColour": "Red"},
    ]
    assert from_labels(rows, {"q": "1"}, ["articleType"]) == {"q": {"2": 1, "3": 1}}
    assert from_labels(rows, {"q": "1"}, ["articleType", "baseColour"]) == {"q": {"3": 1}}
    with pytest.raises(ConfigError, match="product '9'"):
        from_labels(rows, {"q": "9"}, ["articleType"])


def test_click_log_grades_by_clicks_over_expected_clicks(tmp_path):
    # Two sessions of query "red dress", one of "shoes"; position CTRs over the whole log:
    # pos 1: 3 shown, 2 clicked -> 2/3; pos 2: 3 shown, 1 clicked -> 1/3; pos 3: 3 shown, 1 clicked -> 1/3
    log = [
        ("red dress", "a", 1, 1), ("red dress", "b", 2, 0), ("red dress", "c", 3, 1),
        ("red dress", "a", 1, 0), ("red dress", "c", 2, 1), ("red dress", "b", 3, 0),
        ("shoes", "s", 1, 1), ("shoes", "t", 2, 0), ("shoes", "u", 3, 0),
    ]  # fmt: skip
    rows = [{"query": q, "doc_id": d, "position": p, "clicked": c} for q, d, p, c in log]
    judged = from_clicks(rows)
    # a: 1 click / (2/3 + 2/3) = 0.75 -> grade 1; c: 2 clicks / (1/3 + 1/3) = 3.0 -> grade 3;
    # b: no click -> 0; s: 1 / (2/3) = 1.5 -> grade 2; t, u: 0
    assert judged == {"red dress": {"a": 1, "b": 0, "c": 3}, "shoes": {"s": 2, "t": 0, "u": 0}}
    # keyed by a query set's ids (the other queries' rows still count in the positions' rates);
    # a pair shown fewer than min_impressions times is not judged
    assert from_clicks(rows, {"red dress": "q1"}) == {"q1": {"a": 1, "b": 0, "c": 3}}
    assert from_clicks(rows, {"shoes": "q2"}, min_impressions=2) == {}
    path = tmp_path / "clicks.csv"
    path.write_text("query,doc_id,position,clicked\n" + "".join(f"{q},{d},{p},{c}\n" for q, d, p, c in log))
    assert read_click_log(path) == judged
    with pytest.raises(ConfigError, match="row 1: position 0"):
        from_clicks([{"query": "q", "doc_id": "a", "position": 0, "clicked": 1}])
    with pytest.raises(ConfigError, match="row 1: needs"):
        from_clicks([{"query": "q", "doc_id": "a"}])


def test_randomisation_test_exact_and_sampled():
    # four differences of +0.1: only the all-plus and all-minus sign patterns are as extreme -> 2/16
    assert randomisation_test([0.1, 0.2, 0.3, 0.4], [0.0, 0.1, 0.2, 0.3]) == pytest.approx(0.125)
    assert randomisation_test([0.5, 0.5], [0.5, 0.5]) == 1.0
    rng = np.random.default_rng(0)
    base = rng.random(200)
    better = np.clip(base + 0.1 + rng.normal(0, 0.05, 200), 0, 1)
    same = base + rng.normal(0, 0.05, 200)
    assert randomisation_test(better, base, 2000) < 0.001
    assert randomisation_test(same, base, 2000) > 0.05
    with pytest.raises(ValueError, match="same queries"):
        randomisation_test([1.0, 2.0], [1.0])


def test_t_test_holm_wins_and_bootstrap():
    assert paired_t_test([0.5, 0.6, 0.7, 0.9], [0.4, 0.5, 0.5, 0.6]) == pytest.approx(0.0354, abs=1e-4)
    assert paired_t_test([1, 1], [1, 1]) == 1.0
    # Holm: sorted p 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert wins_ties_losses([1, 0.5, 0, 0.2], [0.5, 0.5, 1, 0.1]) == (2, 1, 1)
    lo, hi = bootstrap_ci(list(np.linspace(0, 1, 101)))
    assert lo < 0.5 < hi and hi - lo < 0.2


def _result(name: str, values: dict[str, float]) -> StrategyResult:
    r = StrategyResult(Strategy(name, "keyword"))
    r.per_query = {q: {"ndcg@10": v} for q, v in values.items()}
    r.latencies = [0.001 * (i + 1) for i in range(len(values))]
    return r


def test_compare_against_a_baseline_on_shared_queries():
    base = _result("bm25", {f"q{i}": 0.2 for i in range(30)})
    better = _result("hybrid", {f"q{i}": 0.2 + (0.3 if i % 3 else 0.0) for i in range(30)})
    partial = _result("image", {f"q{i}": 0.2 for i in range(10)})  # answered 10 queries only
    out = compare([base, better, partial], "bm25", ["ndcg@10"], permutations=2000)
    h = out["hybrid"]["ndcg@10"]
    assert (h["wins"], h["ties"], h["losses"]) == (20, 10, 0) and h["delta"] == pytest.approx(0.2)
    assert h["p"] < 0.001 and h["p_holm"] >= h["p"]
    assert out["image"]["ndcg@10"]["queries"] == 10 and out["image"]["ndcg@10"]["p"] == 1.0
    with pytest.raises(ConfigError, match="baseline 'nope'"):
        compare([base], "nope", ["ndcg@10"])


def _run(*results: StrategyResult) -> dict:
    return {
        "metrics": ["ndcg@10"],
        "strategies": [{"strategy": r.strategy.to_dict(), "per_query": r.per_query} for r in results],
    }


def test_compare_runs_pairs_each_strategy_with_its_namesake_query_by_query(tmp_path, capsys):
    before = _run(
        _result("image", {f"q{i}": 0.4 for i in range(30)}), _result("bm25", {f"q{i}": 0.5 for i in range(30)})
    )
    # after a change: image answers 25 queries and is better on 16 of them, bm25 unchanged; "new" (only one run has it) is left out
    after = _run(
        _result("bm25", {f"q{i}": 0.5 for i in range(30)}),
        _result("image", {f"q{i}": 0.4 + (0.3 if i % 3 else 0.0) for i in range(25)}),  # answered 25 queries
        _result("new", {f"q{i}": 1.0 for i in range(30)}),
    )
    out = compare_runs(after, before, permutations=2000)
    assert set(out) == {"bm25", "image"}
    i = out["image"]["ndcg@10"]
    assert i["queries"] == 25 and (i["wins"], i["ties"], i["losses"]) == (16, 9, 0)
    assert i["before_mean"] == pytest.approx(0.4) and i["after_mean"] == pytest.approx(0.4 + 0.3 * 16 / 25)
    assert i["p"] < 0.001 and i["p_holm"] >= i["p"] and out["bm25"]["ndcg@10"]["p"] == 1.0
    swapped = compare_runs(before, after, permutations=2000)["image"]["ndcg@10"]  # the direction is the runs' order
    assert swapped["delta"] == pytest.approx(-i["delta"]) and swapped["losses"] == 16
    text = comparison_markdown(out, 2000)
    assert "| image | 25 | 0.400 -> 0.592; +0.192, 16/9/0, p 0.0" in text and "2000 sign flips" in text
    with pytest.raises(ConfigError, match="no strategy name"):
        compare_runs(_run(_result("x", {"q": 1.0})), before)
    with pytest.raises(ConfigError, match="no metric"):
        compare_runs({**after, "metrics": ["mrr@10"]}, before)
    with pytest.raises(ConfigError, match="earlier run is not a relevance run"):
        compare_runs(after, {"strategies": [{"name": "image"}]})
    from vistag.cli.main import main

    (tmp_path / "after.json").write_text(json.dumps(after))
    (tmp_path / "before.json").write_text(json.dumps(before))
    argv = [
        "-q",
        "relevance",
        "report",
        "--run",
        str(tmp_path / "after.json"),
        "--against",
        str(tmp_path / "before.json"),
    ]
    assert main([*argv, "--permutations", "2000", "--out", str(tmp_path / "ab")]) == 0
    written = json.loads((tmp_path / "ab" / "comparison.json").read_text())
    assert written["comparisons"]["image"]["ndcg@10"]["wins"] == 16 and written["info"]["permutations"] == 2000
    assert "| image | 25 | 0.400 -> 0.592" in (tmp_path / "ab" / "comparison.md").read_text()
    capsys.readouterr()


def test_queries_files_and_errors(tmp_path):
    (tmp_path / "q.csv").write_text("id,text,image\nq1,red dress,\nq2,,photo.jpg\n")
    queries = read_queries(tmp_path / "q.csv")
    assert queries[0] == Query("q1", "red dress") and queries[1].image == str(tmp_path / "photo.jpg")
    (tmp_path / "q.jsonl").write_text('{"id": "a", "query": "shoes"}\n')
    assert read_queries(tmp_path / "q.jsonl")[0].text == "shoes"
    with pytest.raises(ConfigError, match="query 2: no id"):
        parse_queries([{"id": "a", "text": "x"}, {"text": "y"}])
    with pytest.raises(ConfigError, match="'a': the id is used twice"):
        parse_queries([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])
    with pytest.raises(ConfigError, match="'b': no text, image or product"):
        parse_queries([{"id": "b"}])


def test_sample_queries_draws_held_out_rows_reproducibly():
    rows = [{"id": str(i), "productDisplayName": f"Brand Men Blue Shirt {i}", "split": "test" if i % 2 else ""}
            for i in range(40)]  # fmt: skip
    a = sample_queries(rows, 5, kind="text", seed=3)
    assert a == sample_queries(rows, 5, kind="text", seed=3)
    assert all(int(q.product) % 2 for q in a) and all(not q.text.startswith("Brand") for q in a)
    assert sample_queries(rows, 2, kind="title")[0].text.startswith("Brand")
    with pytest.raises(ConfigError, match="kind"):
        sample_queries(rows, 2, kind="audio")


def test_strategies_parse_and_refuse():
    s = parse_strategies(["keyword", {"name": "t", "kind": "template", "params": {"id": "products-keyword"}}])
    assert [x.kind for x in s] == ["keyword", "template"]
    assert not s[0].applies_to(Query("q", image="x.jpg")) and s[0].applies_to(Query("q", "red"))
    with pytest.raises(ConfigError, match="unknown kind 'bm42'"):
        parse_strategies(["bm42"])
    with pytest.raises(ConfigError, match="must differ"):
        parse_strategies(["keyword", "keyword"])
    with pytest.raises(ConfigError, match="params.id or params.source"):
        Strategy("t", "template")


def test_split_queries_is_stable_and_disjoint():
    queries = [Query(str(i), "x") for i in range(200)]
    a, b = split_queries(queries, 0.5, seed=1)
    assert {q.id for q in a}.isdisjoint({q.id for q in b}) and len(a) + len(b) == 200
    assert split_queries(list(reversed(queries)), 0.5, seed=1)[0] == list(reversed(a))


def test_report_markdown_and_png(tmp_path):
    base = _result("bm25", {f"q{i}": 0.2 for i in range(30)})
    better = _result("hybrid", {f"q{i}": 0.2 + (0.3 if i % 3 else -0.1) for i in range(30)})
    run = {
        "k": 10,
        "metrics": ["ndcg@10"],
        "baseline": "bm25",
        "info": {"permutations": 2000, "engine": "test", "index": "i", "queries": 30, "judged_queries": 30},
        "summary": {r.strategy.name: r.summary(["ndcg@10"]) for r in (base, better)},
        "comparisons": compare([base, better], "bm25", ["ndcg@10"], permutations=2000),
        "strategies": [{"strategy": r.strategy.to_dict(), "per_query": r.per_query} for r in (base, better)],
    }
    text = markdown(run)
    assert "| hybrid | 30 | 0.367" in text and "20/0/10" in text and "bm25 (baseline)" in text
    from PIL import Image

    with Image.open(plot(run, tmp_path / "r.png")) as im:
        assert im.width > 600 and im.height > 80
        pixels = np.asarray(im.convert("RGB"))
    assert ((pixels[:, :, 1] > 120) & (pixels[:, :, 0] < 60)).any()  # green ticks: the queries hybrid wins
    assert ((pixels[:, :, 0] > 180) & (pixels[:, :, 1] < 80)).any()  # red ticks: the queries it loses
