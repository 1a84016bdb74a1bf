"""Batched, L2-normalised image embeddings on CPU or GPU."""

from __future__ import annotations

import logging
import os
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from vistag.models.config import BackboneConfig
from vistag.models.preprocess import preprocess
from vistag.models.registry import builder_for, get_config

logger = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU.

    Raises:
        ValueError: ``cuda`` was asked for but is not available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available; use --device auto or cpu")
    return torch.device(device)


class ImageEmbedder:
    """Embeds images with a registered backbone.

    Args:
        name: backbone name (see :func:`vistag.models.available_backbones`).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: images per forward pass.
        input_size: override the backbone's input resolution.
        weights: a local weights file (required for torchvision backbones).
    """

    def __init__(
        self,
        name: str = "efficientnet-lite0",
        device: str = "auto",
        batch_size: int = 64,
        input_size: int | None = None,
        weights: str | None = None,
    ) -> None:
        self.config: BackboneConfig = get_config(name).with_input_size(input_size)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        if self.device.type == "cpu":
            torch.set_num_threads(max(1, os.cpu_count() or 1))
        model = builder_for(name)(self.config, weights)
        self.model = model.eval().to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        logger.info("loaded %s on %s", self.config.model_id, self.device)

    @property
    def model_id(self) -> str:
        """Identifier of the embedding space (name, version, resolution)."""
        return self.config.model_id

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self.config.embedding_dim

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """The CHW float32 array for one image (the same at index and query time)."""
        return preprocess(image, self.config)

    @torch.inference_mode()
    def embed_arrays(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """Embed preprocessed CHW arrays; returns (N, D) float32 unit vectors."""
        if len(arrays) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for start in range(0, len(arrays), self.batch_size):
            batch = torch.from_numpy(np.stack(arrays[start:start + self.batch_size]))
            if self.device.type == "cuda":
                batch = batch.pin_memory().to(self.device, non_blocking=True).to(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.float16):
                    feats = self.model(batch)
            else:
                feats = self.model(batch)
            feats = torch.nn.functional.normalize(feats.float(), dim=1)
            out.append(feats.cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def embed_images(self, images: Iterable[Image.Image]) -> np.ndarray:
        """Preprocess and embed PIL images; returns (N, D) float32 unit vectors."""
        return self.embed_arrays([self.preprocess(im) for im in images])
