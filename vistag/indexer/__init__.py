"""Writing a catalog into the engine: bulk indexing with per-item retries and dead letters, the two-pass index run,
sync and reindex behind an alias.

* :func:`~vistag.indexer.pipeline.index_catalog` -- embed, tag and index a catalog;
* :func:`~vistag.indexer.sync.sync` -- make an index equal to today's catalog;
* :func:`~vistag.indexer.reindex.reindex` -- build a new index, swap the alias;
* :mod:`~vistag.indexer.bulk` -- ``_bulk`` in layers, after elasticsearch-py's helpers;
* :func:`~vistag.indexer.relations_index.write_relations` -- the ``tag_relations`` index.

Examples:
    >>> from vistag.indexer import IndexOptions
    >>> IndexOptions(index="products").bulk_threads
    2
"""

from vistag.indexer.bulk import BulkResult, bulk, parallel_bulk, streaming_bulk
from vistag.indexer.options import IndexOptions, IndexSummary
from vistag.indexer.pipeline import index_catalog
from vistag.indexer.reindex import ReindexResult, reindex
from vistag.indexer.relations_index import write_relations
from vistag.indexer.sync import SyncSummary, sync

__all__ = [
    "BulkResult",
    "IndexOptions",
    "IndexSummary",
    "ReindexResult",
    "SyncSummary",
    "bulk",
    "index_catalog",
    "parallel_bulk",
    "reindex",
    "streaming_bulk",
    "sync",
    "write_relations",
]
