"""Embed a labelled catalog into a kNN reference set: one unit vector and the tags of each labelled row.

The vectors go to a file on disk as they come (:class:`~vistag.analyzers.knn_tagger.ReferenceBuilder`),
so a reference catalog of millions of rows needs a few batches of memory.

Examples:
    >>> with open_batch_embedder(create_embedder("tiny-random"), "images/") as batch:       # doctest: +SKIP
    ...     reference, read = embed_reference(catalog_rows("labels.csv", schema), schema, batch, Path("/tmp"))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from vistag.analyzers.knn_tagger import ReferenceBuilder, ReferenceSet
from vistag.catalog.rows import CatalogRow, MalformedRow
from vistag.catalog.schema import CatalogSchema
from vistag.catalog.vocabulary import tags_from_labels
from vistag.models.embedding import BatchEmbedder, Embedded

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Called once per row, in catalog order: the row, its embedding (``None`` for a malformed
#: row) and its row in the reference set (-1 when it is not there: bad, or unlabelled).
OnRow = Callable[[CatalogRow | MalformedRow, Embedded | None, int], None]


def batches(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last may be shorter).

    Examples:
        >>> list(batches(range(5), 2))
        [[0, 1], [2, 3], [4]]
    """
    batch: list[T] = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def embed_reference(
    rows: Callable[[], Iterable[CatalogRow | MalformedRow]],
    schema: CatalogSchema,
    embedder: BatchEmbedder,
    work: Path,
    *,
    batch_size: int = 64,
    on_row: OnRow | None = None,
    keep_ids: bool = True,
    progress: bool = False,
    name: str = "reference",
) -> tuple[ReferenceSet, int]:
    """Embed every row of a catalog; its labelled rows (those with tags) form the reference set.

    Args:
        rows: returns the catalog's rows (called twice: once to count them for the progress bar).
        schema: its column mapping (``schema.tags`` are the label columns).
        embedder: the embedding pipeline.
        work: folder for the reference vector file.
        batch_size: rows per append to the reference set.
        on_row: told about every row (dead letters, a row log); without it bad rows are logged.
        keep_ids: keep the rows' ids (a row is then never its own neighbour by id).
        progress: show a progress bar.
        name: the catalog's name in messages and in the vector file's name.

    Returns:
        The reference set and the number of rows read.
    """
    builder = ReferenceBuilder(embedder.embedder.dim, work / f"reference-{name}.f32", keep_ids=keep_ids)
    total = sum(1 for _ in rows()) if progress else None
    bar = tqdm(total=total, desc="embed", unit="img", disable=not progress, leave=False)
    read = 0
    items = ((row, None if isinstance(row, MalformedRow) else schema.image_ref(row.fields), None) for row in rows())
    for batch in batches(embedder.embed_stream(items), batch_size):
        vectors: list[np.ndarray] = []
        tags: list[list[str]] = []
        ids: list[str] = []
        for row, res in batch:
            read += 1
            ref_row = -1
            if isinstance(row, CatalogRow) and res.vector is not None and not res.error:
                row_tags = tags_from_labels(row.fields, schema.tags)
                if row_tags:
                    ref_row = len(builder) + len(vectors)
                    vectors.append(res.vector)
                    tags.append(row_tags)
                    ids.append(row.id)
            if on_row is not None:
                on_row(row, None if isinstance(row, MalformedRow) else res, ref_row)
            elif isinstance(row, MalformedRow) or res.vector is None:
                reason = row.reason if isinstance(row, MalformedRow) else (res.error or "no image")
                logger.warning("%s line %d: %s", name, row.line, reason)
        if vectors:
            builder.add(np.stack(vectors), tags, ids if keep_ids else None)
        bar.update(len(batch))
    bar.close()
    return builder.build(), read
