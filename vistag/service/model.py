"""What the inference service runs: one embedder and, optionally, one document tagger.

The tags and their weights are written exactly as ``vistag index`` writes them into
a document (``tags``, ``tag_weights`` rounded to 6 digits, ``predicted`` with the
category path and attributes of a trained model), so an engine-side ingest
pipeline that calls the service stores what ``vistag index`` would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from vistag.analyzers.taggers import DocumentTagger
from vistag.documents.build import tag_weights
from vistag.documents.spec import category_fields
from vistag.engine.client import Client

if TYPE_CHECKING:  # pragma: no cover
    from vistag.models.loading import ModelSpec

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

    Examples:
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
        trained model, ``predicted`` (with ``category`` and ``attributes``).
        """
        if self.tagger is None:
            raise RuntimeError("this service has no tagger: start it with --reference, --reference-index or --model")
        matrix = np.stack(vectors).astype(np.float32, copy=False)
        n = len(matrix)
        out = []
        for row in self.tagger.tag(matrix, [""] * n, [None] * n):  # no ids: the images are not catalog rows
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


def build_inference_model(
    model: ModelSpec = "efficientnet-lite0",
    *,
    reference: Any = None,
    reference_images: str | Path | None = None,
    reference_index: str | None = None,
    client: Client | None = None,
    schema: Any = None,
    k: int = 10,
    top_d: int = 10,
    device: str = "auto",
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    compile: bool = False,
) -> InferenceModel:
    """What ``vistag service`` runs: an embedder and at most one tag source.

    Args:
        model: a backbone name, or a trained (image-only) model directory whose heads then tag.
        reference: a labelled catalog whose kNN tags ``/v1/tag`` gives.
        reference_images: the images of ``reference``.
        reference_index: a labelled index the engine searches for the kNN neighbours (needs ``client``).
        client: the engine holding ``reference_index``.
        schema: the schema of the reference.
        k: neighbours for kNN tags.
        top_d: tags kept per image.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: images per forward pass.
        cache_dir: the embedding cache of the reference catalog.
        compile: ``torch.compile`` the backbone.

    Raises:
        ConfigError: more than one tag source, a title-aware model, or ``reference_index`` without a client.

    Examples:
        >>> model = build_inference_model("tiny-random", device="cpu")  # doctest: +SKIP
        >>> model.dim                                                     # doctest: +SKIP
        64
    """
    from vistag.analyzers.taggers import ModelDocumentTagger
    from vistag.catalog.schema import as_schema
    from vistag.engine.client import EngineClient, as_engine
    from vistag.engine.retry import RetryPolicy
    from vistag.errors import ConfigError, VistagError
    from vistag.models.loading import image_only, load_model

    loaded = load_model(model, device=device, batch_size=batch_size, compile=compile)
    trained = image_only(loaded.tagging, "the inference service")
    sources = [reference is not None, bool(reference_index), trained is not None]
    if sum(sources) > 1:
        raise ConfigError("give one tag source: a reference catalog, a reference index or a trained model")
    tagger: DocumentTagger | None = None
    ready: Callable[[], str | None] | None = None
    if trained is not None:
        tagger = ModelDocumentTagger(trained, None, top_d=top_d)
    elif reference is not None:
        from vistag.analyzers.tagger import Tagger

        tagger = Tagger(
            reference, reference_images, schema=schema, model=loaded.embedder, k=k, top_d=top_d, cache_dir=cache_dir
        ).document_tagger()
    elif reference_index:
        if client is None:
            raise ConfigError("a reference index needs the client of the engine that holds it")
        from vistag.search.reference_tagger import reference_index_tagger

        engine = as_engine(client)
        probe = EngineClient(engine.raw, retry=RetryPolicy(max_retries=0), label=engine.label)
        tagger = reference_index_tagger(
            engine,
            reference_index,
            as_schema(schema),
            loaded.embedder.dim,
            k=k,
            top_d=top_d,
            model_id=loaded.embedder.model_id,
        )

        def ready() -> str | None:
            try:
                probe.cluster_health(timeout="2s")
            except VistagError as exc:
                return f"the engine holding {reference_index!r} does not answer: {exc}"
            return None

    return InferenceModel(loaded.embedder, tagger, ready)
