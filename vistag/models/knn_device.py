"""kNN similarity top-k on the model's device (a drop-in ``topk`` for
:class:`vistag.analyzers.knn_tagger.KnnTagger`).

On a GPU, reference blocks are copied once (fp16) and kept there while they fit
``max_device_bytes``; blocks beyond that budget are streamed per query batch. On
CPU the numpy path is as fast, so this is only used with CUDA.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


class TorchTopK:
    """Callable ``(query, block, start, k, exclude) -> (local rows, similarities)`` on ``device``.

    Blocks are kept by their position ``start``: use one instance per reference set.

    Args:
        device: a torch device (``cuda`` in practice).
        max_device_bytes: budget for reference blocks kept on the device.
        half: keep blocks in fp16 (half the memory and bandwidth; similarities are
            accumulated in fp32 by the matmul on recent GPUs).
    """

    def __init__(self, device: torch.device | str, max_device_bytes: int = 4 << 30, half: bool | None = None) -> None:
        self.device = torch.device(device)
        self.half = self.device.type == "cuda" if half is None else half
        self.max_device_bytes = max_device_bytes
        self._kept: dict[tuple[int, int, int], torch.Tensor] = {}
        self._kept_bytes = 0

    def _block(self, block: np.ndarray, start: int) -> torch.Tensor:
        key = (start, block.shape[0], block.shape[1])
        tensor = self._kept.get(key)
        if tensor is None:
            with warnings.catch_warnings():  # a read-only memory map: only ever read
                warnings.simplefilter("ignore", UserWarning)
                tensor = torch.from_numpy(np.ascontiguousarray(block)).to(self.device)
            tensor = tensor.half() if self.half else tensor
            size = tensor.numel() * tensor.element_size()
            if self._kept_bytes + size <= self.max_device_bytes:
                self._kept[key] = tensor
                self._kept_bytes += size
        return tensor

    @torch.inference_mode()
    def __call__(
        self, query: np.ndarray, block: np.ndarray, start: int, k: int, exclude: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` rows of ``block`` (offset ``start``) for each query, and their similarities."""
        ref = self._block(block, start)
        q = torch.from_numpy(np.ascontiguousarray(query)).to(self.device)
        sims = (q.to(ref.dtype) @ ref.T).float()
        if exclude is not None:
            ex = torch.from_numpy(np.asarray(exclude)).to(self.device)
            hit = (ex >= 0) & (ex < ref.shape[0])
            rows = torch.nonzero(hit).flatten()
            sims[rows, ex[rows]] = float("-inf")
        take = min(k, sims.shape[1])
        values, idx = torch.topk(sims, take, dim=1)
        return idx.cpu().numpy().astype(np.int64), values.cpu().numpy().astype(np.float32)


def torch_topk(device: torch.device | str) -> TorchTopK | None:
    """A device top-k for CUDA devices, ``None`` (use numpy) for CPU."""
    device = torch.device(device)
    return TorchTopK(device) if device.type == "cuda" else None
