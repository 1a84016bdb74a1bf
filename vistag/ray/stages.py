"""The stages of the Ray index run, each a function of a batch (``dict`` of numpy columns) for ``map_batches``.

* :func:`load_images` (CPU tasks): read, hash and decode each row's image to the model's input
  array; an image whose vector is in the embedding cache is only read and hashed.
* :class:`EmbedImages` (an actor pool; one GPU per actor when there are GPUs): the model once
  per actor, a forward pass per batch, new vectors added to the cache.
* :class:`TagRows` (an actor pool): the kNN tagger, its reference set taken once from the
  object store, and the documents as ``vistag index`` builds them.

A row that fails at a stage keeps going with its ``stage`` and ``error`` set, and lands in the
dead letters at the sink: no stage drops a row, so the sink sees every row exactly once.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from vistag.catalog.schema import CatalogSchema
from vistag.images import ImageStore
from vistag.models.cache import EmbeddingCache

Batch = dict[str, np.ndarray]


@functools.lru_cache(maxsize=4)
def _store(images: str | None, max_pixels: int | None) -> ImageStore:
    """One image store per worker process and source (a ``.tar`` is indexed once, not per batch)."""
    return ImageStore(images, max_pixels=max_pixels) if max_pixels else ImageStore(images)


@functools.lru_cache(maxsize=4)
def _cache(root: str, model_id: str, dim: int) -> EmbeddingCache:
    return EmbeddingCache(Path(root), model_id, dim)


def _strings(column: np.ndarray) -> list[str]:
    return [str(v) for v in column]


class LoadImages:
    """Read, hash and decode the image of each row (CPU).

    Adds the columns ``source``, ``sha256``, ``width``, ``height``, ``cached`` (the cache has its
    vector: nothing decoded) and ``pixels`` (the model's uint8 input array as bytes; empty when cached
    or failed).

    Args:
        images: where relative image references are found (a folder or a ``.tar`` every node can read).
        schema: the catalog's column mapping.
        config: the backbone's preprocessing config.
        cache: ``(root, model id, dim)`` of the embedding cache, or ``None``.
        max_pixels: decompression-bomb guard.
    """

    def __init__(
        self,
        images: str | None,
        schema: CatalogSchema,
        config: Any,
        cache: tuple[str, str, int] | None,
        max_pixels: int | None,
    ) -> None:
        self.images = images
        self.schema = schema
        self.config = config
        self.cache = cache
        self.max_pixels = max_pixels

    def __call__(self, batch: Batch) -> Batch:
        """One batch of row records in, the same rows with their images out."""
        from vistag.models.decode_pool import decode_and_prepare
        from vistag.models.embedding import read_image

        store = _store(self.images, self.max_pixels)
        cache = _cache(*self.cache) if self.cache else None
        if cache is not None:
            cache.refresh()
        n = len(batch["line"])
        stage, error = _strings(batch["stage"]), _strings(batch["error"])
        source, sha, pixels = [""] * n, [""] * n, [b""] * n
        width, height = np.zeros(n, np.int32), np.zeros(n, np.int32)
        cached = np.zeros(n, bool)
        for i, text in enumerate(batch["row"]):
            if error[i]:
                continue
            read = read_image(store, self.schema.image_ref(orjson.loads(text)), cache)
            if read.error:
                stage[i], error[i] = "image", read.error
            elif read.meta is not None:
                meta = read.meta
                source[i], sha[i], width[i], height[i] = meta.source, meta.sha256, meta.width, meta.height
                cached[i] = True
            else:
                assert read.data is not None
                prepared = decode_and_prepare(read.data, read.name, self.config, read.sha256, store.max_pixels)
                if prepared.error or prepared.array is None:
                    stage[i], error[i] = "image", prepared.error or "no image"
                else:
                    source[i], sha[i], width[i], height[i] = read.name, read.sha256, prepared.width, prepared.height
                    pixels[i] = np.ascontiguousarray(prepared.array, dtype=np.uint8).tobytes()
        return {
            **batch,
            "stage": np.array(stage, dtype=object),
            "error": np.array(error, dtype=object),
            "source": np.array(source, dtype=object),
            "sha256": np.array(sha, dtype=object),
            "width": width,
            "height": height,
            "cached": cached,
            "pixels": np.array(pixels, dtype=object),
        }


def load_images(batch: Batch, **kwargs: Any) -> Batch:
    """:class:`LoadImages` as a function, for Ray's CPU tasks (``fn_kwargs`` are its arguments)."""
    return LoadImages(**kwargs)(batch)


