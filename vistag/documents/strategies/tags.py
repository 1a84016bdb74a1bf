"""Tag search: weighted tags stored as feature fields, scored linearly by their presence scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vistag.documents.spec import DocumentSpec
from vistag.documents.strategies.common import (
    FILTER_CLAUSES,
    PAGING,
    Attributes,
    filter_params,
    paging_params,
)
from vistag.engine.adapter import EngineAdapter
from vistag.errors import ConfigError

NAME = "tags"
FIELD = "tag_weights"


def properties(adapter: EngineAdapter, spec: DocumentSpec) -> dict:
    """``tags`` (keywords) and ``tag_weights`` (rank_features, or sparse_vector -- see the adapter)."""
    return {"tags": {"type": "keyword"}, FIELD: adapter.features_mapping()}


def template(adapter: EngineAdapter, spec: DocumentSpec) -> str:
    """``tags`` (a list of ``{"tag", "weight"}``) plus paging and filters.

    A document scores ``sum(weight * presence score)`` over the requested tags it has.
    """
    clause = adapter.feature_clause_template(FIELD)
    return (
        "{" + PAGING + ',"query":{"bool":{'
        '"should":[{{#tags}}' + clause + ',{{/tags}}{"match_none":{}}],"minimum_should_match":1,'
        '"filter":[' + FILTER_CLAUSES + "]}}}"
    )


def params(
    tags: Mapping[str, float] | Sequence[str],
    size: int = 10,
    offset: int = 0,
    category: str | None = None,
    attributes: Attributes = None,
) -> dict:
    """Template parameters for a tag query; a plain list of tags weighs each 1.0."""
    weights = dict(tags) if isinstance(tags, Mapping) else dict.fromkeys(tags, 1.0)
    if not weights:
        raise ConfigError("a tag query needs at least one tag")
    for tag, weight in weights.items():
        if not tag or "." in tag:
            raise ConfigError(f"invalid tag {tag!r}: tags are non-empty and contain no '.'")
        if not weight > 0:
            raise ConfigError(f"tag {tag!r} has weight {weight}; weights must be positive")
    return {
        "tags": [{"tag": t, "weight": float(w)} for t, w in weights.items()],
        **paging_params(size, offset),
        **filter_params(category, attributes),
    }
