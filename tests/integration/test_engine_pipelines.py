"""OpenSearch calls vistag service: raw rows written with a plain ``_bulk`` come out tagged as
``vistag index`` tags them, and a search with an image in the request finds the product.

Runs on an OpenSearch node with ml-commons (``LocalNode(..., extras=("ml",))``); Elasticsearch
cannot take plugins here (see test_service_two_step.py for its two-step flow)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import requests

from tests.conftest import write_slice
from tests.integration.test_service import Service
from vistag.cli.main import main
from vistag.local.node import LocalNode

pytest.importorskip("torch")
pytestmark = [pytest.mark.opensearch, pytest.mark.slow]


@pytest.fixture(scope="module")
def ml_node():
    node = LocalNode("opensearch", heap="1g", name="pytest", extras=("ml",))
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def service(data_dir, tmp_path_factory):
    from vistag.analyzers.tagger import Tagger
    from vistag.models import create_embedder
    from vistag.service.app import ServiceConfig, create_app
    from vistag.service.model import InferenceModel

    tmp = tmp_path_factory.mktemp("pipelines")
    reference, ref_images, _ = write_slice(data_dir, tmp / "ref", 50, start=4, step=173)
    embedder = create_embedder("efficientnet-lite0", device="cpu")
    model = InferenceModel(
        embedder, Tagger(reference, ref_images, schema="fashion-product-images", model=embedder).document_tagger()
    )
    svc = Service(create_app(model, ServiceConfig()))
    yield svc, reference, ref_images, tmp
    svc.stop()


def _docs(url: str, index: str) -> dict[str, dict]:
    requests.post(f"{url}/{index}/_refresh", timeout=30)
    hits = requests.post(f"{url}/{index}/_search", json={"size": 100}, timeout=30).json()["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def test_raw_bulk_rows_are_tagged_by_the_engine_and_searchable_by_image(ml_node, service, data_dir, capsys):
    from vistag.pipelines import image_query

    svc, reference, ref_images, tmp = service
    catalog, images, rows = write_slice(data_dir, tmp / "new", 12, start=21, step=877)
    url = ml_node.url
    for index in ("products", "products-cli"):
        requests.delete(f"{url}/{index}", timeout=30)
    # What `vistag index` writes for these rows, tagged from the same reference catalog.
    assert (
        main(
            [
                "-q",
                "index",
                "--url",
                url,
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--index",
                "products-cli",
                "--reference",
                str(reference),
                "--reference-images",
                str(ref_images),
                "--dead-letter",
                str(tmp / "dl.jsonl"),
            ]
        )
        == 0
    )
    assert main(["-q", "mappings", "install", "--url", url, "--index", "products"]) == 0
    requests.put(f"{url}/products", timeout=30).raise_for_status()
    capsys.readouterr()
    assert main(["pipelines", "install", "--url", url, "--index", "products", "--service", svc.url]) == 0
    setup = json.loads(capsys.readouterr().out)

    # A storefront's own plain _bulk: id, title and the image as base64; no vector, no tags.
    lines = []
    for row in rows:
        b64 = base64.b64encode((images / f"{row['id']}.jpg").read_bytes()).decode()
        lines += [
            json.dumps({"index": {"_index": "products", "_id": row["id"]}}),
            json.dumps({"id": row["id"], "title": row["productDisplayName"], "image": b64}),
        ]
    resp = requests.post(
        f"{url}/_bulk", data="\n".join(lines) + "\n", timeout=300, headers={"Content-Type": "application/x-ndjson"}
    ).json()
    assert not resp["errors"], [i["index"].get("error") for i in resp["items"] if "error" in i["index"]][:2]

    engine_side, by_cli = _docs(url, "products"), _docs(url, "products-cli")
    assert set(engine_side) == set(by_cli) == {r["id"] for r in rows}
    for doc_id, doc in engine_side.items():
        mine = by_cli[doc_id]
        assert len(doc["image_vector"]) == 1840
        assert np.allclose(doc["image_vector"], mine["image_vector"], atol=1e-4)
        assert set(doc["tag_weights"]) == set(mine["tag_weights"]), doc_id
        for tag, score in mine["tag_weights"].items():
            assert abs(doc["tag_weights"][tag] - score) <= 1e-4, (doc_id, tag)
        assert sorted(doc["tags"]) == sorted(mine["tags"])
        assert doc["image"]["sha256"] == mine["image"]["sha256"] and doc["model"]["version"] == mine["model"]["version"]

    # Query by image inside the engine: the image in the request, the vector computed by the engine's call.
    target = rows[3]["id"]
    photo = base64.b64encode((images / f"{target}.jpg").read_bytes()).decode()
    search = f"{url}/products/_search?search_pipeline={setup['search_pipeline']}"
    hits = requests.post(search, json=image_query(photo, k=5), timeout=60).json()["hits"]["hits"]
    assert hits[0]["_id"] == target and "image_vector" not in hits[0]["_source"]
    excluded = image_query(photo, k=5, filters=[{"bool": {"must_not": [{"ids": {"values": [target]}}]}}])
    hits = requests.post(search, json=excluded, timeout=60).json()["hits"]["hits"]
    assert hits and target not in [h["_id"] for h in hits]  # the request's filters are kept


def test_elasticsearch_and_plain_opensearch_refuse_with_the_reason(node, capsys):
    from vistag.errors import ConfigError
    from vistag.pipelines import install_inference

    code = main(["pipelines", "install", "--url", node.url, "--index", "products", "--service", "http://127.0.0.1:9"])
    assert code != 0
    assert "no ml-commons plugin" in capsys.readouterr().err
    client = node.client()  # the function under the command, from Python
    with pytest.raises(ConfigError, match="no ml-commons plugin"):
        install_inference(client, "products", "http://127.0.0.1:9")
    client.close()
