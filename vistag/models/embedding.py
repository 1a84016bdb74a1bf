"""Read, decode and embed catalog images in a pipeline, through the embedding cache.

Examples:
    >>> embedder = create_embedder("tiny-random", device="cpu")                           # doctest: +SKIP
    >>> with open_batch_embedder(embedder, "images/") as batch:                            # doctest: +SKIP
    ...     [res.vector.shape for _, res in batch.embed_stream([("a", "1.jpg", None)])]
    [(64,)]
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from vistag.images import ImageLoadError, ImageRef, ImageStore, image_size, sha256_of
from vistag.models.cache import EmbeddingCache
from vistag.models.decode_pool import DecodePool

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class ImageMeta:
    """What a document records about its image (and the cache key)."""

    source: str
    sha256: str
    width: int
    height: int

    def to_doc(self) -> dict[str, Any]:
        """The ``image`` object of the document."""
        return {"source": self.source, "sha256": self.sha256, "width": self.width, "height": self.height}


@dataclass
class Embedded:
    """Result for one image: a vector and its metadata, or an error reason."""

    vector: np.ndarray | None
    meta: ImageMeta | None
    error: str | None = None


@dataclass
class ReadImage:
    """One image read and hashed: its bytes to decode, or its meta when the cache has its vector, or an error."""

    name: str = ""
    sha256: str = ""
    data: bytes | None = None
    meta: ImageMeta | None = None
    error: str | None = None


def read_image(store: ImageStore, ref: ImageRef | None, cache: EmbeddingCache | None = None) -> ReadImage:
    """Read and hash one image; stop there when ``cache`` has its vector (its size read from the header).

    ``ref`` is a path or URL, or an in-memory image (bytes or a PIL image; see
    :meth:`~vistag.images.ImageStore.read`). Never raises for a bad image: the reason is in ``error``.
    A cached image is held to the store's pixel limit too, as a decode would be.
    """
    if ref is None or (isinstance(ref, str) and not ref):
        return ReadImage(error="no image reference in the row")
    try:
        data = store.read(ref)
        name = ref if isinstance(ref, str) else f"<{type(ref).__name__} image>"
        sha = sha256_of(data)  # empty bytes are never cached: the decoder reports them
        if cache is not None and sha in cache:
            width, height = image_size(data, name)
            if width * height > store.max_pixels:
                raise ImageLoadError(f"image {name!r} is {width}x{height}, over the {store.max_pixels}-pixel limit")
            return ReadImage(name, sha, meta=ImageMeta(name, sha, width, height))
    except ImageLoadError as exc:
        return ReadImage(error=str(exc))
    return ReadImage(name, sha, data)


def default_decode_processes(device_type: str = "cpu") -> int:
    """Decode processes for a device: on CPU the model needs the cores (1 per 4 cores,
    none below 4: a 2-core CPU decodes faster in threads, measured by
    ``benchmarks/bench_pipeline.py``); on a GPU decoding is the bottleneck (all cores but two).
    """
    cores = os.cpu_count() or 1
    return max(1, cores - 2) if device_type == "cuda" else cores // 4


class BatchEmbedder:
    """Turns image references into embeddings, skipping images already in the cache.

    :meth:`embed_stream` is a pipeline: I/O threads read bytes and hash them (cache
    hits stop there), decode processes prepare the misses, and the calling thread
    runs the model on full batches while the next ``prefetch`` images are being
    read and decoded. At most ``prefetch`` images are in flight, so memory stays
    flat whatever the catalog size.

    Args:
        embedder: a :class:`vistag.models.embedder.ImageEmbedder` (or anything with
            ``model_id``, ``dim``, ``config``, ``batch_size`` and ``embed_prepared``).
        store: where image bytes come from.
        cache: the embedding cache of ``embedder.model_id`` (``None`` disables it).
        workers: I/O threads (reads, downloads, hashing).
        processes: decode worker processes; ``None`` picks
            :func:`default_decode_processes`, 0 decodes in the I/O threads.
        prefetch: images in flight ahead of the model (default 4 batches).
    """

    def __init__(
        self,
        embedder: Any,
        store: ImageStore,
        cache: EmbeddingCache | None,
        workers: int = 4,
        processes: int | None = None,
        prefetch: int | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.cache = cache
        self.batch_size = int(getattr(embedder, "batch_size", 64))
        self.prefetch = prefetch or 4 * self.batch_size
        if processes is None:
            device = getattr(getattr(embedder, "device", None), "type", "cpu")
            processes = default_decode_processes(device)
        self.decoder = DecodePool(embedder.config, processes, max_pixels=store.max_pixels)
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, workers, 2 * self.decoder.processes), thread_name_prefix="vistag-image"
        )
        self.computed = 0
        self.cache_hits = 0

    def close(self) -> None:
        """Stop the worker threads and processes."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.decoder.close()

    def __enter__(self) -> BatchEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self, ref: ImageRef | None) -> tuple[ImageMeta | None, np.ndarray | None, str | None]:
        """Read, hash and (on a cache miss) decode one image: (meta, uint8 array or None, error)."""
        read = read_image(self.store, ref, self.cache)
        if read.error or read.data is None:
            return read.meta, None, read.error
        prepared = self.decoder.decode(read.data, read.name, read.sha256)
        if prepared.error:
            return None, None, prepared.error
        return ImageMeta(read.name, read.sha256, prepared.width, prepared.height), prepared.array, None

    def embed_stream(self, items: Iterable[tuple[T, Any, ImageMeta | None]]) -> Iterator[tuple[T, Embedded]]:
        """Embed a stream of ``(tag, image ref, known meta or None)``; yield ``(tag, Embedded)`` in input order.

        A known meta whose vector is cached is not read again. Vectors computed here
        are added to the cache.
        """
        pending: deque = deque()
        source = iter(items)
        group: list[tuple[T, Embedded, np.ndarray | None]] = []
        arrays_in_group = 0
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.prefetch:
                try:
                    tag, ref, meta = next(source)
                except StopIteration:
                    exhausted = True
                    break
                if meta is not None and self.cache is not None and meta.sha256 in self.cache:
                    pending.append((tag, None, meta, None))
                elif not ref:
                    pending.append((tag, None, None, "no image reference in the row"))
                else:
                    pending.append((tag, self.pool.submit(self._load, ref), None, None))
            if not pending:
                break
            tag, future, meta, error = pending.popleft()
            array = None
            if future is not None:
                meta, array, error = future.result()
            group.append((tag, Embedded(None, meta, error), array))
            arrays_in_group += array is not None
            if arrays_in_group >= self.batch_size or len(group) >= self.prefetch:
                yield from self._finish(group)
                group, arrays_in_group = [], 0
        if group:
            yield from self._finish(group)

    def _finish(self, group: list[tuple[T, Embedded, np.ndarray | None]]) -> Iterator[tuple[T, Embedded]]:
        """Run the model on the group's prepared arrays, fill cached vectors, yield in order."""
        fresh = [(res, array) for _, res, array in group if array is not None]
        if fresh:
            vectors = self.embedder.embed_prepared([array for _, array in fresh])
            self.computed += len(fresh)
            for (res, _), vec in zip(fresh, vectors):
                res.vector = vec
            if self.cache is not None:
                self.cache.put_many([res.meta.sha256 for res, _ in fresh if res.meta is not None], vectors)
        need = [res for _, res, _ in group if res.meta is not None and res.vector is None]
        if need:
            if self.cache is None:
                raise RuntimeError("no vector and no cache")  # cannot happen: without a cache every image is decoded
            vectors, found = self.cache.get_many([res.meta.sha256 for res in need if res.meta is not None])
            self.cache_hits += sum(found)
            for res, vec, ok in zip(need, vectors, found):
                if ok:
                    res.vector = vec
                else:
                    res.error = "embedding missing from the cache"
        for tag, res, _ in group:
            yield tag, res


