"""Pass 1 of ``vistag index``: embed every row into an on-disk reference set, with a row log for pass 2."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from vistag.analyzers.knn_tagger import ReferenceSet
from vistag.analyzers.reference import embed_reference
from vistag.catalog.deadletter import DeadLetters
from vistag.catalog.rows import CatalogRow, MalformedRow
from vistag.catalog.schema import CatalogSchema
from vistag.indexer.row_log import RowRecord
from vistag.models.embedding import BatchEmbedder, Embedded


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
    """Embed every row of a catalog into an on-disk reference set of its labelled rows
    (see :func:`~vistag.analyzers.reference.embed_reference`).

    Args:
        rows: a function that returns the catalog's rows.
        schema: its column mapping.
        embedder: the embedding pipeline.
        work: folder for the reference vector file.
        batch_size: rows per reference-set append.
        dead_letters: where bad rows go (``None``: only logged).
        row_log: receives one :class:`~vistag.indexer.row_log.RowRecord` line per row, in catalog order.
        progress: show a progress bar.
        name: the catalog's name in messages.

    Returns:
        The reference set and the number of rows read.
    """

    def on_row(row: CatalogRow | MalformedRow, res: Embedded | None, ref_row: int) -> None:
        record = RowRecord(row.line, False)
        if isinstance(row, MalformedRow):
            if dead_letters is not None:
                dead_letters.write(row.line, row.id, "read", row.reason, row.raw)
        elif res is None or res.vector is None:
            if dead_letters is not None:
                dead_letters.write(row.line, row.id, "image", (res.error if res else None) or "no image", row.fields)
        else:
            record = RowRecord(row.line, True, res.meta, ref_row)
        if row_log is not None:
            row_log.write(record.to_json())

    track = dead_letters is not None or row_log is not None
    return embed_reference(
        rows,
        schema,
        embedder,
        work,
        batch_size=batch_size,
        on_row=on_row if track else None,
        keep_ids=row_log is None,
        progress=progress,
        name=name,
    )
