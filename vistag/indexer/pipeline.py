"""``vistag index``: catalog -> images -> embeddings -> kNN tags -> bulk, with flat memory.

Two passes when the catalog is its own reference set (the default):

1. *reference pass* -- every row is read and its image embedded (through the
   embedding cache) by the :class:`~vistag.indexer.embedding.BatchEmbedder`
   pipeline (I/O threads, decode processes, batched forward); labelled rows are
   appended to an on-disk reference set; bad rows go to the dead-letter file once;
   one small record per row (image hash and size, reference row) goes to a row log;
2. *index pass* -- rows are read again in lockstep with the row log; vectors come
   from the cache, tags from the kNN tagger in batches of ``knn_batch`` (never the
   row itself as its own neighbour), and documents stream into ``_bulk`` with
   ``bulk_threads`` requests in flight.

With ``reference=`` another catalog, pass 1 runs over that catalog and pass 2
embeds the indexed catalog as it goes. With ``options.reference_index`` there is
no pass 1: neighbours come from the engine's kNN search of that labelled index
(for reference sets of millions of rows). Every stage is joined to the next by a
bounded window, so memory holds a few batches of images, a few bulk chunks and one
block of reference vectors, whatever the catalog size.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterator, TextIO

import numpy as np
from tqdm import tqdm

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceBuilder, ReferenceSet
from vistag.analyzers.tags import tags_from_labels
from vistag.engine.client import EngineClient
from vistag.errors import EngineUnavailable
from vistag.indexer.bulk import RETRY_STATUSES, parallel_bulk
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
    knn_batch: int = 256  # rows tagged per kNN scan of the reference set
    bulk_threads: int = 2  # _bulk requests in flight
    vector_quantization: str = "none"  # or int8 (see DocumentSpec)
    reference_index: str | None = None  # kNN neighbours from this labelled index, found by the engine


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


@dataclass
class RowRecord:
    """What pass 1 learnt about one catalog row (a line of the row log)."""

    line: int
    ok: bool
    meta: ImageMeta | None = None
    ref_row: int = -1  # the row's own row in the reference set, -1 if not there

    def to_json(self) -> str:  # noqa: D102
        meta = self.meta.to_doc() if self.meta else None
        return json.dumps({"line": self.line, "ok": self.ok, "meta": meta, "ref_row": self.ref_row}) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "RowRecord":  # noqa: D102
        data = json.loads(text)
        meta = ImageMeta(**data["meta"]) if data["meta"] else None
        return cls(data["line"], data["ok"], meta, data["ref_row"])


def build_reference(
    path: Path, schema: CatalogSchema, embedder: BatchEmbedder, options: IndexOptions,
    dead_letter: DeadLetterWriter | None, summary: IndexSummary | None, work: Path, row_log: TextIO | None = None,
) -> ReferenceSet:
    """Embed every row of a catalog into an on-disk reference set of its labelled rows.

    Args:
        path, schema: the catalog.
        embedder: the embedding pipeline.
        options: tuning.
        dead_letter: where bad rows go (``None``: only logged).
        summary: gets ``read``.
        work: folder for the reference vector file.
        row_log: receives one :class:`RowRecord` line per row, in catalog order.
    """
    builder = ReferenceBuilder(embedder.embedder.dim, work / f"reference-{path.stem}.f32", keep_ids=row_log is None)
    total = sum(1 for _ in _rows(path, schema, options.limit))
    bar = tqdm(total=total, desc="embed", unit="img", disable=not options.progress, leave=False)
    items = ((row, None if isinstance(row, MalformedRow) else schema.image_ref(row.fields), None)
             for row in _rows(path, schema, options.limit))
    for batch in _batches(embedder.embed_stream(items), options.batch_size):
        vectors, tags, ids = [], [], []
        for row, res in batch:
            record = RowRecord(row.line, False)
            if isinstance(row, MalformedRow):
                if dead_letter:
                    dead_letter.write(row.line, row.id, "read", row.reason, row.raw)
                else:
                    logger.warning("reference %s line %d: %s", path, row.line, row.reason)
            elif res.error or res.vector is None:
                if dead_letter:
                    dead_letter.write(row.line, row.id, "image", res.error or "no image", row.fields)
                else:
                    logger.warning("reference %s line %d: %s", path, row.line, res.error)
            else:
                record = RowRecord(row.line, True, res.meta)
                row_tags = tags_from_labels(row.fields, schema.tags)
                if row_tags:
                    record.ref_row = len(builder) + len(vectors)
                    vectors.append(res.vector)
                    tags.append(row_tags)
                    ids.append(row.id)
            if row_log is not None:
                row_log.write(record.to_json())
        if vectors:
            builder.add(np.stack(vectors), tags, ids)
        bar.update(len(batch))
    bar.close()
    if summary is not None:
        summary.read = total
    return builder.build()


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
                        category_levels=max(1, len(schema.category)), vector_quantization=options.vector_quantization)
    create_index(client, spec, options.index)
    dead_letter = DeadLetterWriter(options.dead_letter)
    computed0, hits0 = embedder.computed, embedder.cache_hits
    model_doc = {"name": backbone.name, "version": backbone.model_id, "embedding_dim": backbone.embedding_dim}
    ref_set = None
    try:
        with tempfile.TemporaryDirectory(prefix="vistag-index-") as tmp:
            work = Path(tmp)
            t0 = time.monotonic()
            row_log = None
            if options.reference_index:
                if options.tagger != "knn":
                    raise ValueError("--reference-index tags by kNN only: drop --tagger or --reference-index")
                ref_set = None
            elif reference is None:
                with open(work / "rows.jsonl", "w", encoding="utf-8") as log:
                    ref_set = build_reference(catalog, schema, embedder, options, dead_letter, summary, work, log)
                row_log = work / "rows.jsonl"
            else:
                ref_path, ref_schema, ref_embedder = reference
                ref_set = build_reference(Path(ref_path), ref_schema, ref_embedder, options, None, None, work)
            summary.timings["reference_s"] = round(time.monotonic() - t0, 2)
            if ref_set is None:
                tagger = _engine_tagger(client, options, schema, backbone.embedding_dim)
                summary.reference_size = int(client.request("GET", f"/{options.reference_index}/_count")["count"])
            else:
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
            _index_pass(client, catalog, schema, embedder, options, tagger, row_log, dead_letter, summary, model_doc,
                        relations=relations)
            summary.timings["index_s"] = round(time.monotonic() - t1, 2)
            client.refresh(options.index)
    except EngineUnavailable as exc:
        summary.aborted = str(exc)
        logger.error("indexing stopped: %s", exc)
    finally:
        if ref_set is not None and hasattr(ref_set.vectors, "close"):
            ref_set.vectors.close()
        dead_letter.close()
        summary.dead_lettered = dead_letter.count
        summary.embedded = embedder.computed - computed0
        summary.cache_hits = embedder.cache_hits - hits0
        summary.seconds = round(time.monotonic() - started, 2)
    return summary


def _engine_tagger(client: EngineClient, options: IndexOptions, schema: CatalogSchema, dim: int) -> DocumentTagger:
    """kNN tags with neighbours from the engine's HNSW search of ``options.reference_index``."""
    from vistag.indexer.taggers import EngineKnnDocumentTagger
    from vistag.search.queries import Searcher

    if not client.index_exists(options.reference_index):
        raise ValueError(f"reference index {options.reference_index!r} does not exist")
    return EngineKnnDocumentTagger(Searcher(client, options.reference_index, dim), schema, k=options.k, top_d=options.top_d)


