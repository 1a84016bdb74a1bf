"""A labelled catalog loaded for training or evaluation: rows, embeddings and splits.

Embeddings come through the embedding cache, so training, evaluation and
indexing of the same images embed each image once per backbone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vistag.catalog.rows import MalformedRow, read_catalog
from vistag.catalog.schema import CatalogSchema
from vistag.models.embedding import BatchEmbedder

logger = logging.getLogger(__name__)

TRAIN, VAL, TEST = "train", "val", "test"


@dataclass
class EmbeddedCatalog:
    """The usable rows of a catalog with their embeddings.

    Attributes:
        ids: product ids.
        fields: the rows' columns.
        x: ``(N, D)`` embeddings.
        sha256: image content hashes.
        skipped: ``(line, id, reason)`` of rows left out (malformed row, bad image).
    """

    ids: list[str]
    fields: list[dict]
    x: np.ndarray
    sha256: list[str]
    skipped: list[tuple[int, str | None, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask: np.ndarray) -> EmbeddedCatalog:
        """The rows where ``mask`` is true."""
        idx = np.nonzero(mask)[0]
        return EmbeddedCatalog(
            [self.ids[i] for i in idx], [self.fields[i] for i in idx], self.x[idx], [self.sha256[i] for i in idx]
        )

    def column(self, name: str) -> list[object]:
        """The values of one column."""
        return [f.get(name) for f in self.fields]

    def data_hash(self, columns: list[str]) -> str:
        """sha256 over ids, image hashes and the given label columns (identifies training data)."""
        h = hashlib.sha256()
        for i, f, s in sorted(zip(self.ids, self.fields, self.sha256)):
            h.update("\x1f".join([i, s] + [str(f.get(c, "")) for c in columns]).encode())
            h.update(b"\n")
        return h.hexdigest()


def embed_catalog(
    path: str | Path | Iterable[Mapping[str, Any]],
    schema: CatalogSchema,
    embedder: BatchEmbedder,
    *,
    limit: int | None = None,
    progress: bool = False,
) -> EmbeddedCatalog:
    """Read a catalog and embed its images (through the cache); bad rows are skipped and listed.

    Args:
        path: catalog file.
        schema: its column mapping.
        embedder: images -> vectors with a cache.
        limit: read only the first ``limit`` rows.
        progress: show a progress bar.
    """
    ids, fields, shas, vectors = [], [], [], []
    skipped: list[tuple[int, str | None, str]] = []
    bar = tqdm(desc="embed", unit="img", disable=not progress, leave=False)
    rows = islice(read_catalog(path, schema), limit) if limit is not None else read_catalog(path, schema)
    items = ((row, None if isinstance(row, MalformedRow) else schema.image_ref(row.fields), None) for row in rows)
    for row, res in embedder.embed_stream(items):
        bar.update(1)
        if isinstance(row, MalformedRow):
            skipped.append((row.line, row.id, row.reason))
        elif res.vector is None:
            skipped.append((row.line, row.id, res.error or "no image"))
        else:
            ids.append(row.id)
            fields.append(row.fields)
            shas.append(res.meta.sha256 if res.meta else "")
            vectors.append(res.vector)
    bar.close()
    for line, row_id, reason in skipped[:20]:
        logger.warning("%s line %d (id %s) skipped: %s", path, line, row_id, reason)
    if len(skipped) > 20:
        logger.warning("%s: %d more rows skipped", path, len(skipped) - 20)
    x = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, embedder.embedder.dim), np.float32)
    return EmbeddedCatalog(ids, fields, x, shas, skipped)


def _unit_hash(value: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    data: EmbeddedCatalog,
    split_column: str | None = None,
    test_fraction: float = 0.1,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """``train``/``val``/``test`` for every row, deterministic.

    With ``split_column``, rows whose value is ``test`` are test rows and
    ``val``/``validation`` are validation rows; otherwise a hash of the id puts
    ``test_fraction`` of rows in test. Validation rows not named by the column
    are ``val_fraction`` of the remaining rows, again by hash.
    """
    splits = np.empty(len(data), dtype=object)
    for i, (row_id, f) in enumerate(zip(data.ids, data.fields)):
        if split_column:
            value = str(f.get(split_column, "")).strip().lower()
            if value == TEST:
                splits[i] = TEST
                continue
            if value in ("val", "valid", "validation"):
                splits[i] = VAL
                continue
        elif _unit_hash(row_id, f"test{seed}") < test_fraction:
            splits[i] = TEST
            continue
        splits[i] = VAL if _unit_hash(row_id, f"val{seed}") < val_fraction else TRAIN
    return splits
