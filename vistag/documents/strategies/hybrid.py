"""Hybrid search fused inside the engine: keyword + tags + image kNN in one ``hybrid`` query.

OpenSearch with the neural-search plugin only. The sub-queries are exactly those of
the keyword, tags and image strategies (filters inside each, since ``hybrid``
refuses a filter of its own), and the engine fuses them in a search pipeline:

* ``vistag-hybrid-rrf`` -- the ``score-ranker-processor`` with reciprocal rank
  fusion (``rank_constant`` 60, as vistag's client-side RRF); it is the index's
  default search pipeline, so the stored template needs no pipeline parameter and a
  storefront gets fused results from one call;
* a weighted min-max fusion (``normalization-processor``) is sent inline by
  :meth:`vistag.search.Searcher.hybrid`, with one weight per sub-query present.

A hybrid query sent to an index with no fusion pipeline answers HTTP 200 with
meaningless scores, which is why the default pipeline is set on the index itself.
Paging uses a fixed ``pagination_depth`` (the candidates per sub-query).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vistag.documents.spec import DocumentSpec
from vistag.documents.strategies import image, keyword, tags
from vistag.documents.strategies.common import PAGING, Attributes, filter_params, paging_params
from vistag.engine.adapter import HYBRID_RRF_PIPELINE, RRF_RANK_CONSTANT, EngineAdapter
from vistag.errors import ConfigError

NAME = "hybrid"


def pipelines() -> dict[str, dict]:
    """The search pipelines vistag installs where neural-search is present."""
    return {
        HYBRID_RRF_PIPELINE: {
            "description": "vistag: reciprocal rank fusion of hybrid sub-queries",
            "phase_results_processors": [
                {"score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": RRF_RANK_CONSTANT}}}
            ],
        }
    }


def weighted_pipeline(weights: Sequence[float]) -> dict:
    """An inline pipeline: min-max normalised scores, weighted arithmetic mean."""
    total = sum(weights)
    return {
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {
                        "technique": "arithmetic_mean",
                        "parameters": {"weights": [round(w / total, 6) for w in weights]},
                    },
                }
            }
        ]
    }


def _query_part(source: str) -> str:
    """The ``query`` object of a strategy's template source."""
    head = "{" + PAGING + ',"query":'
    if not source.startswith(head) or not source.endswith("}"):
        raise AssertionError("a strategy template changed shape; update hybrid._query_part")
    return source[len(head) : -1]


def template(adapter: EngineAdapter, spec: DocumentSpec) -> str:
    """``query``, ``tags`` (with ``has_tags``), ``vector`` (with ``has_vector``), ``k``,
    ``num_candidates``, ``pagination_depth``, paging and filters.

    Each sub-query is present only when its input is; a final ``match_none`` keeps
    the list valid JSON and adds nothing to rank fusion.
    """
    if not adapter.hybrid:
        raise ConfigError("hybrid queries inside the engine need OpenSearch with the neural-search plugin")
    return (
        "{" + PAGING + ',"query":{"hybrid":{"pagination_depth":{{pagination_depth}},"queries":['
        "{{#query}}" + _query_part(keyword.template(adapter, spec)) + ",{{/query}}"
        "{{#has_tags}}" + _query_part(tags.template(adapter, spec)) + ",{{/has_tags}}"
        "{{#has_vector}}" + _query_part(image.template(adapter, spec)) + ",{{/has_vector}}"
        '{"match_none":{}}]}}}'
    )


def params(
    query: str | None = None,
    tag_weights: Mapping[str, float] | None = None,
    vector: Sequence[float] | None = None,
    size: int = 10,
    offset: int = 0,
    window: int = 100,
    category: str | None = None,
    attributes: Attributes = None,
) -> dict:
    """Template parameters; ``window`` is the candidates per sub-query (and the paging depth)."""
    window = max(window, offset + size)
    out: dict = {**paging_params(size, offset), **filter_params(category, attributes), "pagination_depth": window}
    if query and query.strip():
        out["query"] = query
    if tag_weights:
        out.update(has_tags=True, tags=tags.params(tag_weights)["tags"])
    if vector is not None:
        out.update(
            has_vector=True,
            **{k: v for k, v in image.params(vector, k=window).items() if k in ("vector", "k", "num_candidates")},
        )
    if not ("query" in out or "has_tags" in out or "has_vector" in out):
        raise ConfigError("a hybrid query needs text, tags or an image")
    return out
