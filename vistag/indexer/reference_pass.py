"""Pass 1 of ``vistag index``: embed every row into an on-disk reference set of the labelled rows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO, TypeVar

import numpy as np
from tqdm import tqdm

from vistag.analyzers.knn_tagger import ReferenceBuilder, ReferenceSet
from vistag.catalog.rows import CatalogRow, MalformedRow
from vistag.catalog.deadletter import DeadLetters
from vistag.models.embedding import BatchEmbedder
from vistag.indexer.row_log import RowRecord
from vistag.catalog.schema import CatalogSchema
from vistag.catalog.vocabulary import tags_from_labels

logger = logging.getLogger(__name__)

T = TypeVar("T")


def batches(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last may be shorter)."""
    batch: list[T] = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def build_reference(
    rows: Callable[[], Iterable[CatalogRow | MalformedRow]],
    schema: CatalogSchema,
    embedder: BatchEmbedder,
    work: Path,
    *,
    batch_size: int = 64,
    dead_letters: DeadLetters | None = None,
    row_log: TextIO | None = None,
    progress: bool = False,
    name: str = "catalog",
) -> tuple[ReferenceSet, int]:
    """Embed every row of a catalog into an on-disk reference set of its labelled rows.

    Args:
        rows: a function that returns the catalog's rows (called twice: once to count).
        schema: its column mapping.
        embedder: the embedding pipeline.
        work: folder for the reference vector file.
        batch_size: rows per reference-set append.
        dead_letters: where bad rows go (``None``: only logged).
        row_log: receives one :class:`RowRecord` line per row, in catalog order.
        progress: show a progress bar.
        name: the catalog's name in messages.

    Returns:
        The reference set and the number of rows read.
    """
    builder = ReferenceBuilder(embedder.embedder.dim, work / f"reference-{name}.f32", keep_ids=row_log is None)
    total = sum(1 for _ in rows())
    bar = tqdm(total=total, desc="embed", unit="img", disable=not progress, leave=False)
    items = ((row, None if isinstance(row, MalformedRow) else schema.image_ref(row.fields), None) for row in rows())
    for batch in batches(embedder.embed_stream(items), batch_size):
        vectors, tags, ids = [], [], []
        for row, res in batch:
            record = RowRecord(row.line, False)
            if isinstance(row, MalformedRow):
                _bad(dead_letters, name, row.line, row.id, "read", row.reason, row.raw)
            elif res.error or res.vector is None:
                _bad(dead_letters, name, row.line, row.id, "image", res.error or "no image", row.fields)
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
    return builder.build(), total


def _bad(dead_letters: DeadLetters | None, name: str, line: int, row_id: str | None, stage: str, reason: str,
         row: object) -> None:
    if dead_letters is not None:
        dead_letters.write(line, row_id, stage, reason, row)
    else:
        logger.warning("reference %s line %d: %s", name, line, reason)
