"""Decode and prepare images in worker processes (no torch).

Decoding, colour conversion, padding and resizing are CPU work that holds the GIL
in Python code around PIL, so they run in a pool of processes while the model runs
in the parent. Workers return the uint8 ``input_size x input_size x 3`` array of
:func:`vistag.models.preprocess.prepare` (4x smaller to ship back than a float
array) or the dead-letter reason of a bad image.

``processes=0`` decodes in the calling thread (tests, tiny catalogs). A worker that
dies (a decoder crash on a hostile file) costs that image only: the pool is
started again, the images in flight are retried once, and an image that kills a
worker twice is reported as bad.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from vistag.images import ImageLoadError, decode_image
from vistag.models.config import BackboneConfig
from vistag.models.preprocess import prepare

logger = logging.getLogger(__name__)

_worker_config: tuple[BackboneConfig, int | None] | None = None


@dataclass
class PreparedImage:
    """A decoded image ready for the model, or why it is not."""

    width: int = 0
    height: int = 0
    array: np.ndarray | None = None
    error: str | None = None


def decode_and_prepare(
    data: bytes, name: str, config: BackboneConfig, sha256: str | None = None, max_pixels: int | None = None
) -> PreparedImage:
    """Decode ``data`` safely (see :func:`~vistag.images.decode_image`) and prepare it.

    Never raises for a bad image: the reason is in ``error``.
    """
    try:
        loaded = decode_image(data, name, sha256=sha256, max_pixels=max_pixels)
    except ImageLoadError as exc:
        return PreparedImage(error=str(exc))
    try:
        array = prepare(loaded.image, config)
    except Exception as exc:
        return PreparedImage(error=f"image {name!r} could not be preprocessed: {type(exc).__name__}: {exc}")
    return PreparedImage(loaded.width, loaded.height, array)


def _init_worker(config: BackboneConfig, max_pixels: int | None) -> None:
    global _worker_config
    _worker_config = (config, max_pixels)


def _work(data: bytes, name: str, sha256: str | None) -> PreparedImage:
    assert _worker_config is not None
    config, max_pixels = _worker_config
    return decode_and_prepare(data, name, config, sha256, max_pixels)


class DecodePool:
    """Decodes images in ``processes`` worker processes (0: in the calling thread).

    Args:
        config: the backbone config (input size, fill, interpolation).
        processes: worker processes; 0 decodes inline.
        max_pixels: decompression-bomb guard (default :data:`vistag.images.decoding.MAX_PIXELS`).
    """

    def __init__(self, config: BackboneConfig, processes: int = 1, max_pixels: int | None = None) -> None:
        self.config = config
        self.max_pixels = max_pixels
        self.processes = max(0, processes)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        if self.processes:
            self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn: the parent has torch and threads loaded; forking them is unsafe.
        return ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.config, self.max_pixels),
        )

    def decode(self, data: bytes, name: str, sha256: str | None = None) -> PreparedImage:
        """Decode and prepare one image (blocking; call from an I/O thread)."""
        if self._pool is None:
            return decode_and_prepare(data, name, self.config, sha256, self.max_pixels)
        for _attempt in range(2):
            pool = self._pool
            try:
                return pool.submit(_work, data, name, sha256).result()
            except BrokenProcessPool:
                # Every image in flight fails with the pool; each is tried once more
                # in a fresh pool, so only the image that kills a worker twice is bad.
                with self._lock:
                    if self._pool is pool:
                        logger.error("an image decoder process died; restarting the pool")
                        pool.shutdown(wait=False, cancel_futures=True)
                        self._pool = self._start()
        return PreparedImage(error=f"image {name!r} crashed the decoder process")

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
