"""kNN tags from neighbours the engine finds by HNSW in a labelled reference index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vistag.analyzers.knn_tagger import MIN_TAG_SCORE, idw_tag_scores, rank_tags
from vistag.analyzers.taggers import DocumentTags
from vistag.catalog.schema import CatalogSchema
from vistag.catalog.vocabulary import tags_from_labels
from vistag.engine.client import Client
from vistag.errors import ConfigError
from vistag.search.queries import Searcher


class EngineKnnDocumentTagger:
    """IDW kNN tags from neighbours the engine finds by HNSW in a labelled reference index.

    For reference sets too large to scan per batch (millions of rows, or a catalog
    already indexed elsewhere): each batch of rows is one ``_msearch`` of kNN
    queries, the row itself is never its own neighbour, and a neighbour's labels
    are read back from its document (category path and attributes, as
    :func:`~vistag.documents.build.build_document` wrote them). Similarities are
    recovered from the engines' cosine scores, ``(1 + cos) / 2``.

    Examples:
        >>> tagger = EngineKnnDocumentTagger(Searcher(engine, "labelled"), schema)  # doctest: +SKIP

    Args:
        searcher: a :class:`~vistag.search.queries.Searcher` on the reference index.
        schema: the catalog schema (category levels, tag columns).
        k: neighbours per row.
        top_d: tags kept per row.
        num_candidates: HNSW candidates per query.
        eps: distance floor (as :class:`~vistag.analyzers.knn_tagger.KnnTagger`).
        min_score: tags scoring below this are dropped (as the kNN tagger).
    """

    def __init__(
        self,
        searcher: Searcher,
        schema: CatalogSchema,
        k: int = 10,
        top_d: int = 10,
        num_candidates: int = 100,
        eps: float = 1e-4,
        min_score: float = MIN_TAG_SCORE,
    ) -> None:
        self.searcher = searcher
        self.schema = schema
        self.k = k
        self.top_d = top_d
        self.num_candidates = max(num_candidates, k + 1)
        self.eps = eps
        self.min_score = min_score
        self.reference_size = 0
        self.id = f"knn-engine:{searcher.index}:k={k}"

    def labels_of(self, source: dict) -> list[str]:
        """The tags of a reference document, from its labelled fields."""
        category = source.get("category") or {}
        labels = {column: category.get(f"lvl{i}") for i, column in enumerate(self.schema.category)}
        labels.update(source.get("attributes") or {})
        return tags_from_labels(labels, self.schema.tags)

    def tag(
        self,
        vectors: np.ndarray,
        ids: Sequence[str],
        claimed: Sequence[object],
        exclude_rows: Sequence[int] | None = None,
    ) -> list[DocumentTags]:
        """Tags for each row (see :class:`~vistag.analyzers.taggers.DocumentTagger`)."""
        answers = self.searcher.image_many(list(vectors), k=self.k + 1, num_candidates=self.num_candidates)
        out = []
        for own, hits in zip(ids, answers):
            hits = [h for h in hits if h.id != own][: self.k]
            scores = idw_tag_scores([self.labels_of(h.source) for h in hits], [2 * h.score - 1 for h in hits], self.eps)
            out.append(DocumentTags(rank_tags(scores, self.top_d, self.min_score)))
        return out


def reference_index_tagger(
    client: Client,
    index: str,
    schema: CatalogSchema,
    dim: int | None = None,
    *,
    k: int = 10,
    top_d: int = 10,
    model_id: str | None = None,
) -> EngineKnnDocumentTagger:
    """The kNN tagger over a labelled reference index the engine searches by HNSW.

    Args:
        client: an ``Elasticsearch``/``OpenSearch`` client or an :class:`~vistag.engine.client.EngineClient`.
        index: the labelled index.
        schema: its catalog schema.
        dim: the vector dimension (default: read from the index mapping).
        k: neighbours per row.
        top_d: tags kept per row.
        model_id: the network that embeds the rows to tag; refused unless the reference
            index was embedded by the same one (``None``: not checked).

    Raises:
        NotFoundError: the index does not exist.
        ConfigError: the reference index was embedded by another network than ``model_id``.
    """
    searcher = Searcher(client, index, dim)  # raises NotFoundError for a missing index
    if model_id is not None:
        _, version = searcher.index_network()
        if version and version != model_id:
            raise ConfigError(
                f"reference index {index!r} was embedded by {version}, the rows to tag by {model_id}: "
                "their vectors are not comparable; index the reference catalog with the same model"
            )
    tagger = EngineKnnDocumentTagger(searcher, schema, k=k, top_d=top_d)
    tagger.reference_size = searcher.client.count(index)
    return tagger
