"""Index a real slice with the default model, then check it with a plain HTTP client."""

from __future__ import annotations

import itertools
import json

import pytest
import requests

from vistag.cli.main import main
from vistag.documents.strategies import image, keyword, tags
from vistag.search import Searcher


def _index(url, catalog, images, tmp_path, *extra) -> int:
    return main(
        [
            "-q",
            "index",
            "--url",
            url,
            "--catalog",
            str(catalog),
            "--images",
            str(images),
            "--dead-letter",
            str(tmp_path / "dl.jsonl"),
            *extra,
        ]
    )


@pytest.fixture
def indexed(node, client, small_catalog, tmp_path):
    catalog, images, rows = small_catalog
    assert _index(node.url, catalog, images, tmp_path) == 0
    return rows


def test_raw_http_sees_vectors_features_and_answers(node, client, indexed, capsys):
    url = node.url
    assert requests.get(f"{url}/products/_count", timeout=10).json()["count"] == len(indexed)
    props = requests.get(f"{url}/products/_mapping", timeout=10).json()["products"]["mappings"]["properties"]
    if node.engine == "elasticsearch":
        assert props["image_vector"]["type"] == "dense_vector"
        assert props["image_vector"]["dims"] == 1840 and props["image_vector"]["index"] is True
        assert props["image_vector"]["index_options"]["type"] == "hnsw"
    else:
        assert props["image_vector"]["type"] == "knn_vector" and props["image_vector"]["dimension"] == 1840
        assert props["image_vector"]["method"]["engine"] == "lucene"
    expected_features = "rank_features" if client.info().has("mapper-extras") else "sparse_vector"
    assert props["tag_weights"]["type"] == expected_features

    # A product is its own nearest neighbour (raw kNN query, no vistag code).
    for row in indexed[:5]:
        doc = requests.get(f"{url}/products/_doc/{row['id']}", timeout=10).json()["_source"]
        vector = doc["image_vector"]
        if node.engine == "elasticsearch":
            body = {"knn": {"field": "image_vector", "query_vector": vector, "k": 3, "num_candidates": 50}}
        else:
            body = {"query": {"knn": {"image_vector": {"vector": vector, "k": 3}}}}
        hits = requests.post(f"{url}/products/_search", json=body, timeout=10).json()["hits"]["hits"]
        assert hits[0]["_id"] == row["id"]

    # Products ordered by tag weight (raw feature query).
    if expected_features == "rank_features":
        body = {"size": 100, "query": {"rank_feature": {"field": "tag_weights.tshirts", "linear": {}}}}
    else:
        body = {"size": 100, "query": {"sparse_vector": {"field": "tag_weights", "query_vector": {"tshirts": 1.0}}}}
    hits = requests.post(f"{url}/products/_search", json=body, timeout=10).json()["hits"]["hits"]
    assert hits, "some products are tagged tshirts"
    weights = [h["_source"]["tag_weights"]["tshirts"] for h in hits]
    # Lucene feature fields keep 9 significant bits: order holds up to that precision.
    assert all(b <= a * (1 + 2**-8) for a, b in itertools.pairwise(weights))
    assert [h["_score"] for h in hits] == pytest.approx(weights, rel=1e-2)


def _cases(node, indexed) -> dict:
    doc = requests.get(f"{node.url}/products/_doc/{indexed[0]['id']}", timeout=10).json()["_source"]
    return {
        keyword: keyword.params("men shirt", size=5),
        tags: tags.params({"tshirts": 1.0, "casual": 0.5}, size=5, attributes={"gender": "Men"}),
        image: image.params(doc["image_vector"], k=5),
    }


def test_stored_templates_answer_as_the_rendered_queries(node, client, indexed):
    searcher = Searcher(client, "products")
    if not searcher.adapter.search_templates:
        pytest.skip(f"{node.engine} {node.dist.version}'s integ-test zip has no lang-mustache: no stored templates")
    for strategy, params in _cases(node, indexed).items():
        hits = searcher.run(strategy, params)
        stored = searcher.run_stored_template(strategy, params)
        assert hits, strategy.NAME
        assert [h.id for h in stored] == [h.id for h in hits]
        assert [h.score for h in stored] == pytest.approx([h.score for h in hits])


def test_cli_queries_and_the_python_api_agree(node, client, indexed, capsys):
    searcher = Searcher(client, "products")
    cases = _cases(node, indexed)
    for strategy, params in cases.items():
        assert searcher.run(strategy, params), strategy.NAME
    # The CLI prints the same ids as the Python API.
    capsys.readouterr()
    assert (
        main(
            [
                "search",
                "--url",
                node.url,
                "--tags",
                "tshirts",
                "casual:0.5",
                "--filter",
                "gender=Men",
                "--k",
                "5",
                "--no-expand",
                "--json",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert [h["id"] for h in printed] == [h.id for h in searcher.run(tags, cases[tags])]


def test_filters_apply_inside_knn(node, client, indexed):
    searcher = Searcher(client, "products", 1840)
    doc = requests.get(f"{node.url}/products/_doc/{indexed[0]['id']}", timeout=10).json()["_source"]
    other = "Women" if doc["attributes"].get("gender") != "Women" else "Men"
    hits = searcher.image(doc["image_vector"], k=5, attributes={"gender": other})
    assert hits and all(h.source["attributes"]["gender"] == other for h in hits)
    assert len(hits) == min(5, sum(1 for r in indexed if r["gender"] == other))
    roots = searcher.keyword("men", size=50, category=doc["category"]["lvl0"])
    assert roots and all(h.source["category"]["lvl0"] == doc["category"]["lvl0"] for h in roots)


def test_int8_quantized_vectors_answer_image_queries(node, client, small_catalog, tmp_path):
    catalog, images, rows = small_catalog
    assert _index(node.url, catalog, images, tmp_path, "--index", "products-q", "--vector-quantization", "int8") == 0
    mapping = requests.get(f"{node.url}/products-q/_mapping", timeout=10).json()["products-q"]["mappings"]
    vector = mapping["properties"]["image_vector"]
    if node.engine == "elasticsearch":
        assert vector["index_options"]["type"] == "int8_hnsw"
    else:
        assert vector["method"]["parameters"]["encoder"]["name"] == "sq"
    assert mapping["_meta"]["vector_quantization"] == "int8"
    searcher = Searcher(client, "products-q", 1840)
    for row in rows[:5]:
        doc = requests.get(f"{node.url}/products-q/_doc/{row['id']}", timeout=10).json()["_source"]
        hits = searcher.image(doc["image_vector"], k=3)
        assert hits[0].id == row["id"]  # a product is still its own nearest neighbour
