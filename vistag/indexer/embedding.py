"""Load, decode and embed catalog images in batches, through the embedding cache."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vistag.indexer.images import ImageLoadError, ImageStore, LoadedImage
from vistag.models.cache import EmbeddingCache

logger = logging.getLogger(__name__)


@dataclass
class ImageMeta:
    """What a document records about its image (and the cache key)."""

    source: str
    sha256: str
    width: int
    height: int

    def to_doc(self) -> dict:
        """The ``image`` object of the document."""
        return {"source": self.source, "sha256": self.sha256, "width": self.width, "height": self.height}


@dataclass
class Embedded:
    """Result for one image: a vector and its metadata, or an error reason."""

    vector: np.ndarray | None
    meta: ImageMeta | None
    error: str | None = None


class BatchEmbedder:
    """Turns image references into embeddings, skipping images already in the cache.

    Args:
        embedder: a :class:`vistag.models.embedder.ImageEmbedder` (or anything with
            ``model_id``, ``dim``, ``preprocess`` and ``embed_arrays``).
        store: where image bytes come from.
        cache: the embedding cache of ``embedder.model_id`` (``None`` disables it).
        workers: threads that read, decode and preprocess images in parallel.
    """

    def __init__(self, embedder, store: ImageStore, cache: EmbeddingCache | None, workers: int = 4) -> None:
        self.embedder = embedder
        self.store = store
        self.cache = cache
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vistag-image")
        self.computed = 0
        self.cache_hits = 0

    def close(self) -> None:
        """Stop the worker threads."""
        self.pool.shutdown(wait=True)

    def _load(self, ref: str | None) -> tuple[LoadedImage | None, np.ndarray | None, str | None]:
        if not ref:
            return None, None, "no image reference in the row"
        try:
            loaded = self.store.load(ref)
        except ImageLoadError as exc:
            return None, None, str(exc)
        if self.cache is not None and loaded.sha256 in self.cache:
            return loaded, None, None
        try:
            return loaded, self.embedder.preprocess(loaded.image), None
        except Exception as exc:  # noqa: BLE001 - any decoder/convert failure is a bad image
            return None, None, f"image {ref!r} could not be preprocessed: {type(exc).__name__}: {exc}"

    def embed_refs(self, refs: Sequence[str | None], known: Sequence[ImageMeta | None] | None = None) -> list[Embedded]:
        """Embed the images behind ``refs``.

        Args:
            refs: image references.
            known: metadata already known for some refs (their vectors are in the
                cache, so they are not read again).
        """
        known = list(known) if known is not None else [None] * len(refs)
        results: list[Embedded | None] = [None] * len(refs)
        todo = [i for i, meta in enumerate(known) if meta is None or self.cache is None or meta.sha256 not in self.cache]
        todo_set = set(todo)
        for i, meta in enumerate(known):
            if meta is not None and i not in todo_set:
                results[i] = Embedded(None, meta)
        loaded = list(self.pool.map(self._load, [refs[i] for i in todo]))
        arrays, array_pos = [], []
        for i, (image, array, error) in zip(todo, loaded):
            if error:
                results[i] = Embedded(None, None, error)
                continue
            meta = ImageMeta(image.source, image.sha256, image.width, image.height)
            results[i] = Embedded(None, meta)
            if array is not None:
                arrays.append(array)
                array_pos.append(i)
        if arrays:
            vectors = self.embedder.embed_arrays(arrays)
            self.computed += len(arrays)
            for pos, vec in zip(array_pos, vectors):
                results[pos].vector = vec
            if self.cache is not None:
                self.cache.put_many([results[p].meta.sha256 for p in array_pos], vectors)
        # Fill vectors from the cache for everything not computed just now.
        need = [i for i, r in enumerate(results) if r.meta is not None and r.vector is None]
        if need:
            vectors, found = self.cache.get_many([results[i].meta.sha256 for i in need])
            self.cache_hits += sum(found)
            for i, vec, ok in zip(need, vectors, found):
                results[i].vector = vec if ok else None
                if not ok:
                    results[i].error = "embedding missing from the cache"
        return results  # type: ignore[return-value]
