"""The same catalog gives the same tag and image results on both engines."""

from __future__ import annotations

import pytest
import requests

from tests.integration.conftest import start_node, wipe
from vistag.cli.main import main
from vistag.config import ConnectionSettings
from vistag.engine.connect import connect
from vistag.search import Searcher


@pytest.mark.elasticsearch
@pytest.mark.opensearch
def test_same_results_on_both_engines(small_catalog, tmp_path):
    catalog, images, rows = small_catalog
    searchers = {}
    for engine in ("opensearch", "elasticsearch"):
        node = start_node(engine)
        wipe(node)
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
                    str(tmp_path / f"{engine}.jsonl"),
                ]
            )
            == 0
        )
        searchers[engine] = Searcher(connect(ConnectionSettings(urls=(node.url,))), "products", 1840)
    os_s, es_s = searchers["opensearch"], searchers["elasticsearch"]
    for weights in ({"tshirts": 1.0}, {"watches": 1.0, "women": 0.5}, {"casual": 1.0, "summer": 0.3}):
        a, b = os_s.tags(weights, size=10), es_s.tags(weights, size=10)
        assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-4)
        assert {h.id for h in a if h.score > a[-1].score} <= {h.id for h in b}  # ties may order differently
    for row in rows[:5]:
        vector = requests.get(f"{os_s.client.label}/products/_doc/{row['id']}", timeout=10).json()["_source"][
            "image_vector"
        ]
        a, b = os_s.image(vector, k=5, num_candidates=100), es_s.image(vector, k=5, num_candidates=100)
        assert [h.id for h in a] == [h.id for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-4)
