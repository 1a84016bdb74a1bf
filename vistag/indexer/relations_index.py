"""The ``tag_relations`` index: learned tag relations, readable by a storefront over HTTP.

One document per tag, id = the tag::

    GET tag_relations/_doc/sneakers
    {"tag": "sneakers", "count": 812,
     "related_tags": ["casual-shoes", "sports-shoes", ...],          # keyword, best first
     "related": [{"tag": "casual-shoes", "score": 0.41,
                  "cooccurrence": 0.38, "semantic": 0.63}, ...]}     # stored, not indexed

``related_tags`` is searchable (``term`` queries: "which tags relate to X").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vistag.analyzers.relations import TagRelations
from vistag.engine.client import EngineClient
from vistag.indexer.bulk import bulk

DEFAULT_INDEX = "tag_relations"

MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        "tag": {"type": "keyword"},
        "count": {"type": "integer"},
        "related_tags": {"type": "keyword"},
        "related": {"type": "object", "enabled": False},
    },
}


def relation_documents(relations: TagRelations, limit: int = 20) -> Iterator[dict[str, Any]]:
    """One document per tag of a :class:`~vistag.analyzers.relations.TagRelations`."""
    for i, tag in enumerate(relations.vocabulary):
        related = relations.related(tag, limit=limit)
        yield {
            "_id": tag,
            "tag": tag,
            "count": int(relations.counts[i]) if relations.counts is not None else 0,
            "related_tags": [t for t, _ in related],
            "related": [
                {
                    "tag": t,
                    "score": round(s, 4),
                    **{k: v for k, v in relations.explain(tag, t).items() if k != "blended"},
                }
                for t, s in related
            ],
        }


def write_relations(client: EngineClient, relations: TagRelations, index: str = DEFAULT_INDEX, limit: int = 20) -> int:
    """Replace ``index`` with the relations; returns the number of tags written.

    Args:
        client: the engine.
        relations: a :class:`~vistag.analyzers.relations.TagRelations`.
        index: the index to (re)create.
        limit: related tags stored per tag.

    Raises:
        BulkIndexError: a document was refused.
    """
    client.delete_index(index)
    client.create_index(
        index, {"settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}}, "mappings": MAPPINGS}
    )
    result = bulk(client, relation_documents(relations, limit), index, raise_on_error=True)
    client.refresh(index)
    return result.indexed
