"""``vistag index``: catalog -> images -> embeddings -> kNN tags -> bulk, with bounded memory.

Two passes when the catalog is its own reference set (the default):

1. *reference pass* -- every row is read, its image decoded and embedded (through
   the embedding cache); labelled rows form the kNN reference set; bad rows go to
   the dead-letter file once;
2. *index pass* -- rows are read again in batches; vectors come from the cache,
   tags from the kNN tagger (never the row itself as its own neighbour), and
   documents stream into ``_bulk``.

With ``reference=`` another catalog, pass 1 runs over that catalog and pass 2
embeds the indexed catalog as it goes. Memory holds one batch of images, one bulk
chunk, and the reference vectors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet
from vistag.analyzers.tags import tags_from_labels
from vistag.engine.client import EngineClient
from vistag.errors import EngineUnavailable
from vistag.indexer.bulk import RETRY_STATUSES, streaming_bulk
from vistag.indexer.catalog import CatalogRow, MalformedRow, read_catalog
from vistag.indexer.deadletter import DeadLetterWriter
from vistag.indexer.documents import build_document
from vistag.indexer.embedding import BatchEmbedder, ImageMeta
from vistag.indexer.schema import CatalogSchema
from vistag.indexer.taggers import DocumentTagger, KnnDocumentTagger, ModelDocumentTagger
from vistag.mappings import DocumentSpec, create_index

logger = logging.getLogger(__name__)


@dataclass
class IndexOptions:
    """Tuning of an indexing run (CLI flags map one to one)."""

    index: str = "products"
    batch_size: int = 64
    chunk_size: int = 500
    max_chunk_bytes: int = 10 * 1024 * 1024
    k: int = 10
    top_d: int = 10
    resume: bool = False
    dead_letter: Path = Path("dead-letter.jsonl")
    progress: bool = True
    max_retries: int = 8
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    limit: int | None = None
    tagger: str = "knn"
    relations: Path | None = None
    expand_discount: float = 0.5
    template: str | None = None  # index template / alias name when ``index`` is a versioned index


@dataclass
class IndexSummary:
    """What happened; ``ok`` is False when any row failed or was dead-lettered."""

    read: int = 0
    indexed: int = 0
    skipped_existing: int = 0
    failed: int = 0
    dead_lettered: int = 0
    embedded: int = 0
    cache_hits: int = 0
    reference_size: int = 0
    seconds: float = 0.0
    aborted: str | None = None
    dead_letter_path: str | None = None
    index: str = ""
    tagger: str = ""
    timings: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every good row is indexed and nothing was dead-lettered."""
        return self.failed == 0 and self.dead_lettered == 0 and self.aborted is None

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        out = dict(self.__dict__)
        out["ok"] = self.ok
        return out


def _rows(path: Path, schema: CatalogSchema, limit: int | None) -> Iterator[CatalogRow | MalformedRow]:
    rows = read_catalog(path, schema)
    return islice(rows, limit) if limit else rows


def _batches(iterable, size: int):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def build_reference(
    path: Path, schema: CatalogSchema, embedder: BatchEmbedder, options: IndexOptions,
    dead_letter: DeadLetterWriter | None, summary: IndexSummary | None,
) -> tuple[ReferenceSet, dict[str, ImageMeta], set[int]]:
    """Embed every row of a catalog; return (reference set, id -> image meta, bad lines).

    Bad rows are dead-lettered when ``dead_letter`` is given, else only logged.
    """
    ids: list[str] = []
    tags: list[list[str]] = []
    shas: list[str] = []
    metas: dict[str, ImageMeta] = {}
    bad: set[int] = set()
    total = sum(1 for _ in _rows(path, schema, options.limit))
    bar = tqdm(total=total, desc="embed", unit="img", disable=not options.progress, leave=False)
    for batch in _batches(_rows(path, schema, options.limit), options.batch_size):
        good = []
        for row in batch:
            if isinstance(row, MalformedRow):
                bad.add(row.line)
                if dead_letter:
                    dead_letter.write(row.line, row.id, "read", row.reason, row.raw)
                else:
                    logger.warning("reference %s line %d: %s", path, row.line, row.reason)
            else:
                good.append(row)
        results = embedder.embed_refs([schema.image_ref(r.fields) for r in good])
        for row, res in zip(good, results):
            if res.error or res.meta is None:
                bad.add(row.line)
                if dead_letter:
                    dead_letter.write(row.line, row.id, "image", res.error or "no image", row.fields)
                else:
                    logger.warning("reference %s line %d: %s", path, row.line, res.error)
                continue
            metas[row.id] = res.meta
            row_tags = tags_from_labels(row.fields, schema.tags)
            if row_tags:
                ids.append(row.id)
                tags.append(row_tags)
                shas.append(res.meta.sha256)
        bar.update(len(batch))
    bar.close()
    if summary is not None:
        summary.read = total
    vectors, found = embedder.cache.get_many(shas) if shas else (np.zeros((0, embedder.embedder.dim), np.float32), [])
    if not all(found):
        raise RuntimeError("reference embeddings are missing from the cache")
    return ReferenceSet(ids, vectors, tags), metas, bad