@contextmanager
def open_batch_embedder(
    embedder: Any,
    images: str | Path | ImageStore | None = None,
    cache_dir: str | Path | None = None,
    *,
    workers: int = 4,
    processes: int | None = None,
    max_pixels: int | None = None,
    max_bytes: int | None = None,
) -> Iterator[BatchEmbedder]:
    """A :class:`BatchEmbedder` over ``images`` for the length of a ``with`` block.

    Args:
        embedder: an :class:`~vistag.models.embedder.ImageEmbedder`.
        images: where relative image references are found (a folder or a ``.tar``), or
            an :class:`~vistag.images.ImageStore` the caller opened.
        cache_dir: keep the embeddings in an on-disk cache there (one folder per model
            id below it); without one they live in a temporary folder that is deleted
            at the end (it still spares a second forward pass within the run).
        workers: image loading threads.
        processes: decode processes (``None``: :func:`default_decode_processes`).
        max_pixels: decompression-bomb guard (default :data:`vistag.images.decoding.MAX_PIXELS`).
        max_bytes: largest encoded image read.
    """
    limits: dict[str, Any] = {k: v for k, v in (("max_pixels", max_pixels), ("max_bytes", max_bytes)) if v}
    with tempfile.TemporaryDirectory(prefix="vistag-cache-") as scratch:
        dtype = getattr(embedder, "cache_dtype", np.float32)
        cache = EmbeddingCache(Path(cache_dir or scratch), embedder.model_id, embedder.dim, dtype)
        store = images if isinstance(images, ImageStore) else ImageStore(images, **limits)
        try:
            with BatchEmbedder(embedder, store, cache, workers=workers, processes=processes) as batch:
                yield batch
        finally:
            if store is not images:
                store.close()
