"""Tag images with no engine: inverse-distance-weighted kNN over a labelled reference catalog embedded on first use.

Examples:
    >>> tagger = Tagger(reference="labels.csv", images="images.tar", schema="fashion-product-images")  # doctest: +SKIP
    >>> tagger.tag(["photo.jpg"])[0]                                                               # doctest: +SKIP
    {'tshirts': 0.93, 'men': 0.9, 'casual': 0.81, ...}
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vistag.analyzers.knn_tagger import MIN_TAG_SCORE, KnnTagger, ReferenceSet
from vistag.analyzers.reference import embed_reference
from vistag.analyzers.taggers import KnnDocumentTagger
from vistag.catalog.rows import catalog_rows
from vistag.catalog.schema import CatalogSchema, as_schema
from vistag.errors import ImageLoadError

if TYPE_CHECKING:  # pragma: no cover
    from vistag.models.loading import ModelSpec


class Tagger:
    """Tags images by inverse-distance-weighted kNN over a labelled reference catalog; no engine needed.

    Args:
        reference: the labelled catalog (file or iterable of row dicts).
        images: where the reference catalog's images are (folder or ``.tar``).
        schema: the reference catalog's schema (its ``tags`` columns give the labels).
        model: a backbone name or an ``ImageEmbedder``.
        k: neighbours per image.
        top_d: tags kept per image.
        min_score: tags scoring below this are dropped (:data:`~vistag.analyzers.knn_tagger.MIN_TAG_SCORE`).
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: images per forward pass.
        cache_dir: an on-disk embedding cache (none by default).
    """

    def __init__(
        self,
        reference: str | Path | Iterable[Mapping[str, Any]],
        images: str | Path | None = None,
        *,
        schema: CatalogSchema | str | Path | None = None,
        model: ModelSpec = "efficientnet-lite0",
        k: int = 10,
        top_d: int = 10,
        min_score: float = MIN_TAG_SCORE,
        device: str = "auto",
        batch_size: int = 64,
        cache_dir: str | Path | None = None,
    ) -> None:
        from vistag.models.loading import load_model

        self.reference = reference if isinstance(reference, (str, Path, Sequence)) else list(reference)
        self.images = images
        self.schema = as_schema(schema)
        self.embedder = load_model(model, device=device, batch_size=batch_size).embedder
        self.k, self.top_d, self.min_score, self.cache_dir = k, top_d, min_score, cache_dir
        self._tagger: KnnTagger | None = None

    def _knn(self) -> KnnTagger:
        if self._tagger is None:
            from vistag.models.embedding import open_batch_embedder

            with (
                tempfile.TemporaryDirectory(prefix="vistag-tagger-") as tmp,
                open_batch_embedder(self.embedder, self.images, self.cache_dir) as batch,
            ):
                on_disk, _ = embed_reference(catalog_rows(self.reference, self.schema), self.schema, batch, Path(tmp))
                vectors = np.array(on_disk.vectors[: len(on_disk)], dtype=np.float32)  # into memory: the file goes
                if hasattr(on_disk.vectors, "close"):
                    on_disk.vectors.close()
                reference = ReferenceSet(on_disk.ids, vectors, on_disk.tags)
            self._tagger = KnnTagger(reference, k=self.k, top_d=self.top_d, min_score=self.min_score)
        return self._tagger

    def document_tagger(self) -> KnnDocumentTagger:
        """The kNN tagger in the form the indexer and the inference service use
        (:class:`~vistag.analyzers.taggers.KnnDocumentTagger`); embeds the reference
        catalog on first use.
        """
        return KnnDocumentTagger(self._knn())

    def tag(self, images: Sequence[Any]) -> list[dict[str, float]]:
        """Tags with scores, best first, for each image (a path, URL, bytes or PIL image).

        Raises:
            ImageLoadError: an image cannot be read or decoded (the message names it by position).
        """
        from vistag.images import ImageStore

        tagger = self._knn()
        decoded = []
        with ImageStore() as store:
            for i, image in enumerate(images):
                try:
                    decoded.append(store.load(image).image)
                except ImageLoadError as exc:
                    raise ImageLoadError(f"image {i}: {exc}") from None
        vectors = self.embedder.embed_images(decoded)
        return [dict(tags) for tags in tagger.tag(vectors)]
