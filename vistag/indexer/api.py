"""vistag's Python front door: index a catalog, tag images, search, with the client you already have.

Three verbs, each taking the user's own ``elasticsearch.Elasticsearch`` or
``opensearchpy.OpenSearch`` object (its hosts, auth, TLS, SigV4 signer and retry
settings apply to every request vistag sends, bulk threads included)::

    import vistag
    from opensearchpy import OpenSearch
    client = OpenSearch("http://127.0.0.1:9200")
    summary = vistag.index_catalog(client, "catalog.csv", images="images/", index="products")
    hits = vistag.Searcher(client, "products").image("photo.jpg", k=10)
    tags = vistag.Tagger(reference="catalog.csv", images="images/").tag(["a.jpg", pil_image, raw_bytes])

Nothing is written to disk unless asked: bad rows come back in the summary unless a
``dead_letter`` file is named, and embeddings are cached on disk only with a
``cache_dir``. (A run keeps its reference vectors, row log and embeddings in a
temporary folder that is deleted when it ends.)
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from vistag.engine.client import as_engine
from vistag.indexer.pipeline import IndexOptions, IndexSummary
from vistag.catalog.schema import CatalogSchema

logger = logging.getLogger(__name__)

def _schema(schema: CatalogSchema | str | Path | None) -> CatalogSchema:
    if schema is None:
        return CatalogSchema()
    if isinstance(schema, CatalogSchema):
        return schema
    return CatalogSchema.load(schema)


def _embedder(model: str | Any, device: str, batch_size: int) -> Any:
    if not isinstance(model, str):
        return model  # an ImageEmbedder the caller made
    from vistag.models import create_embedder

    return create_embedder(model, device=device, batch_size=batch_size)


def _cache(embedder: Any, cache_dir: str | Path | None) -> Any:
    if cache_dir is None:
        return None
    from vistag.models.cache import EmbeddingCache

    return EmbeddingCache(Path(cache_dir), embedder.model_id, embedder.dim)


def index_catalog(
    client: Any,
    catalog: str | Path | Iterable[Mapping[str, Any]],
    images: str | Path | None = None,
    index: str = "products",
    *,
    schema: CatalogSchema | str | Path | None = None,
    model: str | Any = "efficientnet-lite0",
    device: str = "auto",
    cache_dir: str | Path | None = None,
    dead_letter: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    **options: Any,
) -> IndexSummary:
    """Embed, tag and index a catalog into ``index`` through the user's client.

    Rows are read twice (once to build the kNN reference set of labelled rows, once
    to index), so a file or a list works best; a generator is read into a list.

    Args:
        client: an ``Elasticsearch`` (8.x/9.x) or ``OpenSearch`` (2.x/3.x) client.
        catalog: a ``.csv``/``.tsv``/``.jsonl`` file, or an iterable of row dicts.
        images: where relative image references are found: a folder or a ``.tar``.
            References may also be absolute paths or http(s) URLs, and dict rows may
            hold encoded bytes or a PIL image in the image column.
        index: the index (created from vistag's template when missing; templates are
            installed only when they changed).
        schema: which columns feed which fields: a :class:`CatalogSchema`, a schema
            file, or ``"fashion-product-images"``; default ``id``/``title``/``image``.
        model: a backbone name, or an ``ImageEmbedder``.
        device: ``auto``, ``cpu`` or ``cuda``.
        cache_dir: keep embeddings in an on-disk cache there (reruns embed nothing).
        dead_letter: a JSONL file for bad rows; by default they are in ``summary.dead_letters``.
        resume: skip rows whose id is already in the index.
        progress: show progress bars.
        **options: any other field of :class:`~vistag.indexer.pipeline.IndexOptions`
            (``bulk_threads``, ``chunk_size``, ``k``, ``top_d``, ``pipeline``, ``max_retries``, ...).

    Returns:
        The :class:`~vistag.indexer.pipeline.IndexSummary`; ``summary.ok`` is True
        when every row was indexed. A run that cannot reach the engine stops with
        ``summary.aborted`` set; call again with ``resume=True``.

    Example:
        >>> from elasticsearch import Elasticsearch                                        # doctest: +SKIP
        >>> summary = index_catalog(Elasticsearch("http://127.0.0.1:9200"), [{"id": "1", "title": "Red dress",
        ...                         "image": "1.jpg"}], images="images/", index="products")  # doctest: +SKIP
        >>> summary.indexed                                                                 # doctest: +SKIP
        1
    """
    from vistag.indexer.pipeline import index_catalog as run

    opts = _index_options(index, dead_letter, options, resume=resume, progress=progress)
    embedder = _embedder(model, device, opts.batch_size)
    with _batch_embedder(embedder, images, cache_dir) as batch_embedder:
        return run(as_engine(client), catalog, _schema(schema), batch_embedder, opts)


def _index_options(index: str, dead_letter: str | Path | None, options: Mapping[str, Any], **fixed: Any) -> IndexOptions:
    """IndexOptions from keyword arguments, refusing unknown ones by name."""
    known = {f.name for f in fields(IndexOptions)}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; IndexOptions has {sorted(known)}")
    return IndexOptions(index=index, dead_letter=Path(dead_letter) if dead_letter else None, **fixed, **options)


@contextmanager
def _batch_embedder(embedder: Any, images: str | Path | None, cache_dir: str | Path | None) -> Iterator[Any]:
    """The embedding pipeline over ``images``; without a ``cache_dir`` the cache lives in a
    temporary folder (it still spares a second forward pass within the run)."""
    from vistag.images import ImageStore
    from vistag.models.embedding import BatchEmbedder

    with tempfile.TemporaryDirectory(prefix="vistag-cache-") as scratch:
        cache = _cache(embedder, cache_dir or scratch)
        with ImageStore(images) as store, BatchEmbedder(embedder, store, cache) as batch_embedder:
            yield batch_embedder


def sync(
    client: Any,
    catalog: str | Path | Iterable[Mapping[str, Any]],
    images: str | Path | None = None,
    index: str = "products",
    *,
    schema: CatalogSchema | str | Path | None = None,
    model: str | Any = "efficientnet-lite0",
    device: str = "auto",
    cache_dir: str | Path | None = None,
    dead_letter: str | Path | None = None,
    dry_run: bool = False,
    **options: Any,
) -> Any:
    """Make ``index`` equal to ``catalog``, doing only what changed (see :mod:`vistag.indexer.sync`).

    New rows are indexed, rows with a new image re-embedded and re-tagged, other
    changed rows rewritten without embedding, rows that left the catalog deleted,
    unchanged rows not touched. Arguments as :func:`index_catalog`.

    Returns:
        The :class:`~vistag.indexer.sync.SyncSummary` (``added``, ``retagged``,
        ``updated``, ``deleted``, ``unchanged``, ``failed``).

    Example:
        >>> vistag.sync(client, "today.csv", images="images/", index="products").deleted  # doctest: +SKIP
        14
    """
    from vistag.indexer.sync import sync_catalog
    from vistag.search.queries import Searcher
    from vistag.search.reference_tagger import EngineKnnDocumentTagger

    engine = as_engine(client)
    schema = _schema(schema)
    opts = _index_options(index, dead_letter, options)
    embedder = _embedder(model, device, opts.batch_size)

    def make_tagger() -> Any:
        tagger = EngineKnnDocumentTagger(Searcher(engine, index, embedder.dim), schema, k=opts.k, top_d=opts.top_d)
        tagger.reference_size = engine.count(index)
        return tagger

    with _batch_embedder(embedder, images, cache_dir) as batch_embedder:
        return sync_catalog(engine, catalog, schema, batch_embedder, opts, make_tagger, dry_run=dry_run)


class Tagger:
    """Tags images by inverse-distance-weighted kNN over a labelled reference catalog; no engine needed.

    Args:
        reference: the labelled catalog (file or iterable of row dicts).
        images: where the reference catalog's images are (folder or ``.tar``).
        schema: the reference catalog's schema (its ``tags`` columns give the labels).
        model: a backbone name or an ``ImageEmbedder``.
        k: neighbours per image.
        top_d: tags kept per image.
        device: ``auto``, ``cpu`` or ``cuda``.
        cache_dir: an on-disk embedding cache (none by default).

    Example:
        >>> tagger = Tagger(reference="labels.csv", images="images.tar", schema="fashion-product-images")  # doctest: +SKIP
        >>> tagger.tag(["photo.jpg"])[0]                                                               # doctest: +SKIP
        {'tshirts': 0.93, 'men': 0.9, 'casual': 0.81, ...}
    """

    def __init__(self, reference: str | Path | Iterable[Mapping[str, Any]], images: str | Path | None = None, *,
                 schema: CatalogSchema | str | Path | None = None, model: str | Any = "efficientnet-lite0",
                 k: int = 10, top_d: int = 10, device: str = "auto", batch_size: int = 64,
                 cache_dir: str | Path | None = None) -> None:
        self.reference = reference if isinstance(reference, (str, Path, Sequence)) else list(reference)
        self.images = images
        self.schema = _schema(schema)
        self.embedder = _embedder(model, device, batch_size)
        self.k, self.top_d, self.cache_dir = k, top_d, cache_dir
        self._tagger = None

    def _knn(self) -> Any:
        if self._tagger is None:
            import numpy as np

            from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet
            from vistag.images import ImageStore
            from vistag.models.embedding import BatchEmbedder
            from vistag.indexer.pipeline import catalog_rows
            from vistag.indexer.reference_pass import build_reference

            with tempfile.TemporaryDirectory(prefix="vistag-tagger-") as tmp, ImageStore(self.images) as store, \
                    BatchEmbedder(self.embedder, store, _cache(self.embedder, self.cache_dir or tmp)) as batch_embedder:
                on_disk, _ = build_reference(catalog_rows(self.reference, self.schema), self.schema, batch_embedder,
                                             Path(tmp))
                vectors = np.array(on_disk.vectors[:len(on_disk)], dtype=np.float32)  # into memory: the file goes
                if hasattr(on_disk.vectors, "close"):
                    on_disk.vectors.close()
                reference = ReferenceSet(on_disk.ids, vectors, on_disk.tags)
            self._tagger = KnnTagger(reference, k=self.k, top_d=self.top_d)
        return self._tagger

    def document_tagger(self) -> Any:
        """The kNN tagger in the form the indexer and the inference service use
        (:class:`~vistag.analyzers.taggers.KnnDocumentTagger`); embeds the reference
        catalog on first use."""
        from vistag.analyzers.taggers import KnnDocumentTagger

        return KnnDocumentTagger(self._knn())

    def tag(self, images: Sequence[Any]) -> list[dict[str, float]]:
        """Tags with scores, best first, for each image (a path, URL, bytes or PIL image).

        Raises:
            ConfigError: an image cannot be read or decoded (the message names it).
        """
        from vistag.errors import ConfigError
        from vistag.images import ImageLoadError, ImageStore

        tagger = self._knn()
        decoded = []
        with ImageStore() as store:
            for i, image in enumerate(images):
                try:
                    decoded.append(store.load(image).image)
                except ImageLoadError as exc:
                    raise ConfigError(f"image {i}: {exc}") from None
        vectors = self.embedder.embed_images(decoded)
        return [dict(tags) for tags in tagger.tag(vectors)]
