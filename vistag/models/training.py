"""Training loop of the multi-task head on cached embeddings (torch, CPU-friendly).

Losses (summed):

* each softmax task: cross-entropy with label smoothing over the rows whose label
  is present -- rows with ``-1`` are masked out, as in Chen et al. eq. 7, never
  counted as a negative; optional class weights counter imbalance;
* the tag layer: binary cross-entropy masked by the per-row, per-tag mask of
  :func:`vistag.models.labels.tag_targets`.

The epoch with the best validation score (mean task accuracy, plus tag F1 when
there are tags) is kept (early stopping).

References:
    Z. Chen, S. Ai, C. Jia, "Structure-Aware Deep Learning for Product Image Classification", ACM TOMM 15(1s), 2019.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from vistag.models.heads import HeadConfig, MultiTaskHead
from vistag.models.seeding import seeded

logger = logging.getLogger(__name__)

TAGS = "__tags__"
#: Cap of a class's loss weight relative to the mean row weight.
MAX_CLASS_WEIGHT = 5.0


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_head` (CLI flags map one to one).

    Attributes:
        hidden: shared hidden layer width (0: linear heads).
        dropout: dropout rate.
        epochs: maximum epochs.
        batch_size: rows per step.
        lr: peak AdamW learning rate (one-cycle cosine schedule).
        weight_decay: AdamW weight decay.
        label_smoothing: for the softmax tasks.
        class_weighting: ``none``, ``sqrt`` (weights ~ 1/sqrt(frequency)) or
            ``balanced`` (~ 1/frequency).
        patience: stop after this many epochs without a better validation score.
        seed: makes training repeatable.
    """

    hidden: int = 1024
    dropout: float = 0.3
    epochs: int = 40
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    class_weighting: str = "sqrt"
    patience: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.class_weighting not in ("none", "sqrt", "balanced"):
            raise ValueError(f"class_weighting must be none, sqrt or balanced, got {self.class_weighting!r}")

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return asdict(self)


@dataclass
class Split:
    """Embeddings and targets of one split.

    Attributes:
        x: ``(N, D)`` float32 embeddings.
        targets: task name -> ``(N,)`` int64 class indexes, ``-1`` where missing.
        tags: ``(N, T)`` 0/1 targets of the tag layer (or ``None``).
        tag_mask: ``(N, T)`` 1 where the tag's label is known.
    """

    x: np.ndarray
    targets: dict[str, np.ndarray]
    tags: np.ndarray | None = None
    tag_mask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)


def class_weights(labels: np.ndarray, n_classes: int, mode: str) -> torch.Tensor | None:
    """Per-class loss weights (mean 1 over the training rows) or ``None`` for ``mode='none'``."""
    if mode == "none":
        return None
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    power = 0.5 if mode == "sqrt" else 1.0
    weights = np.where(counts > 0, (counts.clip(min=1) / max(counts.sum(), 1)) ** -power, 0.0)
    for _ in range(3):  # mean 1 over the rows, and no class above MAX_CLASS_WEIGHT (a 1-row class must not dominate)
        weights = weights / max((weights * counts).sum() / max(counts.sum(), 1), 1e-12)
        weights = weights.clip(max=MAX_CLASS_WEIGHT)
    return torch.tensor(weights, dtype=torch.float32)


def multitask_loss(
    out: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    weights: dict[str, torch.Tensor | None],
    tags: torch.Tensor | None,
    tag_mask: torch.Tensor | None,
    label_smoothing: float,
) -> torch.Tensor:
    """The summed loss of one batch (see the module docstring): masked cross-entropy per softmax task,
    masked binary cross-entropy of the tags (scaled to about one task's weight).

    Args:
        out: the head's logits by task name.
        targets: the batch's class indexes by task name, ``-1`` where unknown.
        weights: per task, class weights or ``None``.
        tags: the batch's 0/1 tag targets (``None``: no tag layer).
        tag_mask: 1 where a tag's label is known.
        label_smoothing: for the softmax tasks.

    Examples:
        >>> import torch
        >>> loss = multitask_loss({"t": torch.zeros(2, 3)}, {"t": torch.tensor([0, -1])}, {"t": None}, None, None, 0.0)
        >>> round(float(loss), 4)  # ln 3: one known row, uniform logits
        1.0986
    """
    loss = torch.zeros((), device=next(iter(out.values())).device)
    for name, y in targets.items():
        known = y >= 0
        if known.any():
            loss = loss + F.cross_entropy(
                out[name][known], y[known], weight=weights.get(name), label_smoothing=label_smoothing
            )
    if tags is not None and tag_mask is not None and TAGS in out:
        bce = F.binary_cross_entropy_with_logits(out[TAGS], tags, reduction="none")
        loss = loss + (bce * tag_mask).sum() / tag_mask.sum().clamp(min=1.0) * 10.0  # ~ the scale of one CE task
    return loss


def optimise_batch(
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    out: dict[str, torch.Tensor],
    idx: torch.Tensor,
    targets: dict[str, torch.Tensor],
    weights: dict[str, torch.Tensor | None],
    tags: torch.Tensor | None,
    tag_mask: torch.Tensor | None,
    label_smoothing: float,
) -> float:
    """One optimiser step on the :func:`multitask_loss` of a batch (rows ``idx`` of the targets); its loss."""
    loss = multitask_loss(
        out,
        {name: y[idx] for name, y in targets.items()},
        weights,
        tags[idx] if tags is not None else None,
        tag_mask[idx] if tag_mask is not None else None,
        label_smoothing,
    )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return float(loss.detach())


