"""A float32 ``(N, D)`` matrix on disk, written once and scanned chunk by chunk.

The kNN reference set of a large catalog does not have to fit in RAM: it is
appended to a file while the catalog is embedded and then scanned through a memory
map. After each chunk has been used its pages are released from the process
(``MADV_DONTNEED``; they stay in the OS page cache), so the resident memory of a
scan is one chunk, whatever the number of rows.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_PAGE = mmap.PAGESIZE


class VectorFileWriter:
    """Appends float32 rows of width ``dim`` to ``path``."""

    def __init__(self, path: str | Path, dim: int) -> None:
        self.path = Path(path)
        self.dim = dim
        self.rows = 0
        self._fh = open(self.path, "wb")  # noqa: SIM115 - appended to until close(), over many calls

    def append(self, vectors: np.ndarray) -> None:
        """Append ``(n, dim)`` rows."""
        block = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        self._fh.write(block.tobytes())
        self.rows += len(block)

    def close(self) -> VectorFile:
        """Finish writing and open the file for reading."""
        self._fh.close()
        return VectorFile(self.path, self.dim)


class VectorFile:
    """Read-only rows of a :class:`VectorFileWriter` file.

    Supports ``len()``, slicing (a copy) and :meth:`chunks` (views, released after use).
    """

    def __init__(self, path: str | Path, dim: int, delete_on_close: bool = False) -> None:
        self.path = Path(path)
        self.dim = dim
        self.delete_on_close = delete_on_close
        size = self.path.stat().st_size
        if size % (4 * dim):
            raise ValueError(f"{self.path} holds {size} bytes, not a whole number of {dim}-d float32 rows")
        self.rows = size // (4 * dim)
        self._fd: int | None = os.open(self.path, os.O_RDONLY)
        self._mm = mmap.mmap(self._fd, size, prot=mmap.PROT_READ) if size else None

    def __len__(self) -> int:
        return self.rows

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, dim)``."""
        return (self.rows, self.dim)

    def _view(self, start: int, stop: int) -> np.ndarray:
        if self._mm is None or stop <= start:
            return np.zeros((0, self.dim), np.float32)
        return np.frombuffer(
            self._mm, dtype=np.float32, count=(stop - start) * self.dim, offset=start * self.dim * 4
        ).reshape(-1, self.dim)

    def _release(self, start: int, stop: int) -> None:
        if self._mm is None or stop <= start:
            return
        begin = (start * self.dim * 4) // _PAGE * _PAGE
        end = stop * self.dim * 4
        self._mm.madvise(mmap.MADV_DONTNEED, begin, end - begin)

    def __getitem__(self, key: int | slice | np.ndarray) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.rows)
            out = self._view(start, stop)[::step].copy()
            self._release(start, stop)
            return out
        rows = np.asarray(key)
        if rows.ndim == 0:
            return self[int(rows) : int(rows) + 1][0]
        out = np.empty((len(rows), self.dim), np.float32)
        for i, row in enumerate(rows.tolist()):
            out[i] = self._view(row, row + 1)[0]
        if len(rows):
            self._release(int(rows.min()), int(rows.max()) + 1)
        return out

    def chunks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, view)`` over consecutive blocks of ``size`` rows.

        A view is valid until the next block is requested; its pages are then
        released from this process.
        """
        for start in range(0, self.rows, size):
            stop = min(self.rows, start + size)
            view = self._view(start, stop)
            try:
                yield start, view
            finally:
                del view
                self._release(start, stop)

    def close(self) -> None:
        """Unmap and close the file (and delete it when ``delete_on_close``)."""
        if self._mm is not None:
            with contextlib.suppress(BufferError):  # a caller still holds a view; the map goes with it
                self._mm.close()
            self._mm = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.delete_on_close:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> VectorFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
