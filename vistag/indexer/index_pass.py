"""Pass 2 of ``vistag index``: rows -> vectors (cache or model) -> kNN tags -> documents -> ``_bulk``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vistag.analyzers.reference import batches
from vistag.analyzers.relations import TagRelations
from vistag.analyzers.taggers import DocumentTagger
from vistag.catalog.deadletter import DeadLetters
from vistag.catalog.rows import CatalogRow, MalformedRow
from vistag.catalog.schema import CatalogSchema
from vistag.documents.build import build_document
from vistag.engine.client import EngineClient
from vistag.engine.retry import RETRY_STATUSES
from vistag.errors import EngineUnavailable
from vistag.indexer.bulk import RetryCounter, parallel_bulk
from vistag.indexer.options import IndexOptions, IndexSummary
from vistag.indexer.row_log import RowRecord, with_records
from vistag.models.embedding import BatchEmbedder

logger = logging.getLogger(__name__)


def send_documents(
    client: EngineClient, docs: Iterable[dict], options: IndexOptions, retries: RetryCounter
) -> Iterator[tuple[bool, dict]]:
    """:func:`~vistag.indexer.bulk.parallel_bulk` with the run's bulk options: ``(ok, item)`` per document."""
    return parallel_bulk(
        client,
        docs,
        options.index,
        threads=options.bulk_threads,
        chunk_size=options.chunk_size,
        max_chunk_bytes=options.max_chunk_bytes,
        max_retries=options.max_retries,
        initial_backoff=options.initial_backoff,
        max_backoff=options.max_backoff,
        pipeline=options.pipeline,
        retries=retries,
    )


def refused(item: dict) -> tuple[int | None, str, str, str, dict]:
    """The dead letter of a document the engine refused for good: ``(line, id, "engine", reason, row)``
    (the row without its vector).
    """
    doc = item["doc"]
    row = {k: v for k, v in doc.items() if k not in ("image_vector", "_line")}
    return doc.get("_line"), doc["_id"], "engine", item["error"], row


@dataclass
class IndexPass:
    """Everything pass 2 needs; :meth:`run` streams the documents into the engine.

    Attributes:
        client: the engine.
        rows: returns the catalog's rows.
        schema: the catalog schema.
        embedder: vectors from the cache or the model.
        tagger: tags each batch of vectors.
        options: the run's options.
        summary: the run's summary, updated in place.
        dead_letters: where bad rows go.
        model_doc: the ``model`` object of every document.
        row_log: pass 1's row log (``None`` when there was no pass 1 over this catalog).
        relations: optional :class:`~vistag.analyzers.relations.TagRelations` for index-time expansion.
    """

    client: EngineClient
    rows: Callable[[], Iterable[CatalogRow | MalformedRow]]
    schema: CatalogSchema
    embedder: BatchEmbedder
    tagger: DocumentTagger
    options: IndexOptions
    summary: IndexSummary
    dead_letters: DeadLetters
    model_doc: dict
    row_log: Path | None = None
    relations: TagRelations | None = None

    def run(self) -> None:
        """Index every good row; raises :class:`EngineUnavailable` (with the unconfirmed docs counted as failed)."""
        opts, summary = self.options, self.summary
        self._bar = tqdm(total=summary.read or None, desc="index", unit="doc", disable=not opts.progress, leave=False)
        retries = RetryCounter()
        try:
            for ok, item in send_documents(self.client, self._documents(), opts, retries):
                self._bar.update(1)
                if ok:
                    summary.indexed += 1
                elif item["status"] in RETRY_STATUSES:
                    summary.failed += 1
                    logger.error("document %s not indexed after retries: HTTP %s", item["_id"], item["status"])
                else:
                    self.dead_letters.write(*refused(item))
        except EngineUnavailable as exc:
            summary.failed += len(exc.body) if isinstance(exc.body, list) else 0
            raise
        finally:
            summary.retries += retries.value
            self._bar.close()

    def _good_rows(self) -> Iterator[tuple[CatalogRow, RowRecord | None]]:
        """Rows to index with their record; malformed and pass-1 bad rows are settled here."""
        opts, summary = self.options, self.summary
        count_reads = self.row_log is None
        for batch in batches(with_records(self.rows(), self.row_log), opts.chunk_size):
            if count_reads:
                summary.read += len(batch)
            keep = []
            for row, record in batch:
                if isinstance(row, MalformedRow):
                    if record is None:
                        self.dead_letters.write(row.line, row.id, "read", row.reason, row.raw)
                    self._bar.update(1)
                elif record is not None and not record.ok:
                    self._bar.update(1)
                else:
                    keep.append((row, record))
            if opts.resume and keep:  # the pipeline created the index before this pass
                done = self.client.existing_ids(opts.index, [r.id for r, _ in keep])
                summary.skipped_existing += len(done)
                self._bar.update(len(done))
                keep = [(r, rec) for r, rec in keep if r.id not in done]
            yield from keep

    def _documents(self) -> Iterator[dict]:
        schema, opts = self.schema, self.options
        leaf = schema.category[-1] if schema.category else None
        items = (
            ((row, record), schema.image_ref(row.fields), record.meta if record else None)
            for row, record in self._good_rows()
        )
        for batch in batches(self.embedder.embed_stream(items), opts.knn_batch):
            good = []
            for (row, record), res in batch:
                if res.vector is None:
                    self.dead_letters.write(row.line, row.id, "image", res.error or "no image", row.fields)
                    self._bar.update(1)
                else:
                    good.append((row, record, res))
            if not good:
                continue
            vectors = np.stack([res.vector for _, _, res in good if res.vector is not None])
            exclude_rows = [rec.ref_row if rec else -1 for _, rec, _ in good] if self.row_log is not None else None
            title_column = getattr(self.tagger, "title_column", None)  # a title-aware model reads the titles too
            extra = {"titles": [r.fields.get(title_column) for r, _, _ in good]} if title_column else {}
            tagged = self.tagger.tag(
                vectors,
                [r.id for r, _, _ in good],
                [r.fields.get(leaf) if leaf else None for r, _, _ in good],
                exclude_rows=exclude_rows,
                **extra,
            )
            for (row, _, res), row_tags in zip(good, tagged):
                related = None
                if self.relations is not None and row_tags.tags:
                    related = self.relations.expand(dict(row_tags.tags), discount=opts.expand_discount)
                doc = build_document(
                    row.id,
                    row.fields,
                    schema,
                    tags=row_tags.tags,
                    vector=res.vector,  # type: ignore[arg-type]  # set: rows without a vector were dead-lettered
                    image=res.meta.to_doc() if res.meta else {},
                    model=self.model_doc,
                    predicted=row_tags.predicted,
                    related=related,
                )
                doc["_line"] = row.line
                yield doc
