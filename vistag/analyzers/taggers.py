"""What writes a document's tags: the IDW kNN tagger over a reference set vistag
scans, a trained model's heads, or both (the kNN tagger over a reference index the
engine searches is :class:`vistag.search.reference_tagger.EngineKnnDocumentTagger`).

Every tagger maps a batch of embeddings (and the rows' ids and claimed category)
to :class:`DocumentTags`; its ``id`` is recorded in each document as
``model.tagger`` so an index always says which model tagged it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet, TopK, with_neighbour_index
from vistag.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover - torch only with a trained model
    from vistag.models.tagging_model import TaggingModel

#: What can write a document's tags: kNN over a reference set, a trained model's heads, or their average.
TAGGERS = ("knn", "heads", "ensemble")


@dataclass
class DocumentTags:
    """Tags of one document and, from a trained model, its predicted fields.

    Attributes:
        tags: ``(tag, score)`` pairs, best first.
        predicted: the ``predicted`` object of the document (``None`` for kNN only).
    """

    tags: list[tuple[str, float]]
    predicted: dict[str, Any] | None = None


class DocumentTagger(Protocol):
    """Anything that tags a batch of embedded rows."""

    id: str

    def tag(
        self,
        vectors: np.ndarray,
        ids: Sequence[str],
        claimed: Sequence[object],
        exclude_rows: Sequence[int] | None = None,
    ) -> list[DocumentTags]:
        """Tags for each row (``claimed``: the row's own leaf category, may be ``None``;
        ``exclude_rows``: each row's own reference row, when the reference set has no ids).
        """


class KnnDocumentTagger:
    """The IDW kNN tagger over a labelled reference set (the row itself never counts)."""

    def __init__(self, tagger: KnnTagger) -> None:
        self.tagger = tagger
        self.id = f"knn:k={tagger.k}" + ("" if tagger.method == "exact" else f":{tagger.method}")

    def tag(
        self,
        vectors: np.ndarray,
        ids: Sequence[str],
        claimed: Sequence[object],
        exclude_rows: Sequence[int] | None = None,
    ) -> list[DocumentTags]:
        """Tags for each row (see :class:`~vistag.analyzers.taggers.DocumentTagger`)."""
        return [DocumentTags(t) for t in self.tagger.tag(vectors, exclude_ids=list(ids), exclude_rows=exclude_rows)]


@dataclass
class ModelDocumentTagger:
    """A trained :class:`~vistag.models.tagging_model.TaggingModel`, optionally averaged with kNN.

    Tags: ``heads`` keeps the tags above their tuned per-tag thresholds;
    ``ensemble`` averages head probabilities and kNN scores and keeps those >= 0.5
    (the rule ``vistag eval`` measures). Predictions the model rejects (low
    confidence or an outlier image) write no tags or predicted fields. A title-aware
    model (``model.title_column``) also needs each row's title (``titles=``); the kNN
    part compares images only.
    """

    model: TaggingModel
    knn: KnnTagger | None = None
    top_d: int = 10
    id: str = field(init=False)

    def __post_init__(self) -> None:
        mode = "ensemble" if self.knn is not None else "heads"
        self.id = f"{mode}:{self.model.tagger_id}"

    @property
    def title_column(self) -> str | None:
        """The catalog column a title-aware model reads (``None``: images only)."""
        return getattr(self.model, "title_column", None)

    def tag(
        self,
        vectors: np.ndarray,
        ids: Sequence[str],
        claimed: Sequence[object],
        exclude_rows: Sequence[int] | None = None,
        titles: Sequence[object] | None = None,
    ) -> list[DocumentTags]:
        """Tags for each row (see :class:`DocumentTagger`); ``titles``: each row's title, for a title-aware model.

        Raises:
            ValueError: a title-aware model without ``titles``.
        """
        model = self.model
        x = vectors
        if self.title_column:
            if titles is None:
                raise ValueError(f"{model.tagger_id} is title-aware: pass each row's {self.title_column!r} (titles=)")
            x = model.with_titles(vectors, titles)
        pred = model.predict(x, top_k=1)
        fields = model.document_fields(x, pred)
        outliers = model.claimed_type_outliers(x, claimed)
        if self.knn is not None:
            knn = self.knn.score_over(model.tags.classes, vectors, exclude_ids=list(ids), exclude_rows=exclude_rows)
            scores = (pred.tag_probs + knn) / 2
            thresholds = np.full(scores.shape[1], 0.5, np.float32)
        else:
            scores, thresholds = pred.tag_probs, model.tag_thresholds
        out = []
        for i, f in enumerate(fields):
            predicted = {
                "accepted": f["accepted"],
                "claimed_type_outlier": bool(outliers[i]),
                "confidence": f.get("confidence"),
            }
            if not f["accepted"]:
                out.append(DocumentTags([], predicted))
                continue
            keep = np.nonzero(scores[i] >= thresholds)[0]
            keep = keep[np.argsort(-scores[i][keep])][: self.top_d]
            tags = [(model.tags.classes[j], float(scores[i][j])) for j in keep]
            if f["path"]:
                predicted["category"] = " > ".join(f["path"])
            predicted["attributes"] = f["attributes"]
            out.append(DocumentTags(tags, predicted))
        return out


def make_document_tagger(
    name: str,
    reference: ReferenceSet | None,
    model: TaggingModel | None = None,
    *,
    k: int = 10,
    top_d: int = 10,
    topk: TopK | None = None,
    knn_method: str = "auto",
) -> KnnDocumentTagger | ModelDocumentTagger:
    """The document tagger ``name`` (one of :data:`TAGGERS`) names.

    Args:
        name: ``knn``, ``heads`` or ``ensemble``.
        reference: the labelled reference set (for ``knn`` and ``ensemble``).
        model: a trained :class:`~vistag.models.tagging_model.TaggingModel` (for ``heads`` and ``ensemble``).
        k: neighbours per row.
        top_d: tags kept per row.
        topk: a device top-k for the kNN scan (see :mod:`vistag.models.knn_device`).
        knn_method: ``auto``, ``exact`` or ``hnsw`` (see :func:`~vistag.analyzers.knn_tagger.with_neighbour_index`).

    Raises:
        ConfigError: an unknown name, ``heads``/``ensemble`` without a trained model, or kNN without a reference.

    Examples:
        >>> make_document_tagger("knn", ReferenceSet(["a"], np.eye(2, dtype=np.float32)[:1], [["shirts"]])).id
        'knn:k=10'
    """
    if name not in TAGGERS:
        raise ConfigError(f"unknown tagger {name!r}: {', '.join(TAGGERS)}")
    if name != "heads" and reference is None:
        raise ConfigError(f"the {name} tagger needs a labelled reference set")
    knn = None
    if reference is not None and name != "heads":
        knn = with_neighbour_index(KnnTagger(reference, k=k, top_d=top_d, topk=topk), knn_method, topk is not None)
    if name == "knn":
        assert knn is not None
        return KnnDocumentTagger(knn)
    if model is None:
        raise ConfigError(f"the {name} tagger needs a trained model: pass a model directory written by `vistag train`")
    return ModelDocumentTagger(model, knn, top_d=top_d)
