"""vistag: visual tagging and search-engine indexing for e-commerce catalogs, through the Elasticsearch or OpenSearch
client you already have.

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
module on first use. The packages, in the order data flows:

* :mod:`vistag.catalog` -- catalog rows, the column schema, the tag vocabulary, dead letters;
* :mod:`vistag.images` -- image sources (folder, ``.tar``, URLs, bytes, PIL) and safe decoding;
* :mod:`vistag.models` -- backbones, batched embedding with a cache, trained heads, training (torch);
* :mod:`vistag.analyzers` -- the kNN tagger, trained-head taggers and tag relations;
* :mod:`vistag.evaluation` -- measuring taggers and relevance;
* :mod:`vistag.documents` -- the product document, index templates, stored search templates;
* :mod:`vistag.search` -- keyword, tag, image, similar, text and hybrid queries;
* :mod:`vistag.indexer` -- bulk indexing, the index run, sync and reindex;
* :mod:`vistag.service` -- the inference API and the demo storefront (FastAPI);
* :mod:`vistag.cli` -- the ``vistag`` command.

Beside them: :mod:`vistag.engine` (the adapter over the official clients, the one
retry layer), :mod:`vistag.pipelines` (OpenSearch ml-commons pipelines that call the
service) and :mod:`vistag.local` (local nodes for development, tests and the demo).

Examples:
    >>> import vistag
    >>> "index_catalog" in dir(vistag)
    True
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from vistag.version import __version__

_EXPORTS = {
    "index_catalog": "vistag.indexer.pipeline",
    "IndexOptions": "vistag.indexer.options",
    "IndexSummary": "vistag.indexer.options",
    "sync": "vistag.indexer.sync",
    "SyncSummary": "vistag.indexer.sync",
    "reindex": "vistag.indexer.reindex",
    "ReindexResult": "vistag.indexer.reindex",
    "Searcher": "vistag.search.queries",
    "Hit": "vistag.search.queries",
    "Tagger": "vistag.analyzers.tagger",
    "TagRelations": "vistag.analyzers.relations",
    "build_relations": "vistag.analyzers.relations",
    "CatalogSchema": "vistag.catalog.schema",
    "EngineClient": "vistag.engine.client",
    "RetryPolicy": "vistag.engine.retry",
    "install_templates": "vistag.documents.templates",
    "load_model": "vistag.models.loading",
    "tag_images": "vistag.models.loading",
    "train": "vistag.models.trainer",
    "evaluate_model": "vistag.evaluation.evaluate",
    "VistagError": "vistag.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from vistag.analyzers.relations import TagRelations as TagRelations
    from vistag.analyzers.relations import build_relations as build_relations
    from vistag.analyzers.tagger import Tagger as Tagger
    from vistag.catalog.schema import CatalogSchema as CatalogSchema
    from vistag.documents.templates import install_templates as install_templates
    from vistag.engine.client import EngineClient as EngineClient
    from vistag.engine.retry import RetryPolicy as RetryPolicy
    from vistag.errors import VistagError as VistagError
    from vistag.evaluation.evaluate import evaluate_model as evaluate_model
    from vistag.indexer.options import IndexOptions as IndexOptions
    from vistag.indexer.options import IndexSummary as IndexSummary
    from vistag.indexer.pipeline import index_catalog as index_catalog
    from vistag.indexer.reindex import ReindexResult as ReindexResult
    from vistag.indexer.reindex import reindex as reindex
    from vistag.indexer.sync import SyncSummary as SyncSummary
    from vistag.indexer.sync import sync as sync
    from vistag.models.loading import load_model as load_model
    from vistag.models.loading import tag_images as tag_images
    from vistag.models.trainer import train as train
    from vistag.search.queries import Hit as Hit
    from vistag.search.queries import Searcher as Searcher


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vistag' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
