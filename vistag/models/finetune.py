"""Fine-tuning the network with its heads (``vistag train --fine-tune``), in minutes on a CPU.

The frozen part of EfficientNet-Lite (the stem and the stages up to its middle stage,
:meth:`~vistag.models.backbones.LiteMeanMid.to_mid`) runs once per image and view: its
feature maps (112 x 8 x 8 for lite0 at 128 px, float16, 14 KB per view) go to an on-disk
cache keyed by the image's content, like embeddings (:class:`MidActivations`). Training
then runs only :meth:`~vistag.models.backbones.LiteMeanMid.from_mid` -- the last stages
at 4 x 4 (the last ``stages`` of them trainable, the rest frozen), Chen et al.'s spatial
attention, the head convolution, the pooling -- and the multi-task head, end to end. To train
more stages than follow the middle one, the maps are cached earlier, before the earliest
trained stage (:meth:`~vistag.models.backbones.LiteMeanMid.cut_before`; a cache of their own).
The recipe:

* linear probing, then fine-tuning: the head starts from a fresh one trained for a few
  epochs on the frozen features (``head_epochs``), the attention module from the identity.
  Not from the fully trained head: that one has memorised the training rows (99 %
  articleType, 96 % colour on them against 87 / 62 % on validation rows), so its loss leaves
  the network almost nothing to learn from, and fine-tuning from it never passed it;
* AdamW with two learning rates (the network's lower than the heads'), linear warm-up and
  cosine decay (one-cycle), label smoothing, the masked multi-task loss of
  :func:`~vistag.models.training.multitask_loss`;
* each epoch shows every training image once, in one of its cached views: the photo
  itself, its mirror image with a random crop (zoom 0.75-1, aspect within 10 %), ...;
  no colour jitter (colour is a label);
* batch-norm statistics stay those of the published weights (the batches are small and the
  statistics are those the frozen stages were trained with);
* early stopping on the validation rows (mean task accuracy, as for the heads);
* then (in :func:`~vistag.models.trainer.fine_tune_model`, ``refit_head``) the usual head is
  trained afresh on the fine-tuned network's vectors.

References:
    Z. Chen, S. Ai, C. Jia, "Structure-Aware Deep Learning for Product Image Classification", ACM TOMM 15(1s), 2019.
    A. Kumar, A. Raghunathan, R. Jones, T. Ma, P. Liang, "Fine-Tuning can Distort Pretrained Features and
    Underperform Out-of-Distribution" (linear probing, then fine-tuning).
    F. Li, S. Kant, S. Araki, S. Bangera, S. S. Shukla, "Neural Networks for Fashion Image Classification and
    Visual Search".
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from vistag.errors import ConfigError
from vistag.models.backbones import LiteMeanMid, saved_weights
from vistag.models.heads import MultiTaskHead
from vistag.models.seeding import seeded
from vistag.models.training import Split, class_weights, optimise_batch, validation_score

logger = logging.getLogger(__name__)


@dataclass
class FineTuneConfig:
    """Hyper-parameters of :func:`fine_tune` (``vistag train --fine-tune`` flags map one to one).

    Attributes:
        stages: the last stages of the network that are trained (EfficientNet-Lite0 has two
            after its middle stage: 4 blocks of 192 channels, then 1 of 320 and the head
            convolution, which always trains with the last stage). With more, the maps are
            cached before the earliest trained stage (3: the 80-channel stage's output, 80 x 8 x 8,
            10 KB per view) and the middle stage, whose maps the vector pools too, trains as well.
        attention: insert Chen et al.'s spatial attention after the last block.
        views: cached views per image: the photo, then mirror images with random crops.
        epochs: maximum epochs.
        batch_size: images per step.
        lr: peak learning rate of the heads.
        backbone_lr: peak learning rate of the network's trainable stages.
        head_epochs: epochs of the fresh head trained on the frozen features that fine-tuning
            starts from (0: start from the fully trained frozen head).
        refit_head: train the usual head afresh on the fine-tuned vectors (else the head
            fine-tuned with the network is kept).
        weight_decay: AdamW weight decay.
        warmup: share of the steps spent warming up (then cosine decay).
        label_smoothing: for the softmax tasks.
        patience: stop after this many epochs without a better validation score (the default,
            the number of epochs, never stops early: the first epochs, at the peak learning
            rate, score below the start and the schedule's decay is where fine-tuning gains).
        seed: makes training (and the random crops) repeatable.

    Examples:
        >>> FineTuneConfig().stages
        2
    """

    stages: int = 2
    attention: bool = True
    views: int = 2
    epochs: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    backbone_lr: float = 1e-4
    head_epochs: int = 4
    refit_head: bool = True
    weight_decay: float = 0.05
    warmup: float = 0.1
    label_smoothing: float = 0.1
    patience: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.stages < 1:
            raise ValueError(f"fine-tuning trains at least one stage, got stages={self.stages}")
        if not 1 <= self.views <= 8:
            raise ValueError(f"views must be within 1..8, got {self.views}")
        if self.head_epochs < 0:
            raise ValueError(f"head_epochs must be 0 or more, got {self.head_epochs}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def augment(batch: torch.Tensor, view: int, generator: torch.Generator) -> torch.Tensor:
    """View ``view`` of a normalised NCHW batch: 0 is the batch itself; odd views are mirror
    images, and every view above 0 a random crop (zoom 0.75-1 of the side, aspect within
    10 %), resized back to the input size. No colour change.

    Examples:
        >>> import torch
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> bool(torch.equal(augment(x, 0, torch.Generator()), x))
        True
        >>> augment(x, 1, torch.Generator().manual_seed(0)).shape
        torch.Size([1, 1, 4, 4])
    """
    if view == 0:
        return batch
    n = len(batch)
    zoom = torch.empty(n).uniform_(0.75, 1.0, generator=generator)
    aspect = torch.empty(n).uniform_(-0.1, 0.1, generator=generator).exp().sqrt()
    sx, sy = (zoom * aspect).clamp(max=1.0), (zoom / aspect).clamp(max=1.0)
    tx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - sx)
    ty = (torch.rand(n, generator=generator) * 2 - 1) * (1 - sy)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sx * (-1.0 if view % 2 else 1.0)
    theta[:, 0, 2] = tx
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta.to(batch), list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)


class MidActivations:
    """The cached feature maps of ``views`` views of each image, in the shape of an embedder: the
    middle stage's, or an earlier block's when more stages train (``stages``,
    :meth:`~vistag.models.backbones.LiteMeanMid.cut_before`).

    A :class:`~vistag.models.embedding.BatchEmbedder` (through
    :func:`~vistag.models.embedding.open_batch_embedder`) reads, decodes and caches them
    as it does embeddings: one float16 row of ``views x C x H x W`` numbers per image, under
    a model id of their own.

    Args:
        embedder: an :class:`~vistag.models.embedder.ImageEmbedder` of an EfficientNet-Lite backbone.
        views: views per image (see :func:`augment`).
        seed: seed of the random crops (part of the model id).
        stages: the stages fine-tuning trains (where the maps are cut: part of the model id).

    Raises:
        ConfigError: a backbone that is not EfficientNet-Lite with ``mean+mid`` pooling, or a compiled
            one; ``stages`` out of range.
    """

    cache_dtype = np.float16

    def __init__(self, embedder: Any, views: int = 2, seed: int = 0, stages: int = 2) -> None:
        lite = embedder.model
        if embedder.config.colour and isinstance(getattr(lite, "net", None), LiteMeanMid):
            lite = lite.net  # ColourJoined: the colour evidence is read from the pixels, not from the maps
        if embedder.compiled or not isinstance(lite, LiteMeanMid):
            raise ConfigError(
                f"{embedder.model_id}: fine-tuning needs an EfficientNet-Lite backbone with mean+mid(grid) pooling "
                "(efficientnet-lite0/1/2), not compiled"
            )
        self.embedder = embedder
        self.lite = lite
        self.cut = lite.cut_before(stages)
        self.views = views
        self.seed = seed
        self.config = embedder.config
        self.batch_size = embedder.batch_size
        self.device = embedder.device
        with torch.inference_mode():
            probe = lite.to_mid(
                torch.zeros(1, 3, self.config.input_size, self.config.input_size, device=self.device), self.cut
            )
        self.shape: tuple[int, int, int] = tuple(probe.shape[1:])  # type: ignore[assignment]
        self.dim = views * math.prod(self.shape)
        network = self.config
        if network.colour:  # the maps are the published network's: shared with the backbone without colour
            network = replace(network, name=network.name.removesuffix("-colour"), colour=0.0)
        network_id = network.model_id
        self.model_id = f"{network_id}-mid{self.cut}-views{views}-seed{seed}"
        self._batches = 0

    @torch.inference_mode()
    def embed_prepared(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, views x C x H x W)`` float16 feature maps of uint8 HWC arrays."""
        out = []
        for start in range(0, len(arrays), self.batch_size):
            batch = self.embedder.prepared_batch(arrays[start : start + self.batch_size])
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self._batches)
            self._batches += 1
            maps = [
                self.lite.to_mid(augment(batch, v, generator).contiguous(memory_format=torch.channels_last), self.cut)
                for v in range(self.views)
            ]
            out.append(torch.stack(maps, 1).flatten(1).half().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float16)
        return np.concatenate(out)


