"""A real 429 storm: a node whose write thread pool has one thread and a queue of one.

Each bulk request fans out into one shard request per shard; with 6 shards most of
them are rejected with HTTP 429 (es_rejected_execution_exception). vistag must resend
only the rejected items until every document is in, with no duplicates.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import write_slice
from vistag.catalog.schema import CatalogSchema
from vistag.config import ConnectionSettings
from vistag.engine.connect import connect
from vistag.images import ImageStore
from vistag.indexer.pipeline import IndexOptions, run_index
from vistag.local.node import LocalNode
from vistag.models.embedding import BatchEmbedder

pytest.importorskip("torch")


@pytest.mark.parametrize(
    "engine", [pytest.param(e, marks=getattr(pytest.mark, e)) for e in ("opensearch", "elasticsearch")]
)
@pytest.mark.slow
def test_429_storm_loses_and_duplicates_nothing(engine, data_dir, tmp_path):
    from vistag.models import create_embedder
    from vistag.models.cache import model_cache as embedding_cache

    node = LocalNode(
        engine, heap="512m", name="storm", settings={"thread_pool.write.size": "1", "thread_pool.write.queue_size": "1"}
    )
    url = node.start()
    try:
        client = connect(ConnectionSettings(urls=(url,)))
        client.delete_index("storm")
        catalog, images, rows = write_slice(data_dir, tmp_path, 120, start=17)
        schema = CatalogSchema.bundled()
        # Pre-create the index with many shards; vistag's template supplies the mappings.
        from vistag.documents import DocumentSpec, install_index_template

        install_index_template(client, DocumentSpec(name="storm", vector_dim=1840))
        client.create_index("storm", {"settings": {"index": {"number_of_shards": 6, "number_of_replicas": 0}}})
        embedder = create_embedder("efficientnet-lite0", device="cpu")
        with ImageStore(images) as store:
            batch = BatchEmbedder(embedder, store, embedding_cache(embedder))
            options = IndexOptions(
                index="storm",
                progress=False,
                dead_letter=tmp_path / "dead.jsonl",
                chunk_size=120,
                initial_backoff=0.05,
                max_backoff=0.5,
                max_retries=200,
            )
            summary = run_index(client, catalog, schema, batch, options)
            batch.close()
        stats = requests.get(f"{url}/_nodes/stats/thread_pool", timeout=10).json()
        rejected = sum(n["thread_pool"]["write"]["rejected"] for n in stats["nodes"].values())
        assert rejected > 0, "the storm did not happen: no write was rejected"
        assert summary.ok and summary.indexed == 120 and summary.failed == 0
        assert summary.retries > 0, "rejected items were resent but the retries counter did not count them"
        client.refresh("storm")
        assert client.count("storm") == 120
        ids = requests.post(f"{url}/storm/_search", json={"size": 200, "_source": False}, timeout=10).json()["hits"][
            "hits"
        ]
        assert sorted(h["_id"] for h in ids) == sorted(r["id"] for r in rows)
    finally:
        node.stop()
