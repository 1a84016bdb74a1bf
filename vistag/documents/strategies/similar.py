"""Similar products: the product's image vector (kNN) plus its own tags, never the product itself.

A storefront reads the product (``GET <index>/_doc/<id>?_source=image_vector,tag_weights``)
and calls this template with its vector and tags; the kNN part and the tag part are
summed by the engine (a ``bool`` ``should`` in OpenSearch, top-level ``knn`` plus
``query`` in Elasticsearch). Tags are scaled by ``tag_weight`` (default 0.2) so the
image decides and shared tags break ties. Filters apply inside the kNN search.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vistag.documents.spec import DocumentSpec
from vistag.documents.strategies import image
from vistag.documents.strategies.common import FILTER_CLAUSES, PAGING, Attributes
from vistag.documents.strategies.image import FIELD as VECTOR
from vistag.documents.strategies.tags import FIELD as TAGS
from vistag.engine.adapter import EngineAdapter

NAME = "similar"
DEFAULT_TAG_WEIGHT = 0.2


def properties(adapter: EngineAdapter, spec: DocumentSpec) -> dict:
    """No fields of its own (it reads ``image_vector`` and ``tag_weights``)."""
    return {}


def template(adapter: EngineAdapter, spec: DocumentSpec) -> str:
    """``vector``, ``tags`` (``{"tag", "weight"}``), ``exclude_id``, ``k``, ``num_candidates`` plus paging and
    filters.
    """
    vector = "{{#toJson}}vector{{/toJson}}"
    exclude = '{"ids":{"values":["{{exclude_id}}"]}}'
    filt = '{"bool":{"filter":[' + FILTER_CLAUSES + '],"must_not":[' + exclude + "]}}"
    tag_clauses = "{{#tags}}" + adapter.feature_clause_template(TAGS) + ",{{/tags}}"
    if adapter.engine == "elasticsearch":
        return (
            "{" + PAGING + ',"knn":{"field":"' + VECTOR + '","query_vector":' + vector + ","
            '"k":{{k}},"num_candidates":{{num_candidates}},"filter":' + filt + "},"
            '"query":{"bool":{"should":[' + tag_clauses + '{"match_none":{}}],"filter":[' + FILTER_CLAUSES + "],"
            '"must_not":[' + exclude + "]}}}"
        )
    knn = (
        '{"knn":{"' + VECTOR + '":{"vector":' + vector + ',"k":{{k}},'
        '"method_parameters":{"ef_search":{{num_candidates}}},"filter":' + filt + "}}}"
    )
    return (
        "{" + PAGING + ',"query":{"bool":{"should":[' + tag_clauses + knn + "],"
        '"minimum_should_match":1,"filter":[' + FILTER_CLAUSES + '],"must_not":[' + exclude + "]}}}"
    )


def params(
    exclude_id: str,
    vector: Sequence[float],
    tags: Mapping[str, float] | None = None,
    k: int = 10,
    num_candidates: int | None = None,
    tag_weight: float = DEFAULT_TAG_WEIGHT,
    size: int | None = None,
    offset: int = 0,
    category: str | None = None,
    attributes: Attributes = None,
) -> dict:
    """Template parameters: the product's id, vector and tag weights (kNN part as :func:`image.params`)."""
    num_candidates = max(num_candidates or max(100, 2 * k), k)
    return {
        **image.params(vector, k, num_candidates, size, offset, category, attributes),
        "exclude_id": str(exclude_id),
        "tags": [
            {"tag": t, "weight": round(float(w) * tag_weight, 6)}
            for t, w in (tags or {}).items()
            if w > 0 and "." not in t
        ],
    }