@dataclass
class FineTuneResult:
    """What :func:`fine_tune` trained.

    Attributes:
        network: the network (its best epoch's weights).
        head: the multi-task head trained with it.
        history: epochs, losses and validation scores.
        weights: the network's state dict as saved bytes (``backbone.pt``).
        digest: the first 12 hex digits of their sha256 (the fine-tuned model id).
    """

    network: LiteMeanMid
    head: MultiTaskHead
    history: dict[str, Any]
    weights: bytes = b""
    digest: str = ""
    trainable: list[str] = field(default_factory=list)


def trainable_parameters(network: LiteMeanMid, stages: int) -> list[tuple[str, torch.nn.Parameter]]:
    """The parameters trained when the last ``stages`` stages are unfrozen (with the head convolution,
    its batch norm and the attention module); the others get ``requires_grad=False``.

    Raises:
        ConfigError: ``stages`` out of range (:meth:`~vistag.models.backbones.LiteMeanMid.cut_before`).

    Examples:
        >>> names = [n for n, _ in trainable_parameters(network, 1)]  # doctest: +SKIP
    """
    network.cut_before(stages)  # checks the range
    groups = network.stages()
    blocks = {i for s in groups[len(groups) - stages :] for i in s}
    chosen = []
    for name, param in network.named_parameters():
        parts = name.split(".")
        train = (
            (parts[:2] == ["net", "_blocks"] and int(parts[2]) in blocks)
            or parts[:2] in (["net", "_conv_head"], ["net", "_bn1"])
            or parts[0] == "attention"
        )
        param.requires_grad_(train)
        if train:
            chosen.append((name, param))
    return chosen