@torch.inference_mode()
def predict_logits(head: MultiTaskHead, x: np.ndarray, batch_size: int = 4096) -> dict[str, np.ndarray]:
    """Logits of every task for ``x`` (eval mode), as float32 arrays."""
    head.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(x), batch_size):
        out = head(torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)))
        for name, logits in out.items():
            parts.setdefault(name, []).append(logits.float().numpy())
    return {name: np.concatenate(p) for name, p in parts.items()}


def fit_temperatures(head: MultiTaskHead, split: Split) -> dict[str, float]:
    """Per softmax task, the temperature that minimises the validation NLL (calibration).

    Label smoothing and class weights make raw softmax probabilities too low or too
    high; dividing the logits by this temperature makes confidence thresholds mean
    what they say. Tasks without validation labels keep 1.0.
    """
    logits = predict_logits(head, split.x)
    grid = np.round(np.arange(0.3, 3.01, 0.05), 2)
    out = {}
    for name, y in split.targets.items():
        known = y >= 0
        if known.sum() < 10:
            out[name] = 1.0
            continue
        z = torch.from_numpy(logits[name][known]).double()
        yt = torch.from_numpy(y[known])
        nll = [float(F.cross_entropy(z / t, yt)) for t in grid]
        out[name] = float(grid[int(np.argmin(nll))])
    return out


def validation_score(head: MultiTaskHead, split: Split) -> dict[str, float]:
    """Accuracy of each task on its labelled rows, tag micro-F1 at 0.5, and their mean as ``score``."""
    logits = predict_logits(head, split.x)
    scores: dict[str, float] = {}
    for name, y in split.targets.items():
        known = y >= 0
        if known.any():
            scores[name] = float((logits[name][known].argmax(1) == y[known]).mean())
    if split.tags is not None and split.tag_mask is not None and TAGS in logits:
        pred = logits[TAGS] > 0
        m = split.tag_mask > 0
        tp = float((pred & (split.tags > 0) & m).sum())
        fp = float((pred & (split.tags == 0) & m).sum())
        fn = float((~pred & (split.tags > 0) & m).sum())
        scores[TAGS] = 2 * tp / max(2 * tp + fp + fn, 1.0)
    scores["score"] = float(np.mean(list(scores.values()))) if scores else 0.0
    return scores


def train_head(
    head_config: HeadConfig, train: Split, val: Split | None, config: TrainConfig, progress: bool = False
) -> tuple[MultiTaskHead, dict]:
    """Train a :class:`MultiTaskHead`; return it (best epoch) and the training history.

    Args:
        head_config: the head's shape.
        train: training rows.
        val: validation rows for early stopping (``None``: train all epochs).
        config: hyper-parameters.
        progress: show a progress bar over epochs.
    """
    with seeded(config.seed):  # reproducible, and the caller's torch random state is left as it was
        return _train_head(head_config, train, val, config, progress)


def _train_head(
    head_config: HeadConfig, train: Split, val: Split | None, config: TrainConfig, progress: bool
) -> tuple[MultiTaskHead, dict]:
    generator = torch.Generator().manual_seed(config.seed)
    head = MultiTaskHead(head_config)
    x = torch.from_numpy(np.ascontiguousarray(train.x, dtype=np.float32))
    head.set_normalization(x.mean(0), x.std(0))
    ys = {name: torch.from_numpy(y) for name, y in train.targets.items()}
    weights = {
        name: class_weights(y, head_config.tasks[name], config.class_weighting) for name, y in train.targets.items()
    }
    tags = torch.from_numpy(train.tags) if train.tags is not None and head_config.n_tags else None
    tag_mask = torch.from_numpy(train.tag_mask) if tags is not None else None
    steps_per_epoch = max(1, math.ceil(len(train) / config.batch_size))
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.1
    )
    best_score, best_state, best_epoch, stale = -1.0, None, 0, 0
    history: list[dict] = []
    started = time.monotonic()
    bar = tqdm(range(config.epochs), desc="train", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        head.train()
        order = torch.randperm(len(train), generator=generator)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            total += optimise_batch(opt, sched, head(x[idx]), idx, ys, weights, tags, tag_mask, config.label_smoothing)
        record = {"epoch": epoch + 1, "loss": round(total / steps_per_epoch, 5)}
        if val is not None and len(val):
            scores = validation_score(head, val)
            record.update({f"val_{k}": round(v, 5) for k, v in scores.items()})
            if scores["score"] > best_score + 1e-5:
                best_score, best_epoch, stale = scores["score"], epoch + 1, 0
                best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
            else:
                stale += 1
        history.append(record)
        bar.set_postfix(loss=record["loss"], val=record.get("val_score"))
        logger.debug("epoch %s", record)
        if val is not None and stale >= config.patience:
            break
    bar.close()
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    return head, {
        "epochs_run": len(history),
        "best_epoch": best_epoch or len(history),
        "best_val_score": best_score,
        "seconds": round(time.monotonic() - started, 2),
        "history": history,
    }
