"""kNN tags from neighbours the engine finds by HNSW in a labelled reference index."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vistag.analyzers.knn_tagger import idw_tag_scores
from vistag.analyzers.taggers import DocumentTags
from vistag.search.queries import Searcher
from vistag.catalog.vocabulary import tags_from_labels


class EngineKnnDocumentTagger:
    """IDW kNN tags from neighbours the engine finds by HNSW in a labelled reference index.

    For reference sets too large to scan per batch (millions of rows, or a catalog
    already indexed elsewhere): each batch of rows is one ``_msearch`` of kNN
    queries, the row itself is never its own neighbour, and a neighbour's labels
    are read back from its document (category path and attributes, as
    :func:`~vistag.documents.build.build_document` wrote them). Similarities are
    recovered from the engines' cosine scores, ``(1 + cos) / 2``.

    Example:
        >>> tagger = EngineKnnDocumentTagger(Searcher(engine, "labelled"), schema)  # doctest: +SKIP

    Args:
        searcher: a :class:`~vistag.search.queries.Searcher` on the reference index.
        schema: the catalog schema (category levels, tag columns).
        k: neighbours per row.
        top_d: tags kept per row.
        num_candidates: HNSW candidates per query.
        eps: distance floor (as :class:`~vistag.analyzers.knn_tagger.KnnTagger`).
    """

    def __init__(self, searcher: Searcher, schema, k: int = 10, top_d: int = 10, num_candidates: int = 100,
                 eps: float = 1e-4) -> None:
        self.searcher = searcher
        self.schema = schema
        self.k = k
        self.top_d = top_d
        self.num_candidates = max(num_candidates, k + 1)
        self.eps = eps
        self.id = f"knn-engine:{searcher.index}:k={k}"

    def labels_of(self, source: dict) -> list[str]:
        """The tags of a reference document, from its labelled fields."""
        category = source.get("category") or {}
        labels = {column: category.get(f"lvl{i}") for i, column in enumerate(self.schema.category)}
        labels.update(source.get("attributes") or {})
        return tags_from_labels(labels, self.schema.tags)

    def tag(self, vectors: np.ndarray, ids: Sequence[str], claimed: Sequence[object],
            exclude_rows: Sequence[int] | None = None) -> list[DocumentTags]:  # noqa: D102
        answers = self.searcher.image_many(vectors, k=self.k + 1, num_candidates=self.num_candidates)
        out = []
        for own, hits in zip(ids, answers):
            hits = [h for h in hits if h.id != own][: self.k]
            scores = idw_tag_scores([self.labels_of(h.source) for h in hits], [2 * h.score - 1 for h in hits], self.eps)
            top = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[: self.top_d]
            out.append(DocumentTags([(t, s) for t, s in top if s > 0]))
        return out
