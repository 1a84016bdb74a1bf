"""Image search: approximate kNN (HNSW) on the image embedding, with filters applied inside the kNN search."""

from __future__ import annotations

from collections.abc import Sequence

from vistag.documents.spec import DocumentSpec
from vistag.documents.strategies.common import FILTER_CLAUSES, PAGING, Attributes, filter_params
from vistag.engine.adapter import EngineAdapter
from vistag.errors import ConfigError

NAME = "image"
FIELD = "image_vector"


def properties(adapter: EngineAdapter, spec: DocumentSpec) -> dict:
    """The indexed image vector."""
    return {FIELD: adapter.vector_mapping(spec.vector_dim, spec.vector_quantization)}


def template(adapter: EngineAdapter, spec: DocumentSpec) -> str:
    """``vector`` (floats), ``k``, ``num_candidates`` plus paging and filters.

    Filters go into the kNN search itself (Elasticsearch ``knn.filter``, OpenSearch
    Lucene efficient filtering), so ``k`` results come back even when few match.
    """
    vector = "{{#toJson}}vector{{/toJson}}"
    filt = '{"bool":{"filter":[' + FILTER_CLAUSES + "]}}"
    if adapter.engine == "elasticsearch":
        return (
            "{" + PAGING + ',"knn":{"field":"' + FIELD + '","query_vector":' + vector + ","
            '"k":{{k}},"num_candidates":{{num_candidates}},"filter":' + filt + "}}"
        )
    return (
        "{" + PAGING + ',"query":{"knn":{"' + FIELD + '":{"vector":' + vector + ","
        '"k":{{k}},"method_parameters":{"ef_search":{{num_candidates}}},"filter":' + filt + "}}}}"
    )


def params(
    vector: Sequence[float],
    k: int = 10,
    num_candidates: int | None = None,
    size: int | None = None,
    offset: int = 0,
    category: str | None = None,
    attributes: Attributes = None,
) -> dict:
    """Template parameters for a kNN query (``size`` defaults to ``k``)."""
    if k < 1:
        raise ConfigError("k must be at least 1")
    num_candidates = num_candidates or max(100, 2 * k)
    if num_candidates < k:
        raise ConfigError("num_candidates must be >= k")
    return {
        "vector": [float(x) for x in vector],
        "k": int(k),
        "num_candidates": int(num_candidates),
        "size": int(size if size is not None else k),
        "from": int(offset),
        **filter_params(category, attributes),
    }
