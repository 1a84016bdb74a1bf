"""``vistag index``: catalog -> images -> embeddings -> kNN tags -> bulk, with flat memory.

Two passes when the catalog is its own reference set (the default):

1. *reference pass* -- every row is read and its image embedded (through the
   embedding cache) by the :class:`~vistag.models.embedding.BatchEmbedder`
   pipeline (I/O threads, decode processes, batched forward); labelled rows are
   appended to an on-disk reference set; bad rows go to the dead-letter file once;
   one small record per row (image hash and size, reference row) goes to a row log;
2. *index pass* -- rows are read again in lockstep with the row log; vectors come
   from the cache, tags from the kNN tagger in batches of ``knn_batch`` (never the
   row itself as its own neighbour), and documents stream into ``_bulk`` with
   ``bulk_threads`` requests in flight.

With ``reference=`` another catalog, pass 1 runs over that catalog and pass 2
embeds the indexed catalog as it goes. With ``options.reference_index`` there is
no pass 1: a tagger given by the caller (e.g.
:class:`~vistag.search.reference_tagger.EngineKnnDocumentTagger`) finds neighbours
by the engine's kNN search of that labelled index (for millions of rows). Every stage is joined to the next by a
bounded window, so memory holds a few batches of images, a few bulk chunks and one
block of reference vectors, whatever the catalog size.

Modules: :mod:`~vistag.indexer.options` (the run's options and summary),
:mod:`~vistag.indexer.reference_pass` (pass 1), :mod:`~vistag.indexer.index_pass`
(pass 2), :mod:`~vistag.indexer.row_log` (what joins them); this one orchestrates:
:func:`index_catalog` is the front door (the user's client, a model by name),
:func:`run_index` the run itself over ready parts.

Nothing is written to disk unless asked: bad rows come back in the summary unless a
``dead_letter`` file is named, and embeddings are cached on disk only with a
``cache_dir`` (a run keeps its reference vectors, row log and embeddings in a
temporary folder that is deleted when it ends).

Examples:
    >>> from opensearchpy import OpenSearch                                                  # doctest: +SKIP
    >>> summary = index_catalog(OpenSearch("http://127.0.0.1:9200"), "labels.csv", images="images.tar",
    ...                         index="products", schema="fashion-product-images")          # doctest: +SKIP
    >>> summary.ok, summary.indexed                                                          # doctest: +SKIP
    (True, 44072)
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vistag.analyzers.knn_tagger import ReferenceSet
from vistag.analyzers.relations import TagRelations
from vistag.analyzers.taggers import DocumentTagger, make_document_tagger
from vistag.catalog.deadletter import DeadLetters
from vistag.catalog.rows import CatalogSource, catalog_rows, parse_partition
from vistag.catalog.schema import CatalogSchema, as_schema
from vistag.documents.spec import DocumentSpec
from vistag.documents.templates import create_index
from vistag.engine.client import Client, EngineClient, as_engine
from vistag.engine.retry import RetryPolicy
from vistag.errors import ConfigError, EngineUnavailable
from vistag.indexer.index_pass import IndexPass
from vistag.indexer.options import IndexOptions, IndexSummary
from vistag.indexer.reference_pass import build_reference
from vistag.models.embedding import BatchEmbedder, open_batch_embedder

if TYPE_CHECKING:  # pragma: no cover
    from vistag.models.loading import ModelSpec

logger = logging.getLogger(__name__)


def index_catalog(
    client: Client,
    catalog: CatalogSource,
    images: str | Path | None = None,
    index: str = "products",
    *,
    schema: CatalogSchema | str | Path | None = None,
    model: ModelSpec = "efficientnet-lite0",
    tagger: str | None = None,
    reference: CatalogSource | None = None,
    reference_images: str | Path | None = None,
    reference_index: str | None = None,
    relations: TagRelations | str | Path | None = None,
    device: str = "auto",
    batch_size: int = 64,
    input_size: int | None = None,
    weights: str | None = None,
    compile: bool = False,
    workers: int = 4,
    decode_processes: int | None = None,
    cache_dir: str | Path | None = None,
    dead_letter: str | Path | None = None,
    resume: bool = False,
    partition: str | None = None,
    max_pixels: int | None = None,
    retry: RetryPolicy | None = None,
    progress: bool = False,
    **options: Any,
) -> IndexSummary:
    """Embed, tag and index a catalog into ``index`` through the user's client.

    Args:
        client: an ``Elasticsearch`` (8.x/9.x) or ``OpenSearch`` (2.x/3.x) client, or an
            :class:`~vistag.engine.client.EngineClient`.
        catalog: a ``.csv``/``.tsv``/``.jsonl`` file, or an iterable of row dicts (read
            twice: a generator is read into a list).
        images: where relative image references are found: a folder or a ``.tar``.
            References may also be absolute paths or http(s) URLs, and dict rows may
            hold encoded bytes or a PIL image in the image column.
        index: the index (created from vistag's template when missing; templates are
            installed only when they changed).
        schema: which columns feed which fields: a :class:`~vistag.catalog.schema.CatalogSchema`,
            a schema file, or ``"fashion-product-images"``; default ``id``/``title``/``image``.
        model: a backbone name, a model directory from ``vistag train``, or an embedder.
        tagger: ``knn``, ``heads`` or ``ensemble`` (default: ``heads`` with a model
            directory, else ``knn``).
        reference: another labelled catalog to take kNN tags from (default: the catalog itself).
        reference_images: the images of ``reference`` (default: ``images``).
        reference_index: take kNN neighbours from this labelled index by the engine's
            HNSW search instead (reference sets of millions of rows).
        relations: index-time expansion: related tags from these
            :class:`~vistag.analyzers.relations.TagRelations` (or their file) join
            ``tag_weights`` at ``expand_discount`` x score x relation.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: images per forward pass.
        input_size: another input resolution (a backbone name only).
        weights: a local weights file (torchvision backbones).
        compile: ``torch.compile`` the backbone.
        workers: image loading threads.
        decode_processes: image decode processes (default: see
            :func:`~vistag.models.embedding.default_decode_processes`).
        cache_dir: keep embeddings in an on-disk cache there (reruns embed nothing).
        dead_letter: a JSONL file for bad rows; by default they are in ``summary.dead_letters``.
        resume: skip rows whose id is already in the index.
        partition: ``"I/N"``: only the I-th of N disjoint slices of the catalog.
        max_pixels: decompression-bomb guard for the images.
        retry: the backoff of every call to the engine and of bulk items (default
            :class:`~vistag.engine.retry.RetryPolicy`: 8 retries); the client's own
            retries are not used (see :mod:`vistag.engine.retry`).
        progress: show progress bars.
        **options: any other field of :class:`~vistag.indexer.options.IndexOptions`
            (``bulk_threads``, ``chunk_size``, ``k``, ``top_d``, ``pipeline``, ...).

    Returns:
        The :class:`~vistag.indexer.options.IndexSummary`; ``summary.ok`` is True
        when every row was indexed. A run that cannot reach the engine stops with
        ``summary.aborted`` set; call again with ``resume=True``.

    Raises:
        ConfigError: contradictory arguments, an unknown option, a catalog whose
            columns do not match the schema, or a missing reference index.
    """
    from vistag.models.loading import load_model

    schema = as_schema(schema)
    parse_partition(partition)
    engine = as_engine(client, retry)
    loaded = load_model(
        model, device=device, batch_size=batch_size, input_size=input_size, weights=weights, compile=compile
    )
    trained = loaded.tagging
    name = tagger or ("heads" if trained is not None else "knn")
    if name != "knn" and trained is None:
        raise ConfigError(
            f"tagger {name!r} needs a trained model: pass --model (model=) a directory written by `vistag train`"
        )
    if reference_index and (reference is not None or name != "knn"):
        raise ConfigError("reference_index replaces reference and tags by kNN only (no heads or ensemble tagger)")
    policy = retry or engine.retry
    if isinstance(relations, TagRelations):
        options["relations"] = relations
    elif relations is not None:
        options["relations"] = Path(relations)
    opts = index_options(
        index,
        dead_letter,
        options,
        resume=resume,
        progress=progress,
        tagger=name,
        partition=partition,
        batch_size=batch_size,
        max_retries=policy.max_retries,
        initial_backoff=policy.initial_backoff,
        max_backoff=policy.max_backoff,
    )
    engine_tagger = None
    if reference_index:
        from vistag.search.reference_tagger import reference_index_tagger

        engine_tagger = reference_index_tagger(
            engine,
            reference_index,
            schema,
            loaded.embedder.dim,
            k=opts.k,
            top_d=opts.top_d,
            model_id=loaded.embedder.model_id,
        )
    common: dict[str, Any] = {"workers": workers, "processes": decode_processes, "max_pixels": max_pixels}
    with open_batch_embedder(loaded.embedder, images, cache_dir, **common) as batch:
        if reference is None:
            return run_index(engine, catalog, schema, batch, opts, model=trained, tagger=engine_tagger)
        with open_batch_embedder(loaded.embedder, reference_images or images, cache_dir, **common) as ref_batch:
            return run_index(engine, catalog, schema, batch, opts, (reference, schema, ref_batch), model=trained)


def index_options(index: str, dead_letter: str | Path | None, options: Mapping[str, Any], **fixed: Any) -> IndexOptions:
    """:class:`~vistag.indexer.options.IndexOptions` from keyword arguments, refusing unknown ones by name.

    Raises:
        ConfigError: an option :class:`~vistag.indexer.options.IndexOptions` does not have.

    Examples:
        >>> index_options("products", None, {"bulk_threads": 4}).bulk_threads
        4
    """
    known = {f.name for f in fields(IndexOptions)}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)}; IndexOptions has {sorted(known)}")
    taken = sorted(set(options) & set(fixed))
    if taken:  # e.g. max_retries, which retry=RetryPolicy(...) sets: never silently overridden
        raise ConfigError(f"option(s) {taken} are set by the function's own arguments (retry=, resume=, ...)")
    return IndexOptions(index=index, dead_letter=Path(dead_letter) if dead_letter else None, **{**options, **fixed})


def run_index(
    client: EngineClient,
    catalog: CatalogSource,
    schema: CatalogSchema,
    embedder: BatchEmbedder,
    options: IndexOptions,
    reference: tuple[CatalogSource, CatalogSchema, BatchEmbedder] | None = None,
    model: Any = None,
    tagger: DocumentTagger | None = None,
) -> IndexSummary:
    """Index a catalog over ready parts; see the module docstring.

    Args:
        client: the engine.
        catalog: a CSV/JSONL path or an iterable of row dicts.
        schema: its column mapping.
        embedder: images of ``catalog`` -> vectors (with a cache).
        options: tuning.
        reference: another labelled catalog ``(rows, schema, embedder)`` for kNN tags.
        model: a trained :class:`~vistag.models.tagging_model.TaggingModel` for
            ``options.tagger`` ``heads`` or ``ensemble``.
        tagger: a ready tagger that needs no reference pass (required with
            ``options.reference_index``; its ``reference_size`` is reported).

    Returns:
        The summary. When the engine stays unreachable the run stops early with
        ``aborted`` set and every count filled in; run again with ``resume=True``.

    Raises:
        ConfigError: ``options.reference_index`` without a tagger.
    """
    started = time.monotonic()
    summary = IndexSummary(
        index=options.index, dead_letter_path=str(options.dead_letter) if options.dead_letter else None
    )
    if options.reference_index and tagger is None:
        raise ConfigError("options.reference_index needs a tagger (EngineKnnDocumentTagger) from the caller")
    backbone = embedder.embedder.config
    spec = DocumentSpec(
        name=options.template or options.index,
        vector_dim=backbone.embedding_dim,
        category_levels=max(1, len(schema.category)),
        vector_quantization=options.vector_quantization,
    )
    dead_letters = DeadLetters(options.dead_letter)
    computed0, hits0 = embedder.computed, embedder.cache_hits
    model_doc = {"name": backbone.name, "version": backbone.model_id, "embedding_dim": backbone.embedding_dim}
    rows = catalog_rows(catalog, schema, options.limit, options.partition)
    ref_set: ReferenceSet | None = None
    counted: tuple[int, int] | None = None
    try:
        create_index(client, spec, options.index)
        with tempfile.TemporaryDirectory(prefix="vistag-index-") as tmp:
            work = Path(tmp)
            t0 = time.monotonic()
            row_log = None
            if tagger is not None:
                summary.reference_size = int(getattr(tagger, "reference_size", 0) or 0)
            elif reference is None:
                with open(work / "rows.jsonl", "w", encoding="utf-8") as log:
                    ref_set, summary.read = build_reference(
                        rows,
                        schema,
                        embedder,
                        work,
                        batch_size=options.batch_size,
                        dead_letters=dead_letters,
                        row_log=log,
                        progress=options.progress,
                    )
                row_log = work / "rows.jsonl"
                # Pass 2 reads back from the cache what pass 1 embedded: count each image once.
                counted = (embedder.computed - computed0, embedder.cache_hits - hits0)
            else:
                ref_rows, ref_schema, ref_embedder = reference
                ref_set, _ = build_reference(
                    catalog_rows(ref_rows, ref_schema),
                    ref_schema,
                    ref_embedder,
                    work,
                    batch_size=options.batch_size,
                    progress=options.progress,
                    name="reference",
                )
            summary.timings["reference_s"] = round(time.monotonic() - t0, 2)
            if ref_set is not None:
                summary.reference_size = len(ref_set)
                t_graph = time.monotonic()
                tagger = make_document_tagger(
                    options.tagger,
                    ref_set,
                    model,
                    k=options.k,
                    top_d=options.top_d,
                    topk=_device_topk(embedder),
                    knn_method=options.knn_method,
                )
                summary.timings["neighbour_index_s"] = round(time.monotonic() - t_graph, 2)
            assert tagger is not None
            if summary.reference_size == 0 and options.tagger != "heads":
                logger.warning("the reference set is empty: documents get no kNN tags")
            relations = None
            if options.relations is not None:
                relations = (
                    options.relations
                    if isinstance(options.relations, TagRelations)
                    else TagRelations.load(options.relations)
                )
                model_doc["expansion"] = f"relations x {options.expand_discount}"
            summary.tagger = model_doc["tagger"] = tagger.id
            t1 = time.monotonic()
            IndexPass(
                client,
                rows,
                schema,
                embedder,
                tagger,
                options,
                summary,
                dead_letters,
                model_doc,
                row_log=row_log,
                relations=relations,
            ).run()
            summary.timings["index_s"] = round(time.monotonic() - t1, 2)
            client.refresh(options.index)
    except EngineUnavailable as exc:
        summary.aborted = str(exc)
        logger.error("indexing stopped: %s (run again with resume to continue)", exc)
    finally:
        if ref_set is not None and hasattr(ref_set.vectors, "close"):
            ref_set.vectors.close()
        dead_letters.close()
        summary.dead_lettered = dead_letters.count
        summary.dead_letters = dead_letters.records
        if counted is not None:  # pass 1 saw every image once; pass 2 only reads its vectors back
            summary.embedded = embedder.computed - computed0
            summary.cache_hits = counted[1]
        else:
            summary.embedded, summary.cache_hits = embedder.computed - computed0, embedder.cache_hits - hits0
        summary.seconds = round(time.monotonic() - started, 2)
    return summary


def with_options(options: IndexOptions, **changes: Any) -> IndexOptions:
    """A copy of ``options`` with ``changes`` (e.g. another index).

    Examples:
        >>> with_options(IndexOptions(index="a"), index="b").index
        'b'
    """
    return replace(options, **changes)


def _device_topk(embedder: BatchEmbedder) -> Any:
    """The model device's top-k for the kNN scan (CUDA), or ``None`` for numpy."""
    device = getattr(embedder.embedder, "device", None)  # a torch device: torch is loaded already
    if device is None:
        return None
    from vistag.models.knn_device import torch_topk

    return torch_topk(device)
