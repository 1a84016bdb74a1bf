"""`vistag relations build --install` and `vistag expand-tags` on a real catalog slice."""

from __future__ import annotations

import json

import pytest
import requests

from tests.conftest import write_slice
from vistag.cli.main import main


@pytest.mark.torch
def test_relations_are_built_stored_and_expanded(node, data_dir, tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    catalog, _, rows = write_slice(data_dir, tmp_path, 400, step=97)
    out = tmp_path / "rel.npz"
    assert (
        main(["-q", "relations", "build", "--catalog", str(catalog), "--out", str(out), "--install", "--url", node.url])
        == 0
    )
    assert "co-occurrence + semantic" in capsys.readouterr().out

    # A storefront reads the relations with a plain HTTP GET.
    doc = requests.get(f"{node.url}/tag_relations/_doc/tshirts", timeout=10).json()["_source"]
    assert doc["tag"] == "tshirts" and doc["count"] == sum(r["articleType"] == "Tshirts" for r in rows)
    assert "topwear" in doc["related_tags"][:5]
    first = doc["related"][0]
    assert set(first) == {"tag", "score", "cooccurrence", "semantic"} and first["score"] > 0
    related_to = requests.post(
        f"{node.url}/tag_relations/_search", json={"query": {"term": {"related_tags": "tshirts"}}}, timeout=10
    ).json()
    assert related_to["hits"]["total"]["value"] > 0

    assert main(["expand-tags", "tshirts", "men", "--relations", str(out), "--explain", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    scores = [r["score"] for r in result["recommended"]]
    assert scores == sorted(scores, reverse=True) and all(s > 0.2 for s in scores)
    assert {"tshirts", "men"}.isdisjoint(r["tag"] for r in result["recommended"])
    assert "topwear" in [r["tag"] for r in result["recommended"]][:3]
    assert set(result["recommended"][0]["because"]) == {"tshirts", "men"}

    assert main(["expand-tags", "tshirts", "--relations", str(tmp_path / "missing.npz")]) == 1
    assert "no tag relations" in capsys.readouterr().err


@pytest.mark.torch
def test_index_time_expansion_finds_related_products_below_exact_ones(client, data_dir, tmp_path, capsys):
    from vistag.search import Searcher

    catalog, images, rows = write_slice(data_dir, tmp_path, 80, step=211)
    relations = tmp_path / "rel.npz"
    assert main(["-q", "relations", "build", "--catalog", str(catalog), "--out", str(relations), "--no-semantic"]) == 0
    assert (
        main(
            [
                "-q",
                "index",
                "--url",
                client.label,
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--expand-relations",
                str(relations),
                "--expand-discount",
                "0.5",
                "--json",
                "--dead-letter",
                str(tmp_path / "dead.jsonl"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    hits = Searcher(client, "products").tags({"tshirts": 1.0}, size=80)
    exact = [h for h in hits if "tshirts" in h.source["tags"]]
    related = [h for h in hits if "tshirts" not in h.source["tags"]]
    assert exact and related, "expansion should also find products only related to tshirts"
    # A related tag weighs at most discount x 1.0: products confidently tagged tshirts rank above all of them.
    confident = [h for h in exact if h.source["tag_weights"]["tshirts"] > 0.5]
    assert confident and min(h.score for h in confident) > max(h.score for h in related)
    doc = related[0].source
    assert doc["tag_weights"]["tshirts"] <= 0.5 * max(doc["tag_weights"][t] for t in doc["tags"])
    assert doc["model"]["expansion"] == "relations x 0.5"


def test_relations_built_and_stored_from_python(client, data_dir, tmp_path):
    """The functions under `vistag relations build --install`, called from Python."""
    from vistag.analyzers.relations import build_relations
    from vistag.indexer.relations_index import write_relations

    catalog, _, _ = write_slice(data_dir, tmp_path, 120, step=89)
    relations = build_relations(catalog, schema="fashion-product-images", semantic=False)
    assert relations.semantic is None and "tshirts" in relations.vocabulary
    count = write_relations(client, relations, "rel-py")
    assert count == len(relations.vocabulary)
    client.refresh("rel-py")
    doc = client.perform("GET", "/rel-py/_doc/tshirts")["_source"]
    assert doc["tag"] == "tshirts"
    assert doc["related_tags"] == [t for t, _ in relations.related("tshirts", limit=20)]
    assert client.count("rel-py") == count
