"""On-disk embedding cache keyed by image content hash and model id (no torch).

Layout, one folder per model id below ``$VISTAG_HOME/cache/embeddings``::

    <model_id>/keys.txt      one sha256 per line
    <model_id>/vectors.f32   float32 rows, appended in the same order

Appends write the vector before the key, under an exclusive file lock, so a crash
leaves at worst an orphan vector that the next open ignores. Vectors are read
with ``pread`` on demand: the cache can be far larger than RAM and reading it does
not grow the process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


class EmbeddingCache:
    """Append-only store of ``sha256 -> vector`` for one model id.

    Args:
        root: cache root (e.g. ``$VISTAG_HOME/cache/embeddings``).
        model_id: the embedding space, e.g. ``efficientnet-lite0@1-128px``.
        dim: vector dimension.
        dtype: how rows are stored: float32 (``vectors.f32``) or float16 (``vectors.f16``,
            e.g. the feature maps ``vistag train --fine-tune`` caches).
    """

    def __init__(self, root: str | Path, model_id: str, dim: int, dtype: Any = np.float32) -> None:
        self.dir = Path(root) / re.sub(r"[^A-Za-z0-9@._-]+", "_", model_id)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
            raise ValueError(f"an embedding cache stores float32 or float16 rows, not {self.dtype}")
        self._row_bytes = self.dtype.itemsize * dim
        self._keys_path = self.dir / "keys.txt"
        self._vec_path = self.dir / f"vectors.f{8 * self.dtype.itemsize}"
        self._index: dict[str, int] = {}
        self._rows = 0
        self._keys_offset = 0  # bytes of keys.txt already read into _index
        self._load()

    def _load(self) -> None:
        """Read the keys appended since the last call (all of them the first time)."""
        rows_on_disk = (self._vec_path.stat().st_size // self._row_bytes) if self._vec_path.exists() else 0
        if self._keys_path.exists():
            with open(self._keys_path, "rb") as fh:
                fh.seek(self._keys_offset)
                tail = fh.read()
            complete = tail[: tail.rfind(b"\n") + 1]  # ignore a half-written last line
            self._keys_offset += len(complete)
            for key in complete.decode().split():
                if self._rows >= rows_on_disk:  # never trust a disk: a key without its vector
                    break
                self._index.setdefault(key, self._rows)
                self._rows += 1

    def refresh(self) -> None:
        """See the vectors other processes appended since this cache was opened (or last refreshed)."""
        self._load()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, sha256: str) -> bool:
        return sha256 in self._index

    def get_many(self, keys: Iterable[str]) -> tuple[np.ndarray, list[bool]]:
        """Return (vectors, found) for ``keys``; missing rows are zeros.

        Rows are read with ``pread`` (runs of adjacent rows in one call), not through
        a memory map, so reading a large cache does not grow the process's memory.
        """
        keys = list(keys)
        found = [k in self._index for k in keys]
        out = np.zeros((len(keys), self.dim), dtype=self.dtype)
        wanted = sorted((self._index[k], i) for i, (k, f) in enumerate(zip(keys, found)) if f)
        if not wanted:
            return out, found
        row_bytes = self._row_bytes
        fd = os.open(self._vec_path, os.O_RDONLY)
        try:
            start = 0
            while start < len(wanted):
                end = start + 1
                while end < len(wanted) and wanted[end][0] - wanted[end - 1][0] <= 1:
                    end += 1
                first, last = wanted[start][0], wanted[end - 1][0]
                data = os.pread(fd, (last - first + 1) * row_bytes, first * row_bytes)
                block = np.frombuffer(data, dtype=self.dtype).reshape(-1, self.dim)
                for row, pos in wanted[start:end]:
                    out[pos] = block[row - first]
                start = end
        finally:
            os.close(fd)
        return out, found

    def put_many(self, keys: list[str], vectors: np.ndarray) -> None:
        """Append vectors for keys not yet cached."""
        fresh = [(k, v) for k, v in zip(keys, np.asarray(vectors, dtype=self.dtype)) if k not in self._index]
        if not fresh:
            return
        with open(self.dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._load()  # another process may have appended
            fresh = [(k, v) for k, v in fresh if k not in self._index]
            uniq: dict[str, np.ndarray] = dict(fresh)
            if not uniq:
                return
            block = np.stack(list(uniq.values())).astype(self.dtype)
            with open(self._vec_path, "ab") as fh:
                # Truncate orphan rows from a crashed writer first so keys and rows stay aligned.
                fh.truncate(self._rows * self._row_bytes)
                fh.write(block.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
            with open(self._keys_path, "a") as fh:
                fh.write("".join(k + "\n" for k in uniq))
            for key in uniq:
                self._index[key] = self._rows
                self._rows += 1


def model_cache(embedder: Any, root: str | Path | None = None) -> EmbeddingCache:
    """The on-disk cache of an embedder's model, below ``root`` (default: the CLI's,
    :func:`vistag.config.embedding_cache_dir`).

    Examples:
        >>> model_cache(create_embedder("tiny-random"), "/tmp/cache").dir.name  # doctest: +SKIP
        'tiny-random@1-64px'
    """
    from vistag.config import embedding_cache_dir

    return EmbeddingCache(root or embedding_cache_dir(), embedder.model_id, embedder.dim)
