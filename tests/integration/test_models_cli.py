"""`vistag train`, `eval`, `tag` on a real catalog slice, and `vistag index --model` into both engines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import write_slice
from vistag.cli.main import main

pytest.importorskip("torch")
pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir) -> tuple[Path, Path, Path, list[dict]]:
    """A model trained by the CLI on 300 real products (20 % held out by id hash)."""
    root = tmp_path_factory.mktemp("train300")
    catalog, images, rows = write_slice(data_dir, root, 300, start=11, step=131)
    model = root / "model"
    assert (
        main(
            [
                "-q",
                "train",
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--out",
                str(model),
                "--test-fraction",
                "0.2",
                "--epochs",
                "25",
                "--hidden",
                "256",
                "--min-count",
                "3",
                "--text-image",
            ]
        )
        == 0
    )
    return model, catalog, images, rows


def test_train_writes_a_model_directory(trained):
    model, *_ = trained
    config = json.loads((model / "vistag-model.json").read_text())
    assert config["model_id"] == "efficientnet-lite0@1-128px-meanmidgrid"
    assert [v["column"] for v in config["levels"]] == ["masterCategory", "subCategory", "articleType"]
    assert {"gender", "baseColour", "season", "usage"} <= {v["column"] for v in config["attributes"]}
    assert len(config["thresholds"]["per_tag"]) == len(config["tags"]["classes"])
    assert config["info"]["training"]["split"]["test_fraction"] == 0.2
    assert len(config["info"]["training"]["data_sha256"]) == 64
    assert (model / "heads.pt").is_file() and (model / "centroids.npy").is_file()


def test_train_text_image_writes_a_projection_that_finds_the_titles_own_photos(trained):
    import numpy as np

    from vistag.images import ImageStore
    from vistag.models import create_embedder
    from vistag.models.text_image import TextImageProjection, recall_at

    model, catalog, images, rows = trained
    projection = TextImageProjection.load(model / "text-image")
    assert projection.config.image_model_id == "efficientnet-lite0@1-128px-meanmidgrid"
    assert projection.config.history and "val_recall@10" in projection.config.history[0]
    store = ImageStore(images)
    sample = rows[:60]
    photos = create_embedder("efficientnet-lite0", device="cpu").embed_images(
        [store.load(r["file"]).image for r in sample]
    )
    texts = projection.encode([r["productDisplayName"] for r in sample])
    assert texts.shape == (60, 1840)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    # 10 of 60 by chance; the projection was fitted on most of these pairs
    assert recall_at(texts, photos) > 0.4
    config = json.loads((model / "vistag-model.json").read_text())
    assert config["info"]["training"]["text_image"]["seconds"] > 0


def test_eval_reports_every_metric(trained, tmp_path, capsys):
    model, catalog, images, _ = trained
    out, md, png = tmp_path / "eval.json", tmp_path / "eval.md", tmp_path / "cm.png"
    assert (
        main(
            [
                "-q",
                "eval",
                "--model",
                str(model),
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--json",
                str(out),
                "--report",
                str(md),
                "--confusion-png",
                str(png),
                "--robustness",
                "20",
                "--attribute-confusion-png",
                "baseColour",
                str(tmp_path / "colours.png"),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["split"]["test_rows"] > 30
    master = report["levels"]["masterCategory"]
    assert master["top1"] > 0.8 and master["top5"] >= master["top1"] and 0 <= master["macc"] <= 1
    assert set(report["tags"]) == {"heads", "knn", "ensemble"}
    assert set(report["tags"]["knn"]["at_k"]) == {"1", "3", "5", "7"}
    assert {"hamming_score", "exact_match"} <= set(report["tags"]["heads"]["sets"]["per_tag_thresholds"])
    assert report["confidence"]["table"][0]["coverage"] == 1.0
    assert report["type_validator"]["table"] and report["robustness"]["conditions"]
    assert Image.open(png).size[0] > 100 and "## Tags" in md.read_text()
    assert Image.open(tmp_path / "colours.png").size[0] > 100
    assert report["attribute_confusion_png"] == {"baseColour": str(tmp_path / "colours.png")}


def test_tag_prints_json(trained, capsys):
    model, _, images, rows = trained
    assert main(["-q", "tag", str(images / rows[0]["file"]), str(images / "missing.jpg"), "--model", str(model)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out[0]["category"]["path"][0] in {"Apparel", "Accessories", "Footwear", "Personal Care", "Free Items"}
    assert out[0]["tagger"].startswith("model@") and "attributes" in out[0] and "tags" in out[0]
    assert "does not exist" in out[1]["error"]


def test_index_with_a_trained_model_records_the_tagger(trained, node, tmp_path, capsys):
    model, catalog, images, _ = trained
    base = [
        "-q",
        "index",
        "--url",
        node.url,
        "--catalog",
        str(catalog),
        "--images",
        str(images),
        "--limit",
        "40",
        "--model",
        str(model),
        "--json",
        "--dead-letter",
        str(tmp_path / "dead.jsonl"),
    ]
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["tagger"].startswith("heads:model@")
    hits = requests.post(f"{node.url}/products/_search", json={"size": 40}, timeout=10).json()["hits"]["hits"]
    assert len(hits) == 40
    doc = hits[0]["_source"]
    assert doc["model"]["tagger"].startswith("heads:model@") and doc["model"]["version"].endswith("meanmidgrid")
    assert "accepted" in doc["predicted"] and "claimed_type_outlier" in doc["predicted"]
    accepted = [h["_source"] for h in hits if h["_source"]["predicted"]["accepted"]]
    assert accepted and all(d["tags"] for d in accepted)
    # Predicted fields are searchable: a term query on the predicted category.
    category = accepted[0]["predicted"]["category"]
    query = {"query": {"term": {"predicted.category": category}}}
    assert requests.post(f"{node.url}/products/_search", json=query, timeout=10).json()["hits"]["total"]["value"] >= 1

    assert main([*base, "--tagger", "ensemble", "--index", "products-ensemble"]) == 0
    assert json.loads(capsys.readouterr().out)["tagger"].startswith("ensemble:model@")


def test_search_text_image_adds_the_projected_list_to_a_keyword_query(trained, node, tmp_path, capsys):
    model, catalog, images, rows = trained
    index = "products-text-image"
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
                "--limit",
                "60",
                "--index",
                index,
                "--dead-letter",
                str(tmp_path / "dead.jsonl"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    title = rows[5]["productDisplayName"]
    search = [
        "-q",
        "search",
        "--url",
        node.url,
        "--index",
        index,
        "--query",
        title,
        "--k",
        "10",
        "--json",
        "--fusion-site",
        "client",
    ]
    assert main(search) == 0
    keyword = [h["id"] for h in json.loads(capsys.readouterr().out)]
    assert main([*search, "--text-image", str(model)]) == 0
    out = capsys.readouterr()
    hybrid = [h["id"] for h in json.loads(out.out)]
    assert "fusion: rrf" in out.err  # the projected vector made it a hybrid query
    assert hybrid[0] == rows[5]["id"] and hybrid != keyword  # the title's product first, and an image list fused in
    # A projection into another embedding space is refused by name.
    other = tmp_path / "other"
    from vistag.models.text_image import ProjectionMLP, TextImageConfig, TextImageProjection

    config = TextImageConfig(image_model_id="other@1", image_dim=64)
    TextImageProjection(config, ProjectionMLP(config)).save(other)
    assert main([*search, "--text-image", str(other)]) == 1
    assert "64-d" in capsys.readouterr().err


def test_searcher_text_fuses_bm25_the_read_query_tags_and_the_text_image_list(trained, node, tmp_path):
    from vistag.models.text_image import TextImageProjection
    from vistag.search import Searcher
    from vistag.search.fusion import rrf
    from vistag.search.queries import PIN_RATIO, Hit, pin_known_item

    model, catalog, images, rows = trained
    index = "products-text-default"
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
                "--limit",
                "80",
                "--index",
                index,
                "--dead-letter",
                str(tmp_path / "dead.jsonl"),
            ]
        )
        == 0
    )
    projection = TextImageProjection.load(model / "text-image")
    assert list(projection.config.labels) == ["articleType", "baseColour"]  # the default read labels
    searcher = Searcher(node.client(), index)
    queries = [" ".join(r["productDisplayName"].split()[1:]) for r in rows[:40]]  # a shopper's words: no brand
    query = next((q for q in queries if projection.encode_query(q)[1]), None)
    assert query, "some training titles' words must be read as tags"
    vector, read = projection.encode_query(query)
    expected = rrf(
        {
            "text": [(h.id, h.score) for h in searcher.keyword(query, size=100)],
            "tags": [(h.id, h.score) for h in searcher.tags(read, size=100)],
            "image": [(h.id, h.score) for h in searcher.image(vector, k=100)],
        }
    )
    got = searcher.text(query, projection, size=10, where="client", pin_ratio=None)
    assert [h.id for h in got] == [d for d, _ in expected[:10]]
    # By default a known item (BM25's best hit far above the rest, or named in full) is kept first.
    pinned = pin_known_item(
        [Hit(d, sc, None, {}) for d, sc in expected], searcher.keyword(query, size=100), PIN_RATIO, query
    )
    assert [h.id for h in searcher.text(query, projection, size=10, where="client")] == [h.id for h in pinned[:10]]
    full_title = rows[7]["productDisplayName"]
    assert (
        searcher.text(full_title, projection, size=10, where="client")[0].id
        == searcher.keyword(full_title, size=1)[0].id
    )
    assert [h.id for h in searcher.text(query, size=10, where="client")] == [
        h.id for h in searcher.keyword(query, size=10)
    ]
    # With relations, the words that are tags join the read tags; a tag both give keeps the larger weight.
    from vistag.analyzers.relations import TagRelations
    from vistag.search.text_tags import tags_from_text

    docs = requests.post(f"{node.url}/{index}/_search", json={"size": 80, "_source": ["tags"]}, timeout=10).json()
    relations = TagRelations.fit([h["_source"]["tags"] for h in docs["hits"]["hits"]])
    words = tags_from_text(query, relations.document_frequency(), searcher.document_count())
    merged, merged_vector = searcher.read_query(query, projection, relations)
    assert words and np.allclose(merged_vector, vector)
    assert merged == {t: max(words.get(t, 0.0), read.get(t, 0.0)) for t in {*words, *read}}


def test_a_title_aware_model_reads_titles_where_rows_have_them_and_is_refused_where_not(
    trained, node, tmp_path, capsys
):
    model, catalog, images, rows = trained
    aware = tmp_path / "aware"
    assert (
        main(
            [
                "-q",
                "train",
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--out",
                str(aware),
                "--test-fraction",
                "0.2",
                "--epochs",
                "25",
                "--hidden",
                "256",
                "--min-count",
                "3",
                "--title-aware",
            ]
        )
        == 0
    )
    assert json.loads((aware / "vistag-model.json").read_text())["title_column"] == "productDisplayName"
    top1 = {}
    for name, path in (("image", model), ("title", aware)):
        out = tmp_path / f"{name}.json"
        assert (
            main(
                [
                    "-q",
                    "eval",
                    "--model",
                    str(path),
                    "--catalog",
                    str(catalog),
                    "--images",
                    str(images),
                    "--json",
                    str(out),
                    "--robustness",
                    "10",
                ]
            )
            == 0
        )
        report = json.loads(out.read_text())
        top1[name] = report["levels"]["articleType"]["top1"]
        assert report["robustness"]["conditions"]
    assert top1["title"] > top1["image"] + 0.05, top1  # the titles name the product type
    capsys.readouterr()
    assert main(["-q", "tag", str(images / rows[0]["file"]), "--model", str(aware)]) == 1
    assert "title-aware" in capsys.readouterr().err
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
                "--limit",
                "30",
                "--index",
                "products-title-aware",
                "--model",
                str(aware),
                "--json",
                "--dead-letter",
                str(tmp_path / "dead.jsonl"),
            ]
        )
        == 0
    )
    tagger = json.loads(capsys.readouterr().out)["tagger"]
    assert tagger.startswith("heads:aware@") and tagger.endswith("+title")  # the seller check ignores its tags
    hits = requests.post(f"{node.url}/products-title-aware/_search", json={"size": 30}, timeout=10).json()["hits"][
        "hits"
    ]
    by_id = {r["id"]: r for r in rows}
    accepted = [h for h in hits if h["_source"]["predicted"]["accepted"]]
    right = [h for h in accepted if h["_source"]["predicted"]["category"].endswith(by_id[h["_id"]]["articleType"])]
    assert len(right) >= 0.8 * len(accepted) > 0
    # Re-tagging stored documents reads their stored title too: the same vectors and titles give the same tags.
    assert (
        main(
            [
                "-q",
                "reindex",
                "--url",
                node.url,
                "--alias",
                "products-title-aware",
                "--from-index",
                "--model",
                str(aware),
                "--json",
            ]
        )
        == 0
    )
    new_index = json.loads(capsys.readouterr().out)["alias"]["products-title-aware"]
    again = requests.post(f"{node.url}/{new_index}/_search", json={"size": 30}, timeout=10).json()["hits"]["hits"]
    before = {h["_id"]: (h["_source"]["predicted"], h["_source"]["tags"]) for h in hits}
    assert {h["_id"]: (h["_source"]["predicted"], h["_source"]["tags"]) for h in again} == before


def test_tagger_heads_without_a_model_is_a_clear_error(node, data_dir, tmp_path, capsys):
    catalog, images, _ = write_slice(data_dir, tmp_path, 3)
    assert (
        main(
            ["-q", "index", "--url", node.url, "--catalog", str(catalog), "--images", str(images), "--tagger", "heads"]
        )
        == 1
    )
    assert "needs a trained model: pass --model" in capsys.readouterr().err
