"""Catalog reading, image loading and bulk indexing into Elasticsearch/OpenSearch."""

from vistag.indexer.bulk import BulkResult, streaming_bulk
from vistag.catalog.schema import CatalogSchema

__all__ = ["BulkResult", "CatalogSchema", "streaming_bulk"]