def _device_topk(embedder: BatchEmbedder):
    """The model device's top-k for the kNN scan (CUDA), or ``None`` for numpy."""
    device = getattr(embedder.embedder, "device", None)  # a torch device: torch is loaded already
    if device is None:
        return None
    from vistag.models.knn_device import torch_topk

    return torch_topk(device)


def _with_records(rows: Iterator[CatalogRow | MalformedRow], row_log: Path | None):
    """Pair each row with its pass-1 :class:`RowRecord` (``None`` without a row log)."""
    if row_log is None:
        for row in rows:
            yield row, None
        return
    with open(row_log, encoding="utf-8") as log:
        for row in rows:
            record = RowRecord.from_json(log.readline())
            if record.line != row.line:
                raise RuntimeError(f"{row.line}: the catalog changed while it was being indexed; run again")
            yield row, record


def _index_pass(client, catalog, schema, embedder, options, tagger, row_log, dead_letter, summary, model_doc,
                relations=None) -> None:
    bar = tqdm(total=summary.read or None, desc="index", unit="doc", disable=not options.progress, leave=False)
    count_reads = row_log is None
    leaf = schema.category[-1] if schema.category else None

    def good_rows():
        """Rows to index with their record; malformed and pass-1 bad rows are settled here."""
        for batch in _batches(_with_records(_rows(catalog, schema, options.limit), row_log), options.chunk_size):
            if count_reads:
                summary.read += len(batch)
            keep = []
            for row, record in batch:
                if isinstance(row, MalformedRow):
                    if record is None:
                        dead_letter.write(row.line, row.id, "read", row.reason, row.raw)
                    bar.update(1)
                elif record is not None and not record.ok:
                    bar.update(1)
                else:
                    keep.append((row, record))
            if options.resume and keep:
                done = existing_ids(client, options.index, [r.id for r, _ in keep])
                summary.skipped_existing += len(done)
                bar.update(len(done))
                keep = [(r, rec) for r, rec in keep if r.id not in done]
            yield from keep

    def documents():
        items = (((row, record), schema.image_ref(row.fields), record.meta if record else None)
                 for row, record in good_rows())
        for batch in _batches(embedder.embed_stream(items), options.knn_batch):
            good = []
            for (row, record), res in batch:
                if res.vector is None:
                    dead_letter.write(row.line, row.id, "image", res.error or "no image", row.fields)
                    bar.update(1)
                else:
                    good.append((row, record, res))
            if not good:
                continue
            vectors = np.stack([res.vector for _, _, res in good])
            exclude_rows = [rec.ref_row for _, rec, _ in good] if row_log is not None else None
            tagged = tagger.tag(vectors, [r.id for r, _, _ in good], [r.fields.get(leaf) if leaf else None for r, _, _ in good],
                                exclude_rows=exclude_rows)
            for (row, _, res), row_tags in zip(good, tagged):
                related = None
                if relations is not None and row_tags.tags:
                    related = relations.expand(dict(row_tags.tags), discount=options.expand_discount)
                doc = build_document(row.id, row.fields, schema, tags=row_tags.tags, vector=res.vector,
                                     image=res.meta.to_doc(), model=model_doc, predicted=row_tags.predicted,
                                     related=related)
                doc["_line"] = row.line
                yield doc

    try:
        for ok, item in parallel_bulk(
            client, documents(), options.index, threads=options.bulk_threads, chunk_size=options.chunk_size,
            max_chunk_bytes=options.max_chunk_bytes, max_retries=options.max_retries,
            initial_backoff=options.initial_backoff, max_backoff=options.max_backoff,
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