def joined(vectors: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """The embedding the heads read: the network's unit vectors, joined with each row's fixed ``extra``
    block when there is one (the colour evidence of a ``-colour`` backbone, at the norm
    :class:`~vistag.models.colour.ColourJoined` gives it), the whole L2-normalised as the embedder does.

    Examples:
        >>> import torch
        >>> joined(torch.tensor([[3.0, 4.0]]), None).tolist()
        [[0.6000000238418579, 0.800000011920929]]
        >>> joined(torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929, 0.0]]
    """
    vectors = F.normalize(vectors, dim=1)
    return vectors if extra is None else F.normalize(torch.cat([vectors, extra.to(vectors)], dim=1), dim=1)


def extra_block(x: np.ndarray, dim: int) -> np.ndarray | None:
    """The fixed block that follows the network's ``dim`` numbers in embeddings ``x`` (``None`` if nothing
    follows), at the norm it had before the embedder normalised the whole (so :func:`joined` rebuilds ``x``).

    Examples:
        >>> import numpy as np
        >>> x = np.array([[0.6, 0.8, 1.0]]) / np.sqrt(2)  # a unit vector of 2 numbers, then a block of norm 1
        >>> np.round(extra_block(x, 2), 6).tolist()
        [[1.0]]
    """
    if x.shape[1] == dim:
        return None
    cnn = np.linalg.norm(x[:, :dim].astype(np.float32), axis=1, keepdims=True)
    return (x[:, dim:].astype(np.float32) / np.maximum(cnn, 1e-12)).astype(np.float32)


@torch.inference_mode()
def embed_maps(
    network: LiteMeanMid,
    maps: np.ndarray,
    extra: np.ndarray | None = None,
    batch_size: int = 512,
    cut: int | None = None,
) -> np.ndarray:
    """Embeddings of cached maps ``(N, C, H, W)`` (one view) of block ``cut`` (default the middle stage),
    float32, computed on the network's device: unit vectors, joined with the rows' ``extra`` block when
    given (see :func:`joined`).
    """
    network.eval()
    device = next(network.parameters()).device
    out = []
    for start in range(0, len(maps), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(maps[start : start + batch_size])).to(device).float()
        more = None if extra is None else torch.from_numpy(extra[start : start + batch_size])
        emb = joined(network.from_mid(x.contiguous(memory_format=torch.channels_last), cut), more)
        out.append(emb.cpu().numpy())
    dim = network.dim + (0 if extra is None else extra.shape[1])
    return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


def fine_tune(
    network: LiteMeanMid,
    head: MultiTaskHead,
    train: Split,
    train_maps: np.ndarray,
    val: Split | None,
    val_maps: np.ndarray | None,
    config: FineTuneConfig,
    class_weighting: str = "sqrt",
    progress: bool = False,
    device: str | torch.device = "cpu",
    *,
    train_extra: np.ndarray | None = None,
    val_extra: np.ndarray | None = None,
) -> FineTuneResult:
    """Train the network's last stages and the multi-task head together (see the module docstring).

    Args:
        network: the EfficientNet-Lite module (changed in place; with an attention module when asked for).
        head: the head fine-tuning starts from, trained on the frozen features (its copy is trained).
        train: the training rows' targets (``x`` is not used).
        train_maps: their cached maps, ``(N, views, C, H, W)``, cut where ``config.stages`` asks
            (:meth:`~vistag.models.backbones.LiteMeanMid.cut_before`, :class:`MidActivations`).
        val: the validation rows' targets (``None``: all epochs, the last kept).
        val_maps: their maps (the first view is used).
        config: hyper-parameters.
        class_weighting: ``none``, ``sqrt`` or ``balanced`` (as for the heads).
        progress: show a progress bar over steps.
        device: where the network and head train (the cached maps stay in host memory; each
            batch is copied over).
        train_extra: a fixed block joined to each training row's network vector before the head
            (:func:`joined`; the colour evidence of a ``-colour`` backbone, :func:`extra_block`).
        val_extra: the same for the validation rows.

    Returns:
        The network and head of the best epoch, the history, and the saved weights with their digest.
    """
    with seeded(config.seed):
        return _fine_tune(
            network,
            head,
            train,
            train_maps,
            val,
            val_maps,
            config,
            class_weighting,
            progress,
            torch.device(device),
            train_extra,
            val_extra,
        )


def _fine_tune(
    network: LiteMeanMid,
    head: MultiTaskHead,
    train: Split,
    train_maps: np.ndarray,
    val: Split | None,
    val_maps: np.ndarray | None,
    config: FineTuneConfig,
    class_weighting: str,
    progress: bool,
    device: torch.device,
    train_extra: np.ndarray | None,
    val_extra: np.ndarray | None,
) -> FineTuneResult:
    import copy

    head = copy.deepcopy(head).to(device)
    network.to(device)
    chosen = trainable_parameters(network, config.stages)
    cut = network.cut_before(config.stages)
    generator = torch.Generator().manual_seed(config.seed)
    n, views = len(train), train_maps.shape[1]
    ys = {name: torch.from_numpy(y).to(device) for name, y in train.targets.items()}
    weights = {name: class_weights(y, head.config.tasks[name], class_weighting) for name, y in train.targets.items()}
    weights = {name: w.to(device) if w is not None else None for name, w in weights.items()}
    tags = torch.from_numpy(train.tags).to(device) if train.tags is not None and head.config.n_tags else None
    tag_mask = torch.from_numpy(train.tag_mask).to(device) if tags is not None and train.tag_mask is not None else None
    steps = max(1, math.ceil(n / config.batch_size))
    extra = None if train_extra is None else torch.from_numpy(np.ascontiguousarray(train_extra, np.float32)).to(device)
    groups = [
        {"params": [p for _, p in chosen], "lr": config.backbone_lr},
        {"params": list(head.parameters()), "lr": config.lr},
    ]
    opt = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=[config.backbone_lr, config.lr],
        total_steps=config.epochs * steps,
        pct_start=config.warmup,
        anneal_strategy="cos",
    )

    def state() -> tuple[dict, dict]:
        return (
            {k: v.detach().clone() for k, v in network.state_dict().items()},
            {k: v.detach().clone() for k, v in head.state_dict().items()},
        )

    def score() -> dict[str, float]:
        assert val is not None and val_maps is not None
        x = embed_maps(network, val_maps[:, 0], val_extra, cut=cut)
        return validation_score(head, Split(x, val.targets, val.tags, val.tag_mask))

    history: list[dict] = []
    best_score, best_epoch, stale = -1.0, 0, 0
    if val is not None and val_maps is not None and len(val):
        start = score()
        best_score = start["score"]
        history.append({"epoch": 0, **{f"val_{k}": round(v, 5) for k, v in start.items()}})
    best = state()
    started = time.monotonic()
    bar = tqdm(total=config.epochs * steps, desc="fine-tune", unit="step", disable=not progress, leave=False)
    for epoch in range(config.epochs):
        network.eval()  # batch-norm statistics and drop-connect stay as published
        head.train()
        order = torch.randperm(n, generator=generator).numpy()
        picks = torch.randint(views, (n,), generator=generator).numpy()
        total = 0.0
        for step in range(steps):
            idx = np.sort(order[step * config.batch_size : (step + 1) * config.batch_size])
            maps = torch.from_numpy(train_maps[idx, picks[idx]]).to(device).float()
            more = None if extra is None else extra[torch.from_numpy(idx)]
            out = head(joined(network.from_mid(maps.contiguous(memory_format=torch.channels_last), cut), more))
            ti = torch.from_numpy(idx).to(device)
            total += optimise_batch(opt, sched, out, ti, ys, weights, tags, tag_mask, config.label_smoothing)
            bar.update(1)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": round(total / steps, 5),
            "seconds": round(time.monotonic() - started, 1),
        }
        if val is not None and val_maps is not None and len(val):
            scores = score()
            record.update({f"val_{k}": round(v, 5) for k, v in scores.items()})
            if scores["score"] > best_score + 1e-5:
                best_score, best_epoch, stale = scores["score"], epoch + 1, 0
                best = state()
            else:
                stale += 1
        else:
            best, best_epoch = state(), epoch + 1
        history.append(record)
        logger.info("fine-tune epoch %s", record)
        if stale >= config.patience:
            break
    bar.close()
    network.load_state_dict(best[0])
    head.load_state_dict(best[1])
    network.eval()
    head = head.cpu().eval()  # the head is saved and used on the host; the network embeds on ``device``
    for param in network.parameters():
        param.requires_grad_(False)
    weights_bytes, digest = saved_weights(network)
    return FineTuneResult(
        network,
        head,
        {
            "epochs_run": len([h for h in history if h["epoch"] > 0]),
            "best_epoch": best_epoch,
            "best_val_score": best_score,
            "seconds": round(time.monotonic() - started, 2),
            "history": history,
        },
        weights_bytes,
        digest,
        [name for name, _ in chosen],
    )
