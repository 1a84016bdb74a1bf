"""What the inference service runs: one embedder and, optionally, one document tagger.

The tags and their weights are written exactly as ``vistag index`` writes them into
a document (``tags``, ``tag_weights`` rounded to 6 digits, ``predicted`` with the
category path and attributes of a trained model), so an engine-side ingest
pipeline that calls the service stores what ``vistag index`` would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from vistag.analyzers.taggers import DocumentTagger
from vistag.documents.build import tag_weights
from vistag.documents.spec import category_fields

logger = logging.getLogger(__name__)


@dataclass
class InferenceModel:
    """An embedder (``prepare`` + ``embed_prepared``, see
    :class:`vistag.models.embedder.ImageEmbedder`) and an optional tagger.

    Attributes:
        embedder: the image embedder.
        tagger: tags embeddings (kNN over a reference set or index, or a model's heads).
        ready_check: returns ``None`` when what the tagger needs (an engine) is
            reachable, else the reason.

    Example:
        >>> model = InferenceModel(create_embedder("efficientnet-lite0"))  # doctest: +SKIP
        >>> model.embed([model.prepare(Image.open("a.jpg"))])[0].shape     # doctest: +SKIP
        (1840,)
    """

    embedder: Any
    tagger: DocumentTagger | None = None
    ready_check: Callable[[], str | None] | None = None
    info: dict = field(init=False)

    def __post_init__(self) -> None:
        config = self.embedder.config
        self.info = {"name": config.name, "version": config.model_id, "embedding_dim": config.embedding_dim}
        if self.tagger is not None:
            self.info["tagger"] = self.tagger.id

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.embedder.dim)

    def prepare(self, image: Image.Image) -> np.ndarray:
        """The model's input array for one image (resize + pad, uint8); thread-safe."""
        return self.embedder.prepare(image)

    def embed(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """One forward for a batch of prepared arrays; one unit vector per array."""
        return list(self.embedder.embed_prepared(arrays))

    def tag(self, vectors: Sequence[np.ndarray]) -> list[dict]:
        """Document fields for each vector: ``tags``, ``tag_weights`` and, from a
        trained model, ``predicted`` (with ``category`` and ``attributes``)."""
        if self.tagger is None:
            raise RuntimeError("this service has no tagger: start it with --reference, --reference-index or --model")
        matrix = np.stack(vectors).astype(np.float32, copy=False)
        n = len(matrix)
        out = []
        for row in self.tagger.tag(matrix, [None] * n, [None] * n):
            weights = tag_weights(row.tags)  # exactly as vistag index writes them
            result: dict = {"tags": list(weights), "tag_weights": weights}
            if row.predicted is not None:
                result["predicted"] = row.predicted
                # the document's `category` object (empty when the model rejected its prediction), always
                # present so an ingest pipeline can map it field by field
                result["category_fields"] = {}
                if row.predicted.get("category"):
                    result["category"] = row.predicted["category"].split(" > ")
                    result["category_fields"] = category_fields(result["category"])
                if row.predicted.get("attributes"):
                    result["attributes"] = row.predicted["attributes"]
            out.append(result)
        return out

    def not_ready(self) -> str | None:
        """``None`` when the service can answer, else why not."""
        return self.ready_check() if self.ready_check is not None else None