class EmbedImages:
    """The model in one actor: decoded arrays -> unit vectors (``vector`` column; ``computed`` marks
    the rows this actor ran through the network). Cached rows read their vector from the cache.

    Args:
        model: what :func:`~vistag.models.loading.load_model` takes (a backbone name or a model directory).
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: images per forward pass.
        cache: ``(root, model id, dim)`` of the embedding cache, or ``None``.
        shape: the model's ``(input size, vector dimension)`` (the driver read them from the model).
        threads: torch CPU threads in this actor (``None``: torch's default); the actor's process is
            Ray's, so vistag sets it here and nowhere else.
        load: other keyword arguments of :func:`~vistag.models.loading.load_model`.
    """

    def __init__(
        self,
        model: Any,
        device: str,
        batch_size: int,
        cache: tuple[str, str, int] | None,
        shape: tuple[int, int],
        threads: int | None = None,
        **load: Any,
    ) -> None:
        self.model, self.device, self.batch_size, self.threads, self.load = model, device, batch_size, threads, load
        self._embedder: Any = None  # loaded at the first image to embed: a warm cache needs no model
        self.size, self.dim = shape
        self.cache = EmbeddingCache(Path(cache[0]), cache[1], cache[2]) if cache else None

    @property
    def embedder(self) -> Any:
        """The model, loaded once per actor on first use."""
        if self._embedder is None:
            from vistag.models.loading import load_model, set_cpu_threads

            if self.threads:
                set_cpu_threads(self.threads)
            self._embedder = load_model(
                self.model, device=self.device, batch_size=self.batch_size, **self.load
            ).embedder
        return self._embedder

    def __call__(self, batch: Batch) -> Batch:
        """Rows with ``pixels`` in, rows with ``vector`` out (``pixels`` dropped)."""
        n = len(batch["line"])
        vectors = np.zeros((n, self.dim), dtype=np.float32)
        error, stage = _strings(batch["error"]), _strings(batch["stage"])
        fresh = [i for i, data in enumerate(batch["pixels"]) if data is not None and len(data) > 0]
        if fresh:
            shape = (self.size, self.size, 3)
            arrays = [np.frombuffer(batch["pixels"][i], dtype=np.uint8).reshape(shape) for i in fresh]
            out = self.embedder.embed_prepared(arrays)
            vectors[fresh] = out
            if self.cache is not None:
                self.cache.put_many([str(batch["sha256"][i]) for i in fresh], out)
        hits = [i for i in range(n) if batch["cached"][i] and not error[i]]
        if hits:
            if self.cache is None:
                raise RuntimeError("a row marked cached without an embedding cache")  # LoadImages never does so
            self.cache.refresh()
            found_vectors, found = self.cache.get_many([str(batch["sha256"][i]) for i in hits])
            for j, i in enumerate(hits):
                if found[j]:
                    vectors[i] = found_vectors[j]
                else:
                    stage[i], error[i] = "image", "embedding missing from the cache"
        computed = np.zeros(n, bool)
        computed[fresh] = True
        out_batch = {k: v for k, v in batch.items() if k != "pixels"}
        out_batch.update(
            vector=vectors,
            computed=computed,
            stage=np.array(stage, dtype=object),
            error=np.array(error, dtype=object),
        )
        return out_batch


class TagRows:
    """The kNN tagger in one actor: vectors -> tags -> the documents ``vistag index`` writes.

    Output columns: ``line``, ``id``, ``row`` (kept for the dead letters), ``stage``, ``error``,
    ``computed``, ``cached``, ``vector`` and ``source_json`` (the document without its vector).

    Args:
        tagger: an object-store reference to a :class:`~vistag.analyzers.taggers.DocumentTagger`,
            wrapped in a one-item list so Ray hands the reference, not the value, to the constructor.
        schema: the catalog's column mapping.
        model_doc: the ``model`` object of every document.
        relations: :class:`~vistag.analyzers.relations.TagRelations` for index-time expansion, or ``None``.
        expand_discount: the weight factor of related tags.
        threads: faiss search threads in this actor (``None``: the graph's own setting, one).
    """

    def __init__(
        self,
        tagger: list[Any],
        schema: CatalogSchema,
        model_doc: dict[str, Any],
        relations: Any = None,
        expand_discount: float = 0.5,
        threads: int | None = None,
    ) -> None:
        import ray

        self.tagger = ray.get(tagger[0])
        index = getattr(getattr(self.tagger, "tagger", None), "index", None)
        if threads and index is not None:
            index.search_threads = threads  # the actor reserved these CPUs
        self.schema = schema
        self.model_doc = model_doc
        self.relations = relations
        self.expand_discount = expand_discount

    def __call__(self, batch: Batch) -> Batch:
        """Rows with vectors in, rows with their document out."""
        from vistag.documents.build import build_document

        n = len(batch["line"])
        error = _strings(batch["error"])
        docs = [""] * n
        good = [i for i in range(n) if not error[i]]
        if good:
            leaf = self.schema.category[-1] if self.schema.category else None
            fields = {i: orjson.loads(batch["row"][i]) for i in good}
            ids = [str(batch["id"][i]) for i in good]
            tagged = self.tagger.tag(
                np.asarray(batch["vector"][good], dtype=np.float32),
                ids,
                [fields[i].get(leaf) if leaf else None for i in good],
            )
            for i, row_id, row_tags in zip(good, ids, tagged):
                related = None
                if self.relations is not None and row_tags.tags:
                    related = self.relations.expand(dict(row_tags.tags), discount=self.expand_discount)
                image = {
                    "source": str(batch["source"][i]),
                    "sha256": str(batch["sha256"][i]),
                    "width": int(batch["width"][i]),
                    "height": int(batch["height"][i]),
                }
                doc = build_document(
                    row_id,
                    fields[i],
                    self.schema,
                    tags=row_tags.tags,
                    vector=[],
                    image=image,
                    model=self.model_doc,
                    predicted=row_tags.predicted,
                    related=related,
                )
                doc.pop("image_vector", None)
                doc.pop("_id", None)
                docs[i] = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()
        keep = ("line", "id", "row", "stage", "computed", "cached", "vector")
        out = {k: batch[k] for k in keep}
        out.update(error=np.array(error, dtype=object), source_json=np.array(docs, dtype=object))
        return out