def make_tagger(options: IndexOptions, reference: ReferenceSet, model=None) -> DocumentTagger:
    """The document tagger ``options.tagger`` names.

    Raises:
        ValueError: ``heads``/``ensemble`` without a trained model, or an unknown name.
    """
    if options.tagger == "knn":
        return KnnDocumentTagger(KnnTagger(reference, k=options.k, top_d=options.top_d))
    if options.tagger not in ("heads", "ensemble"):
        raise ValueError(f"unknown tagger {options.tagger!r}: knn, heads or ensemble")
    if model is None:
        raise ValueError(f"--tagger {options.tagger} needs a trained model: pass --model MODEL_DIR")
    knn = KnnTagger(reference, k=options.k, top_d=options.top_d) if options.tagger == "ensemble" else None
    return ModelDocumentTagger(model, knn, top_d=options.top_d)


def existing_ids(client: EngineClient, index: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` are already documents of ``index``."""
    if not ids or not client.index_exists(index):
        return set()
    resp = client.request("POST", f"/{index}/_mget", {"ids": ids}, params={"_source": "false"})
    return {d["_id"] for d in resp.get("docs", []) if d.get("found")}


def index_catalog(
    client: EngineClient,
    catalog: str | Path,
    schema: CatalogSchema,
    embedder: BatchEmbedder,
    options: IndexOptions,
    reference: tuple[str | Path, CatalogSchema, BatchEmbedder] | None = None,
    model=None,
) -> IndexSummary:
    """Index a catalog; see the module docstring.

    Args:
        client: the engine.
        catalog: CSV/JSONL path.
        schema: its column mapping.
        embedder: images of ``catalog`` -> vectors (with a cache).
        options: tuning.
        reference: another labelled catalog ``(path, schema, embedder)`` for kNN tags.
        model: a trained :class:`~vistag.models.tagging_model.TaggingModel` for
            ``options.tagger`` ``heads`` or ``ensemble``.

    Returns:
        The summary; the run stops early (``aborted``) when the engine stays unreachable.
    """
    started = time.monotonic()
    catalog = Path(catalog)
    summary = IndexSummary(index=options.index, dead_letter_path=str(options.dead_letter))
    backbone = embedder.embedder.config
    spec = DocumentSpec(name=options.template or options.index, vector_dim=backbone.embedding_dim,
                        category_levels=max(1, len(schema.category)))
    create_index(client, spec, options.index)
    dead_letter = DeadLetterWriter(options.dead_letter)
    computed0, hits0 = embedder.computed, embedder.cache_hits
    model_doc = {"name": backbone.name, "version": backbone.model_id, "embedding_dim": backbone.embedding_dim}
    try:
        t0 = time.monotonic()
        if reference is None:
            ref_set, metas, bad_lines = build_reference(catalog, schema, embedder, options, dead_letter, summary)
        else:
            ref_path, ref_schema, ref_embedder = reference
            ref_set, _, _ = build_reference(Path(ref_path), ref_schema, ref_embedder, options, None, None)
            metas, bad_lines = {}, set()
        summary.reference_size = len(ref_set)
        summary.timings["reference_s"] = round(time.monotonic() - t0, 2)
        if len(ref_set) == 0 and options.tagger != "heads":
            logger.warning("the reference set is empty: documents get no kNN tags")
        tagger = make_tagger(options, ref_set, model)
        relations = None
        if options.relations:
            from vistag.analyzers.relations import TagRelations

            relations = TagRelations.load(options.relations)
            model_doc["expansion"] = f"relations x {options.expand_discount}"
        summary.tagger = model_doc["tagger"] = tagger.id
        t1 = time.monotonic()
        _index_pass(client, catalog, schema, embedder, options, tagger, metas, bad_lines, dead_letter, summary, model_doc,
                    count_reads=reference is not None, relations=relations)
        summary.timings["index_s"] = round(time.monotonic() - t1, 2)
        client.refresh(options.index)
    except EngineUnavailable as exc:
        summary.aborted = str(exc)
        logger.error("indexing stopped: %s", exc)
    finally:
        dead_letter.close()
        summary.dead_lettered = dead_letter.count
        summary.embedded = embedder.computed - computed0
        summary.cache_hits = embedder.cache_hits - hits0
        summary.seconds = round(time.monotonic() - started, 2)
    return summary


def _index_pass(client, catalog, schema, embedder, options, tagger, metas, bad_lines, dead_letter, summary, model_doc,
                count_reads: bool, relations=None) -> None:
    bar = tqdm(total=summary.read or None, desc="index", unit="doc", disable=not options.progress, leave=False)

    def documents():
        for batch in _batches(_rows(catalog, schema, options.limit), options.batch_size):
            if count_reads:
                summary.read += len(batch)
            rows = []
            for row in batch:
                if isinstance(row, MalformedRow):
                    if row.line not in bad_lines:
                        dead_letter.write(row.line, row.id, "read", row.reason, row.raw)
                    bar.update(1)
                elif row.line in bad_lines:
                    bar.update(1)
                else:
                    rows.append(row)
            if options.resume and rows:
                done = existing_ids(client, options.index, [r.id for r in rows])
                summary.skipped_existing += len(done)
                bar.update(len(done))
                rows = [r for r in rows if r.id not in done]
            if not rows:
                continue
            results = embedder.embed_refs([schema.image_ref(r.fields) for r in rows], [metas.get(r.id) for r in rows])
            good = [(r, res) for r, res in zip(rows, results) if res.vector is not None]
            for r, res in zip(rows, results):
                if res.vector is None:
                    dead_letter.write(r.line, r.id, "image", res.error or "no image", r.fields)
                    bar.update(1)
            if not good:
                continue
            vectors = np.stack([res.vector for _, res in good])
            leaf = schema.category[-1] if schema.category else None
            tagged = tagger.tag(vectors, [r.id for r, _ in good], [r.fields.get(leaf) if leaf else None for r, _ in good])
            for (row, res), row_tags in zip(good, tagged):
                related = None
                if relations is not None and row_tags.tags:
                    related = relations.expand(dict(row_tags.tags), discount=options.expand_discount)
                doc = build_document(row.id, row.fields, schema, tags=row_tags.tags, vector=res.vector,
                                     image=res.meta.to_doc(), model=model_doc, predicted=row_tags.predicted,
                                     related=related)
                doc["_line"] = row.line
                yield doc

    try:
        for ok, item in streaming_bulk(
            client, documents(), options.index, chunk_size=options.chunk_size, max_chunk_bytes=options.max_chunk_bytes,
            max_retries=options.max_retries, initial_backoff=options.initial_backoff, max_backoff=options.max_backoff,
        ):
            bar.update(1)
            if ok:
                summary.indexed += 1
            elif item["status"] in RETRY_STATUSES:
                summary.failed += 1
                logger.error("document %s not indexed after retries: HTTP %s", item["_id"], item["status"])
            else:
                doc = item["doc"]
                dead_letter.write(doc.get("_line"), doc["_id"], "engine", item["error"],
                                  {k: v for k, v in doc.items() if k not in ("image_vector", "_line")})
    except EngineUnavailable as exc:
        summary.failed += len(exc.body) if isinstance(exc.body, list) else 0
        raise
    finally:
        bar.close()
