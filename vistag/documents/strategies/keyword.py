"""Keyword search: BM25 over the product text fields."""

from __future__ import annotations

from vistag.documents.spec import TEXT_FIELDS, DocumentSpec
from vistag.documents.strategies.common import (
    FILTER_CLAUSES,
    PAGING,
    Attributes,
    filter_params,
    paging_params,
)
from vistag.engine.adapter import EngineAdapter
from vistag.errors import ConfigError

NAME = "keyword"


def properties(adapter: EngineAdapter, spec: DocumentSpec) -> dict:
    """Text fields, analysed with the product analyzer, with a raw keyword sub-field on ``title``."""
    text = {"type": "text", "analyzer": adapter.text_analyzer}
    return {
        "title": {**text, "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        "text": text,
    }


def template(adapter: EngineAdapter, spec: DocumentSpec) -> str:
    """``query`` (string) plus paging and filters."""
    fields = ",".join(f'"{f}"' for f in TEXT_FIELDS)
    return (
        "{" + PAGING + ',"query":{"bool":{'
        '"must":[{"multi_match":{"query":"{{query}}","fields":[' + fields + '],"type":"best_fields","operator":"or"}}],'
        '"filter":[' + FILTER_CLAUSES + "]}}}"
    )


def params(
    query: str, size: int = 10, offset: int = 0, category: str | None = None, attributes: Attributes = None
) -> dict[str, object]:
    """Template parameters for a keyword query."""
    if not query or not query.strip():
        raise ConfigError("a keyword query needs some text")
    return {"query": query, **paging_params(size, offset), **filter_params(category, attributes)}
