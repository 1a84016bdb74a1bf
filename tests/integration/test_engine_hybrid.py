"""Hybrid search fused inside OpenSearch (neural-search search pipelines) against vistag's
client-side fusion on the same queries, and the one-call stored template a storefront uses."""

from __future__ import annotations

import pytest
import requests

from vistag.cli.main import main
from vistag.documents.strategies import hybrid
from vistag.errors import ConfigError
from vistag.search import Searcher

NO_FUSION = (
    "the Elasticsearch integ-test distribution has neither neural-search nor the rrf module: "
    "hybrid queries are fused client-side there"
)


@pytest.fixture
def indexed(node, small_catalog, tmp_path, capsys):
    catalog, images, rows = small_catalog
    assert (
        main(
            [
                "-q",
                "index",
                "--url",
                node.url,
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--dead-letter",
                str(tmp_path / "dl.jsonl"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    client = node.client()
    queries = []
    for row in rows[:10]:
        src = client.get_source("products", row["id"], ["image_vector", "tag_weights", "title"])
        queries.append(
            (" ".join(src["title"].split()[:2]), dict(list(src["tag_weights"].items())[:2]), src["image_vector"])
        )
    return Searcher(client, "products"), queries


def test_engine_rrf_equals_client_rrf_and_the_stored_template(node, indexed):
    searcher, queries = indexed
    if node.engine == "elasticsearch":
        assert searcher.fusion_site("rrf") == "client"
        with pytest.raises(ConfigError, match="cannot fuse"):
            searcher.hybrid(*queries[0], where="engine")
        pytest.skip(NO_FUSION)
    assert searcher.fusion_site("rrf") == "engine" and searcher.fusion_site("rrf", {"text": 2}) == "client"
    for text, tags, vector in queries:
        engine = searcher.hybrid(text, tags, vector, size=10, where="engine")
        client = searcher.hybrid(text, tags, vector, size=10, where="client")
        # Every list is complete (60 documents, a window of 100), so the ranks and RRF scores agree exactly.
        assert [h.id for h in engine] == [h.id for h in client], text
        assert [h.score for h in engine] == pytest.approx([h.score for h in client], abs=1e-6)
        stored = searcher.run_hybrid_template(hybrid.params(text, tags, vector, size=10))
        assert [h.id for h in stored] == [h.id for h in engine]
        # Weighted min-max: the engine normalises each sub-query's own hits, as the client does; top 3 agree.
        weighted_e = searcher.hybrid(text, tags, vector, size=10, fusion="weighted", where="engine")
        weighted_c = searcher.hybrid(text, tags, vector, size=10, fusion="weighted", where="client")
        assert [h.id for h in weighted_e][:3] == [h.id for h in weighted_c][:3]


def test_a_plain_hybrid_query_is_fused_by_the_index_default_pipeline(node, indexed):
    """A storefront that sends a hybrid query by hand, without a pipeline, still gets RRF
    (without one OpenSearch answers HTTP 200 with meaningless scores)."""
    searcher, queries = indexed
    if node.engine == "elasticsearch":
        pytest.skip(NO_FUSION)
    settings = requests.get(f"{node.url}/products/_settings", timeout=10).json()
    index_settings = next(iter(settings.values()))["settings"]["index"]
    assert index_settings["search"]["default_pipeline"] == "vistag-hybrid-rrf"
    text, tags, vector = queries[0]
    body = searcher.body(hybrid, hybrid.params(text, tags, vector, size=10))
    raw = requests.post(f"{node.url}/products/_search", json=body, timeout=30).json()["hits"]["hits"]
    fused = searcher.hybrid(text, tags, vector, size=10, where="client")
    assert [h["_id"] for h in raw] == [h.id for h in fused]
    assert len({h["_id"] for h in raw}) == len(raw)  # no duplicate hits
    assert max(h["_score"] for h in raw) <= 3 / 61 + 1e-9  # RRF scores: at most one 1/(60+1) per list


def test_cli_says_where_it_fused(node, indexed, capsys):
    _, queries = indexed
    text, tags, _ = queries[1]
    args = ["search", "--url", node.url, "--query", text, "--tags", *tags, "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    expected = "inside the engine" if node.engine == "opensearch" else "client-side (this cluster cannot fuse it)"
    assert f"fusion: rrf, {expected}" in captured.err
    assert main([*args, "--fusion-site", "client"]) == 0
    assert "fusion: rrf, client-side" in capsys.readouterr().err


def test_the_engine_hybrid_with_a_known_item_pin_is_one_round_trip(node, indexed, monkeypatch):
    """With the known-item pin, BM25's two best ride in the same _msearch as the engine's hybrid
    request (its answer carries only fused scores), and the result equals client-side fusion + pin."""
    from vistag.search.queries import PIN_RATIO

    searcher, queries = indexed
    if node.engine == "elasticsearch":
        pytest.skip(NO_FUSION)
    calls: list[str] = []
    for name in ("search", "msearch"):
        original = getattr(searcher.client, name)
        monkeypatch.setattr(
            searcher.client, name, lambda *a, _call=original, _name=name, **k: (calls.append(_name), _call(*a, **k))[1]
        )
    full_title = searcher.keyword(queries[3][0], size=1)[0].title
    moved = 0
    for text, tags, vector in [*queries, (full_title, queries[3][1], queries[3][2])]:
        calls.clear()
        engine = searcher.hybrid(text, tags, vector, size=5, offset=1, where="engine", pin_ratio=PIN_RATIO)
        assert calls == ["msearch"], text
        client = searcher.hybrid(text, tags, vector, size=5, offset=1, where="client", pin_ratio=PIN_RATIO)
        assert [h.id for h in engine] == [h.id for h in client], text
        unpinned = searcher.hybrid(text, tags, vector, size=5, offset=1, where="engine")
        moved += [h.id for h in unpinned] != [h.id for h in engine]
    assert moved, "the pin must move a hit for some query (the full title at least)"
