"""Run the strategy templates against an index and return uniform hits.

Queries are rendered from the same mustache templates the engine stores (see
:mod:`vistag.mappings`), so ``vistag search`` and a storefront calling
``_search/template`` get the same results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import ModuleType
from typing import Mapping, Sequence

from vistag.engine.client import EngineClient
from vistag.errors import EngineError
from vistag.mappings import DocumentSpec, EngineAdapter
from vistag.mappings.install import render_search, search_template_id
from vistag.mappings.strategies import image, keyword, similar, tags
from vistag.search.fusion import FUSIONS


@dataclass
class Hit:
    """One search result."""

    id: str
    score: float
    title: str | None
    source: dict

    def to_dict(self) -> dict:
        """JSON-friendly form (without the vector)."""
        return {"id": self.id, "score": self.score, "title": self.title, "source": self.source}


class Searcher:
    """Queries one index (or alias).

    Args:
        client: the engine.
        index: index or alias name.
        vector_dim: dimension of ``image_vector`` (only used to validate image queries).
    """

    def __init__(self, client: EngineClient, index: str = "products", vector_dim: int | None = None) -> None:
        self.client = client
        self.index = index
        self.adapter = EngineAdapter(client.info())
        self.spec = DocumentSpec(name=index, vector_dim=vector_dim or 1840)

    def body(self, strategy: ModuleType, params: dict) -> dict:
        """The search body a strategy's template renders to."""
        return render_search(self.adapter, self.spec, strategy, params)

    def run(self, strategy: ModuleType, params: dict) -> list[Hit]:
        """Render and run a strategy's query."""
        resp = self.client.search(self.index, self.body(strategy, params))
        return [Hit(h["_id"], float(h["_score"] or 0.0), h.get("_source", {}).get("title"), h.get("_source", {}))
                for h in resp["hits"]["hits"]]

    def run_stored_template(self, strategy: ModuleType, params: dict) -> list[Hit]:
        """Run the same query through the stored search template (as a storefront would)."""
        resp = self.client.request("POST", f"/{self.index}/_search/template",
                                   {"id": search_template_id(self.spec, strategy), "params": params})
        return [Hit(h["_id"], float(h["_score"] or 0.0), h.get("_source", {}).get("title"), h.get("_source", {}))
                for h in resp["hits"]["hits"]]

    def keyword(self, query: str, size: int = 10, offset: int = 0, category: str | None = None,
                attributes: Mapping[str, str] | None = None) -> list[Hit]:
        """BM25 over title and text."""
        return self.run(keyword, keyword.params(query, size, offset, category, attributes))

    def tags(self, weights: Mapping[str, float] | Sequence[str], size: int = 10, offset: int = 0,
             category: str | None = None, attributes: Mapping[str, str] | None = None,
             relations=None, discount: float = 0.5) -> list[Hit]:
        """Products ranked by the sum of (query weight x presence score) over the tags.

        With ``relations`` (a :class:`~vistag.analyzers.relations.TagRelations`), the
        query is expanded first (query-time expansion): related tags join at
        ``discount x weight x relation``.
        """
        return self.run(tags, tags.params(self.expand(weights, relations, discount), size, offset, category, attributes))

    @staticmethod
    def expand(weights: Mapping[str, float] | Sequence[str], relations=None, discount: float = 0.5) -> dict[str, float]:
        """The tag weights of a query, expanded with related tags when ``relations`` is given."""
        weights = dict(weights) if isinstance(weights, Mapping) else {t: 1.0 for t in weights}
        return relations.expand(weights, discount=discount) if relations is not None else weights

    def image(self, vector: Sequence[float], k: int = 10, num_candidates: int | None = None,
              category: str | None = None, attributes: Mapping[str, str] | None = None) -> list[Hit]:
        """Approximate kNN on the image vector, filters applied inside the kNN search."""
        return self.run(image, image.params(vector, k, num_candidates, category=category, attributes=attributes))

    def image_many(self, vectors: Sequence[Sequence[float]], k: int = 10, num_candidates: int | None = None,
                   category: str | None = None, attributes: Mapping[str, str] | None = None) -> list[list[Hit]]:
        """:meth:`image` for many vectors in one ``_msearch`` request (one hit list per vector).

        Raises:
            EngineError: a search of the batch failed.
        """
        if not len(vectors):
            return []
        lines = []
        for vector in vectors:
            lines.append(json.dumps({"index": self.index}))
            lines.append(json.dumps(self.body(image, image.params(vector, k, num_candidates, category=category,
                                                                    attributes=attributes)), separators=(",", ":")))
        resp = self.client.request("POST", "/_msearch", ndjson=("\n".join(lines) + "\n").encode())
        out = []
        for answer in resp["responses"]:
            if "error" in answer:
                raise EngineError(f"kNN search in {self.index} failed: {json.dumps(answer['error'])[:500]}",
                                  answer.get("status"))
            out.append([Hit(h["_id"], float(h["_score"] or 0.0), h.get("_source", {}).get("title"), h.get("_source", {}))
                        for h in answer["hits"]["hits"]])
        return out

    def similar(self, product_id: str, k: int = 10, num_candidates: int | None = None, tag_weight: float = similar.DEFAULT_TAG_WEIGHT,
                category: str | None = None, attributes: Mapping[str, str] | None = None) -> list[Hit]:
        """Products similar to ``product_id`` by image and shared tags, the product itself excluded.

        Raises:
            KeyError: no such product.
        """
        doc = self.client.request("GET", f"/{self.index}/_doc/{product_id}", ok_statuses=(404,),
                                  params={"_source_includes": "image_vector,tag_weights"})
        if not doc.get("found"):
            raise KeyError(f"product {product_id!r} is not in {self.index!r}")
        source = doc["_source"]
        return self.run(similar, similar.params(product_id, source["image_vector"], source.get("tag_weights", {}), k,
                                                num_candidates, tag_weight, category=category, attributes=attributes))

    def hybrid(self, query: str | None = None, tag_weights: Mapping[str, float] | None = None,
               vector: Sequence[float] | None = None, size: int = 10, offset: int = 0, fusion: str = "rrf",
               weights: Mapping[str, float] | None = None, window: int = 100, category: str | None = None,
               attributes: Mapping[str, str] | None = None, relations=None, discount: float = 0.5) -> list[Hit]:
        """BM25 + tags + kNN, each run on its own (filters inside each, kNN included) and
        fused client-side by ``rrf`` or ``weighted`` (min-max normalised) sums.

        Args:
            window: candidates taken from each list (at least ``offset + size``).
            weights: per-list weights, keys ``text``, ``tags``, ``image``.
        """
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}: {', '.join(FUSIONS)}")
        window = max(window, offset + size)
        lists: dict[str, list[Hit]] = {}
        if query:
            lists["text"] = self.keyword(query, size=window, category=category, attributes=attributes)
        if tag_weights:
            lists["tags"] = self.tags(tag_weights, size=window, category=category, attributes=attributes,
                                      relations=relations, discount=discount)
        if vector is not None:
            lists["image"] = self.image(vector, k=window, category=category, attributes=attributes)
        if not lists:
            raise ValueError("a hybrid query needs text, tags or an image")
        by_id = {h.id: h for hits in lists.values() for h in hits}
        fused = FUSIONS[fusion]({name: [(h.id, h.score) for h in hits] for name, hits in lists.items()}, weights=weights)
        return [Hit(doc_id, score, by_id[doc_id].title, by_id[doc_id].source) for doc_id, score in fused[offset:offset + size]]
