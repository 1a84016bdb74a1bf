"""Catalog rows in: reading CSV/TSV/JSONL files or Python rows, the column schema, the tag vocabulary and dead letters.

Examples:
    >>> from vistag.catalog import CatalogSchema, read_catalog
    >>> [row.id for row in read_catalog([{"id": "1", "title": "Red dress", "image": "1.jpg"}], CatalogSchema())]
    ['1']
"""

from vistag.catalog.deadletter import DeadLetters
from vistag.catalog.rows import CatalogRow, MalformedRow, read_catalog
from vistag.catalog.schema import CatalogSchema
from vistag.catalog.vocabulary import normalize_tag, tags_from_labels

__all__ = [
    "CatalogRow",
    "CatalogSchema",
    "DeadLetters",
    "MalformedRow",
    "normalize_tag",
    "read_catalog",
    "tags_from_labels",
]
