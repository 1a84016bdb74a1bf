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
(pass 2), :mod:`~vistag.indexer.row_log` (what joins them); this one orchestrates.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet
from vistag.analyzers.taggers import DocumentTagger, KnnDocumentTagger, ModelDocumentTagger
from vistag.engine.client import EngineClient
from vistag.errors import EngineUnavailable
from vistag.catalog.rows import CatalogRow, MalformedRow, read_catalog
from vistag.catalog.deadletter import DeadLetters
from vistag.models.embedding import BatchEmbedder
from vistag.indexer.index_pass import IndexPass
from vistag.indexer.options import IndexOptions, IndexSummary, in_partition, parse_partition
from vistag.indexer.reference_pass import build_reference
from vistag.catalog.schema import CatalogSchema
from vistag.documents import DocumentSpec, create_index

logger = logging.getLogger(__name__)

def catalog_rows(source: str | Path | Iterable[Mapping[str, Any]], schema: CatalogSchema,
                 limit: int | None = None, partition: str | None = None) -> Callable[[], Iterator[CatalogRow | MalformedRow]]:
    """A function returning the catalog's rows afresh on each call (the passes read them twice).

    A file is read again each time; a list or tuple of dicts is iterated again; any
    other iterable (a generator) is read into a list once. With ``partition``
    (``"I/N"``) only that slice's rows come back (a malformed row without an id is
    reported by the partition its line number falls in).
    """
    if not isinstance(source, (str, Path, Sequence)):
        source = list(source)
    part = parse_partition(partition)

    def rows() -> Iterator[CatalogRow | MalformedRow]:
        it = read_catalog(source, schema)
        if part is not None:
            it = (r for r in it if in_partition(r.id if r.id else f"line:{r.line}", part))
        return islice(it, limit) if limit else it

    return rows


def make_tagger(options: IndexOptions, reference: ReferenceSet, model=None, topk=None) -> DocumentTagger:
    """The document tagger ``options.tagger`` names.

    Args:
        options: tuning.
        reference: the labelled reference set.
        model: a trained model for ``heads``/``ensemble``.
        topk: a device top-k for the kNN scan (see :mod:`vistag.models.knn_device`).

    Raises:
        ValueError: ``heads``/``ensemble`` without a trained model, or an unknown name.
    """
    if options.tagger == "knn":
        return KnnDocumentTagger(KnnTagger(reference, k=options.k, top_d=options.top_d, topk=topk))
    if options.tagger not in ("heads", "ensemble"):
        raise ValueError(f"unknown tagger {options.tagger!r}: knn, heads or ensemble")
    if model is None:
        raise ValueError(f"--tagger {options.tagger} needs a trained model: pass --model MODEL_DIR")
    knn = KnnTagger(reference, k=options.k, top_d=options.top_d, topk=topk) if options.tagger == "ensemble" else None
    return ModelDocumentTagger(model, knn, top_d=options.top_d)


def index_catalog(
    client: EngineClient,
    catalog: str | Path | Iterable[Mapping[str, Any]],
    schema: CatalogSchema,
    embedder: BatchEmbedder,
    options: IndexOptions,
    reference: tuple[str | Path | Iterable[Mapping[str, Any]], CatalogSchema, BatchEmbedder] | None = None,
    model=None,
    tagger: DocumentTagger | None = None,
) -> IndexSummary:
    """Index a catalog; see the module docstring.

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
    """
    started = time.monotonic()
    summary = IndexSummary(index=options.index, dead_letter_path=str(options.dead_letter) if options.dead_letter else None)
    if options.reference_index and tagger is None:
        raise ValueError("options.reference_index needs a tagger (EngineKnnDocumentTagger) from the caller")
    backbone = embedder.embedder.config
    spec = DocumentSpec(name=options.template or options.index, vector_dim=backbone.embedding_dim,
                        category_levels=max(1, len(schema.category)), vector_quantization=options.vector_quantization)
    dead_letters = DeadLetters(options.dead_letter)
    computed0, hits0 = embedder.computed, embedder.cache_hits
    model_doc = {"name": backbone.name, "version": backbone.model_id, "embedding_dim": backbone.embedding_dim}
    rows = catalog_rows(catalog, schema, options.limit, options.partition)
    ref_set = None
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
                    ref_set, summary.read = build_reference(rows, schema, embedder, work, batch_size=options.batch_size,
                                                            dead_letters=dead_letters, row_log=log,
                                                            progress=options.progress)
                row_log = work / "rows.jsonl"
            else:
                ref_rows, ref_schema, ref_embedder = reference
                ref_set, _ = build_reference(catalog_rows(ref_rows, ref_schema), ref_schema, ref_embedder, work,
                                             batch_size=options.batch_size, progress=options.progress, name="reference")
            summary.timings["reference_s"] = round(time.monotonic() - t0, 2)
            if ref_set is not None:
                summary.reference_size = len(ref_set)
                tagger = make_tagger(options, ref_set, model, topk=_device_topk(embedder))
            if summary.reference_size == 0 and options.tagger != "heads":
                logger.warning("the reference set is empty: documents get no kNN tags")
            relations = None
            if options.relations:
                from vistag.analyzers.relations import TagRelations

                relations = TagRelations.load(options.relations)
                model_doc["expansion"] = f"relations x {options.expand_discount}"
            summary.tagger = model_doc["tagger"] = tagger.id
            t1 = time.monotonic()
            IndexPass(client, rows, schema, embedder, tagger, options, summary, dead_letters, model_doc,
                      row_log=row_log, relations=relations).run()
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
        summary.embedded = embedder.computed - computed0
        summary.cache_hits = embedder.cache_hits - hits0
        summary.seconds = round(time.monotonic() - started, 2)
    return summary


def _device_topk(embedder: BatchEmbedder):
    """The model device's top-k for the kNN scan (CUDA), or ``None`` for numpy."""
    device = getattr(embedder.embedder, "device", None)  # a torch device: torch is loaded already
    if device is None:
        return None
    from vistag.models.knn_device import torch_topk

    return torch_topk(device)
