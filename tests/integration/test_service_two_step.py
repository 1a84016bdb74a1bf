"""The two-step query by image a storefront backend runs with no vistag code: ``POST /v1/embed``
on the service, then the image query with that vector straight to the engine (the only way on
Elasticsearch here, which cannot call the service itself)."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import write_slice
from tests.integration.test_service import Service
from vistag.cli.main import main

pytest.importorskip("torch")


def _image_query(engine: str, vector: list[float], k: int = 5) -> dict:
    """The body the README gives for each engine (vistag's products-image template, rendered)."""
    if engine == "elasticsearch":
        return {
            "size": k,
            "_source": {"excludes": ["image_vector"]},
            "knn": {"field": "image_vector", "query_vector": vector, "k": k, "num_candidates": 50},
        }
    return {
        "size": k,
        "_source": {"excludes": ["image_vector"]},
        "query": {"knn": {"image_vector": {"vector": vector, "k": k}}},
    }


def test_embed_then_image_query_finds_the_product_first(node, data_dir, tmp_path, capsys):
    from vistag.models import create_embedder
    from vistag.service.app import ServiceConfig, create_app
    from vistag.service.model import InferenceModel

    catalog, images, rows = write_slice(data_dir, tmp_path, 40, start=9, step=457)
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
    service = Service(create_app(InferenceModel(create_embedder("efficientnet-lite0", device="cpu")), ServiceConfig()))
    try:
        for row in rows[:5]:
            photo = (images / f"{row['id']}.jpg").read_bytes()
            vector = requests.post(
                f"{service.url}/v1/embed", data=photo, headers={"Content-Type": "image/jpeg"}, timeout=30
            ).json()["vectors"][0]
            hits = requests.post(
                f"{node.url}/products/_search", json=_image_query(node.engine, vector), timeout=30
            ).json()["hits"]["hits"]
            assert hits[0]["_id"] == row["id"], (row["id"], [h["_id"] for h in hits])
            assert "image_vector" not in hits[0]["_source"]

        # The demo page on top of the service (`vistag serve --service URL`): no model in the page process.
        from vistag.search import Searcher
        from vistag.service.remote import service_embedder
        from vistag.service.storefront import Storefront, serve_in_thread

        page, page_url = serve_in_thread(
            Storefront(Searcher(node.client(), "products"), None, service_embedder(service.url))
        )
        try:
            photo = (images / f"{rows[7]['id']}.jpg").read_bytes()
            found = requests.post(f"{page_url}/api/search-image", data=photo, timeout=30)
            assert found.status_code == 200 and found.json()["hits"][0]["id"] == rows[7]["id"]
            service.stop()
            down = requests.post(f"{page_url}/api/search-image", data=photo, timeout=60)
            assert down.status_code == 502 and "inference service" in down.json()["error"]
        finally:
            page.shutdown()
    finally:
        service.stop()
