"""Run the strategy templates against an index and return uniform hits.

Queries are rendered from the same mustache templates the engine stores (see
:mod:`vistag.mappings`), so ``vistag search`` and a storefront calling
``_search/template`` get the same results.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Mapping, Sequence

from vistag.engine.client import EngineClient
from vistag.mappings import DocumentSpec, EngineAdapter
from vistag.mappings.install import render_search, search_template_id
from vistag.mappings.strategies import image, keyword, tags


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
        self.spec = DocumentSpec(name=index, vector_dim=vector_dim or 1280)

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
             category: str | None = None, attributes: Mapping[str, str] | None = None) -> list[Hit]:
        """Products ranked by the sum of (query weight x presence score) over the tags."""
        return self.run(tags, tags.params(weights, size, offset, category, attributes))

    def image(self, vector: Sequence[float], k: int = 10, num_candidates: int | None = None,
              category: str | None = None, attributes: Mapping[str, str] | None = None) -> list[Hit]:
        """Approximate kNN on the image vector, filters applied inside the kNN search."""
        return self.run(image, image.params(vector, k, num_candidates, category=category, attributes=attributes))
