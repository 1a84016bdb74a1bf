"""vistag: visual tagging and search-engine indexing for e-commerce catalogs.

The front door, in the spirit of eland and sentence-transformers: hand vistag the
``Elasticsearch`` or ``OpenSearch`` client you already configured::

    import vistag
    from opensearchpy import OpenSearch            # or elasticsearch.Elasticsearch
    client = OpenSearch("http://127.0.0.1:9200")
    summary = vistag.index_catalog(client, "catalog.csv", images="images/", index="products")
    hits = vistag.Searcher(client, "products").image("photo.jpg", k=10)
    tags = vistag.Tagger(reference="catalog.csv", images="images/").tag(["a.jpg"])

Importing this package is cheap: it does not import torch or a client library, open
a connection, read the environment or touch the disk; each name below loads its
module on first use. The sub-packages, in the direction data flows:

* :mod:`vistag.indexer` -- catalogs (:mod:`~vistag.catalog.rows`), bulk indexing, reindexing.
* :mod:`vistag.images.store` -- image sources (folder, ``.tar``, URLs, bytes, PIL) and safe decoding.
* :mod:`vistag.models` -- CNN backbones, batched embedding, trained heads (torch).
* :mod:`vistag.analyzers` -- the kNN tagger and tag relations (numpy).
* :mod:`vistag.documents` -- index templates and stored search templates.
* :mod:`vistag.engine` -- the adapter over the official clients, and local nodes.
* :mod:`vistag.search` -- keyword, tag, image, similar and hybrid queries.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from vistag.version import __version__

_EXPORTS = {
    "index_catalog": "vistag.indexer.api",
    "sync": "vistag.indexer.api",
    "SyncSummary": "vistag.indexer.sync",
    "Tagger": "vistag.indexer.api",
    "Searcher": "vistag.search.queries",
    "Hit": "vistag.search.queries",
    "IndexSummary": "vistag.indexer.pipeline",
    "IndexOptions": "vistag.indexer.pipeline",
    "CatalogSchema": "vistag.catalog.schema",
    "EngineClient": "vistag.engine.client",
    "RetryPolicy": "vistag.engine.retry",
    "install_templates": "vistag.documents.templates",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from vistag.indexer.api import Tagger as Tagger, index_catalog as index_catalog, sync as sync
    from vistag.indexer.sync import SyncSummary as SyncSummary
    from vistag.engine.client import EngineClient as EngineClient
    from vistag.engine.retry import RetryPolicy as RetryPolicy
    from vistag.indexer.pipeline import IndexOptions as IndexOptions, IndexSummary as IndexSummary
    from vistag.catalog.schema import CatalogSchema as CatalogSchema
    from vistag.documents.templates import install_templates as install_templates
    from vistag.search.queries import Hit as Hit, Searcher as Searcher


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vistag' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
