"""Every command's public function, called from Python as a user would (the CLI tests call the same ones)."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import write_slice

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def labelled(data_dir, tmp_path_factory):
    return write_slice(data_dir, tmp_path_factory.mktemp("labelled"), 160, start=9, step=211)


def test_train_evaluate_and_tag_from_python(labelled, tmp_path):
    """``vistag train``, ``eval`` and ``tag`` as functions, on the tiny test backbone (no engine)."""
    import vistag
    from vistag.models.trainer import SplitSettings, TrainSettings
    from vistag.models.training import TrainConfig

    catalog, images, rows = labelled
    schema = vistag.CatalogSchema.bundled()
    settings = TrainSettings.for_schema(
        schema,
        levels=["masterCategory"],
        attributes=["gender"],
        tag_columns=["masterCategory", "gender"],
        min_count=2,
        train=TrainConfig(hidden=32, epochs=3),
    )
    result = vistag.train(
        catalog,
        tmp_path / "model",
        images=images,
        schema=schema,
        backbone="tiny-random",
        settings=settings,
        split=SplitSettings(test_fraction=0.25),
        device="cpu",
    )
    assert (tmp_path / "model" / "vistag-model.json").is_file()
    assert result.summary()["rows"]["train"] + result.summary()["rows"]["val"] + result.summary()["rows"]["test"] == 160
    assert result.model.backbone.model_id.startswith("tiny-random")

    evaluated = vistag.evaluate_model(
        tmp_path / "model", catalog, images=images, schema=schema, device="cpu", confusion_png=tmp_path / "cm.png"
    )
    assert evaluated.report["split"]["test_rows"] == result.summary()["rows"]["test"]
    assert 0.0 <= evaluated.report["levels"]["masterCategory"]["top1"] <= 1.0
    assert "masterCategory" in evaluated.markdown and (tmp_path / "cm.png").stat().st_size > 0

    records = vistag.tag_images(
        tmp_path / "model", [str(images / rows[0]["file"]), str(tmp_path / "nope.jpg")], device="cpu"
    )
    assert records[0]["image"].endswith(rows[0]["file"]) and records[0]["tagger"] == result.model.tagger_id
    assert "error" in records[1] and "does not exist" in records[1]["error"]
    with pytest.raises(vistag.VistagError, match="not a trained model"):
        vistag.tag_images("tiny-random", [str(images / rows[0]["file"])], device="cpu")


def test_reindex_from_python_builds_a_new_index_and_moves_the_alias(node, labelled):
    import vistag

    catalog, images, rows = labelled
    client = node.client()
    first = vistag.reindex(
        client, "shop", catalog, images, schema="fashion-product-images", model="tiny-random", limit=40
    )
    assert first.done and first.documents == 40 and client.alias_targets("shop") == [first.plan.new_index]
    plan_only = vistag.reindex(client, "shop", catalog, images, dry_run=True)
    assert not plan_only.done and plan_only.plan.old_indices == [first.plan.new_index]
    second = vistag.reindex(client, "shop", from_index=True, model="tiny-random")
    assert second.done and second.copy is not None and second.copy.copied == 40
    assert client.alias_targets("shop") == [second.plan.new_index] and not client.index_exists(first.plan.new_index)
    with pytest.raises(vistag.VistagError, match="give a catalog"):
        vistag.reindex(client, "shop")
    client.close()


def test_install_and_render_templates_from_python(node):
    import vistag
    from vistag.documents import render_templates, spec_for

    client = node.client()
    ids = vistag.install_templates(client, "catalog-x", model="efficientnet-lite0-colour")
    rendered = render_templates(client, spec_for("catalog-x", model="efficientnet-lite0-colour"))
    assert rendered["index_template"]["template"]["mappings"]["_meta"]["vector_dim"] == 2048
    assert sorted(ids) == (
        sorted(rendered["search_templates"])
        if rendered["engine"] == "opensearch" or "lang-mustache" in client.info().modules
        else []
    )
    client.close()


@pytest.mark.slow
def test_the_local_engine_functions_start_report_and_stop_a_node():
    from vistag.local.manage import LocalEngine, engine_status, engine_url, install_engine, start_engine, stop_engine

    local = LocalEngine("elasticsearch", name="pytest-manage", heap="512m")
    assert install_engine(local).is_dir()
    try:
        started = start_engine(local)
        assert engine_url(local) == started.urls[0]
        status = engine_status(local)
        assert status.node.running and status.node.health in ("green", "yellow")
        assert json.loads(json.dumps(status.to_dict()))["running"] is True
    finally:
        assert stop_engine(local) == ["elasticsearch: node stopped"]
    assert engine_url(local) is None and not engine_status(local).node.running


@pytest.mark.slow
def test_the_demo_runs_end_to_end_from_python(data_dir, tmp_path, monkeypatch):
    """``vistag demo`` as a function, on a node of its own, with a small sample."""
    from vistag.demo import run_demo

    monkeypatch.setenv("VISTAG_HOME", str(tmp_path))
    result = run_demo("elasticsearch", data=data_dir, size=40, index="demo-test", stop=True, node_name="pytest-demo")
    assert result.summary.ok and result.summary.indexed == 40
    titles = [s.title for s in result.sections]
    assert [t.split(":")[0] for t in titles[:2]] == ["keyword query", "tag query"]
    assert any(t.startswith("image query") for t in titles) and any(t.startswith("similar") for t in titles)
    assert result.sections[-1].note.startswith("supported")
    with open(tmp_path / "demo" / "sample.csv", newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 40


def test_the_summary_counts_each_image_once(node, labelled, tmp_path):
    """60 rows: the first run embeds 60 images (pass 2 reads them back, uncounted); a rerun finds 60 in the cache."""
    import vistag

    catalog, images, _ = labelled
    client = node.client()
    kwargs = {"schema": "fashion-product-images", "model": "tiny-random", "cache_dir": tmp_path / "cache", "limit": 60}
    first = vistag.index_catalog(client, catalog, images, "counted", **kwargs)
    assert (first.read, first.embedded, first.cache_hits) == (60, 60, 0)
    again = vistag.index_catalog(client, catalog, images, "counted", **kwargs)
    assert (again.read, again.embedded, again.cache_hits) == (60, 0, 60)
    client.close()


def test_a_knn_mapping_without_a_method_does_not_kill_the_local_opensearch_node(node):
    """faiss (the k-NN plugin's default engine) has no native library in the Maven zip: vistag's local node
    builds no native graph for such an index (exact k-NN), instead of dying at the first flush."""
    if node.engine != "opensearch":
        pytest.skip("the faiss guard is for local OpenSearch nodes (Elasticsearch has no k-NN plugin)")
    client = node.client()
    client.create_index(
        "faiss-trap",
        {
            "settings": {"index": {"knn": True}},
            "mappings": {"properties": {"v": {"type": "knn_vector", "dimension": 4}}},
        },
    )
    client.bulk(b'{"index":{"_index":"faiss-trap","_id":"1"}}\n{"v":[1,2,3,4]}\n', refresh="true")
    hits = client.search("faiss-trap", {"query": {"knn": {"v": {"vector": [1, 2, 3, 4], "k": 1}}}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]
    assert node.health() in ("green", "yellow")
    client.close()
