"""Similar products, hybrid fused queries and query-time expansion against both engines."""

from __future__ import annotations

import json

import pytest
import requests

from vistag.cli.main import main
from vistag.config import ConnectionSettings
from vistag.documents import DocumentSpec, install_search_templates
from vistag.documents.strategies import similar
from vistag.engine.connect import connect
from vistag.search import Searcher
from vistag.search.fusion import FUSIONS, rrf


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
                "--json",
                "--dead-letter",
                str(tmp_path / "dead.jsonl"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    return node, rows


def test_similar_products_exclude_the_product_and_match_the_cli(indexed, capsys):
    node, rows = indexed
    client = connect(ConnectionSettings(urls=(node.url,)))
    searcher = Searcher(client, "products")
    target = rows[3]
    hits = searcher.similar(target["id"], k=5)
    assert len(hits) == 5 and target["id"] not in [h.id for h in hits]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    filtered = searcher.similar(target["id"], k=5, attributes={"gender": "Women"})
    assert filtered and all(h.source["attributes"]["gender"] == "Women" for h in filtered)

    assert main(["search", "--url", node.url, "--similar", target["id"], "--k", "5", "--json"]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)] == [h.id for h in hits]
    assert main(["search", "--url", node.url, "--similar", "no-such-id"]) == 1
    assert "not in 'products'" in capsys.readouterr().err


def test_stored_similar_template_gives_the_same_hits_as_the_cli(indexed):
    node, rows = indexed
    client = connect(ConnectionSettings(urls=(node.url,)))
    searcher = Searcher(client, "products")
    if not searcher.adapter.search_templates:
        pytest.skip("the Elasticsearch integ-test zip has no lang-mustache module: templates cannot be stored")
    target = rows[3]
    install_search_templates(client, DocumentSpec(name="products", vector_dim=1840))
    src = client.get_source("products", target["id"])
    params = similar.params(target["id"], src["image_vector"], src["tag_weights"], k=5)
    resp = requests.post(
        f"{node.url}/products/_search/template",  # a storefront's plain HTTP call
        json={"id": "products-similar", "params": params},
        timeout=10,
    ).json()
    assert [h["_id"] for h in resp["hits"]["hits"]] == [h.id for h in searcher.similar(target["id"], k=5)]


def test_hybrid_fuses_text_tags_and_image(indexed, capsys):
    node, rows = indexed
    client = connect(ConnectionSettings(urls=(node.url,)))
    searcher = Searcher(client, "products")
    vector = client.get_source("products", rows[0]["id"])["image_vector"]
    text = searcher.keyword("shirt", size=60)
    image = searcher.image(vector, k=60)
    # Client-side fusion here (the engine-side fusion is compared with it in test_engine_hybrid.py).
    fused = searcher.hybrid("shirt", None, vector, size=10, fusion="rrf", window=60, where="client")
    expected = rrf({"text": [(h.id, h.score) for h in text], "image": [(h.id, h.score) for h in image]})
    assert [h.id for h in fused] == [d for d, _ in expected[:10]]
    both = {h.id for h in text} & {h.id for h in image}
    assert fused[0].id in both  # agreement of the two lists wins
    weighted = searcher.hybrid("shirt", {"shirts": 1.0}, vector, size=10, fusion="weighted", window=60, where="client")
    tags = searcher.tags({"shirts": 1.0}, size=60)
    lists = {name: [(h.id, h.score) for h in hits] for name, hits in (("text", text), ("tags", tags), ("image", image))}
    expected_weighted = FUSIONS["weighted"](lists)[:10]
    assert [h.id for h in weighted] == [d for d, _ in expected_weighted]
    # Scores come back through JSON and float32 engine scores: equal to the sixth decimal, not bit for bit.
    assert [h.score for h in weighted] == pytest.approx([s for _, s in expected_weighted], abs=2e-6)
    page2 = searcher.hybrid("shirt", None, vector, size=5, offset=5, fusion="rrf")
    assert [h.id for h in page2] == [h.id for h in searcher.hybrid("shirt", None, vector, size=10)][5:10]
    only_men = searcher.hybrid("shirt", None, vector, size=10, attributes={"gender": "Men"})
    assert only_men and all(h.source["attributes"]["gender"] == "Men" for h in only_men)

    assert (
        main(
            [
                "search",
                "--url",
                node.url,
                "--query",
                "shirt",
                "--tags",
                "shirts",
                "--fusion",
                "weighted",
                "--fusion-weights",
                "text=1,tags=2",
                "--k",
                "3",
                "--json",
            ]
        )
        == 0
    )
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_seller_tag_check_flags_spam_tags_and_suggests_missing_ones(indexed, small_catalog, capsys):
    from vistag.search.seller_check import check_seller_tags

    node, rows = indexed
    _, images, _ = small_catalog
    target = next(r for r in rows if r["articleType"] == "Tshirts")
    spam = "Footwear"  # a tag of other products of the catalog: spam on a t-shirt
    client = connect(ConnectionSettings(urls=(node.url,)))
    vector = client.get_source("products", target["id"])["image_vector"]
    # An honest tag, a tag of another product type (spam), a word the catalog never uses.
    result = check_seller_tags(Searcher(client, "products"), vector, ["Tshirts", spam, "bestseller"], k=10)
    spam_tag = spam.lower().replace(" ", "-")
    assert [t["tag"] for t in result.supported] == ["tshirts"], result
    assert [t["tag"] for t in result.contradicted] == [spam_tag], result
    assert result.unknown == ["bestseller"] and result.neighbours == 10
    assert {"apparel", "topwear"} <= {t["tag"] for t in result.suggested}

    assert (
        main(
            [
                "check-tags",
                "--url",
                node.url,
                "--image",
                str(images / target["file"]),
                "--tags",
                "tshirts",
                spam_tag,
                "--k",
                "10",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["supported"][0]["tag"] == "tshirts" and out["contradicted"][0]["tag"] == spam_tag
