"""Colour evidence of a product photo: CIELAB statistics of its foreground pixels.

A frozen ImageNet embedding keeps little of an object's colour (it is trained to be
robust to it), yet colour is what shoppers filter by. Catalog photos show a product
on a near-white background, so the foreground is "every pixel that is not bright
and grey", and its colour is summarised in CIELAB (a perceptual space: distances
roughly match what people see):

* a joint L x a x b histogram (5 x 6 x 6 bins) of the foreground (a* and b* beyond
  the outer bins count in the outer bins);
* a hue histogram (12 bins) weighted by chroma, so greys do not vote for a hue;
* a lightness histogram (6 bins) of the achromatic pixels (black, grey, white);
* means and spreads of L, a, b and chroma, the achromatic share, the foreground share.

208 numbers per image, computed for a whole batch at once in torch
(:func:`colour_batch`, on the embedder's device), so the ``-colour`` backbones
(:class:`ColourJoined`) append them to the CNN embedding inside the forward pass.
``benchmarks/bench_colour.py`` measures what they add for ``baseColour``.

Examples:
    >>> from PIL import Image
    >>> features = colour_features(Image.new("RGB", (60, 80), (200, 20, 30)))
    >>> features.shape
    (208,)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

_SRGB_TO_XYZ = ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505))
_D65 = (0.95047, 1.0, 1.08883)


@dataclass(frozen=True)
class ColourConfig:
    """What counts as background, and the histogram bins.

    Attributes:
        background_lightness: pixels lighter than this (L*, 0-100) ...
        background_chroma: ... and greyer than this (C*ab) are background.
        min_foreground: fewer foreground pixels than this: use every pixel (a white product).
    """

    background_lightness: float = 88.0
    background_chroma: float = 6.0
    min_foreground: int = 30
    lightness_bins: tuple[float, ...] = (0.0, 20.0, 40.0, 60.0, 80.0, 101.0)
    ab_bins: int = 6
    ab_range: float = 80.0
    hue_bins: int = 12
    grey_bins: int = 6
    grey_chroma: float = 10.0

    @property
    def histogram_dim(self) -> int:
        """Length of the histogram part (the rest are 10 statistics)."""
        return (len(self.lightness_bins) - 1) * self.ab_bins**2 + self.hue_bins + self.grey_bins

    @property
    def dim(self) -> int:
        """Length of the feature vector."""
        return self.histogram_dim + 10


def lab_from_unit_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65) of sRGB values on the 0..1 scale, shape ``(..., 3)`` -> ``(..., 3)`` as ``(L*, a*, b*)``."""
    c = rgb.float().clamp(0.0, 1.0)
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    matrix = torch.tensor(_SRGB_TO_XYZ, dtype=torch.float32, device=c.device)
    xyz = linear @ matrix.T / torch.tensor(_D65, dtype=torch.float32, device=c.device)
    f = torch.where(xyz > 216 / 24389, xyz.clamp(min=1e-12) ** (1.0 / 3.0), (24389 / 27 * xyz + 16) / 116)
    return torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], dim=-1)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of 8-bit sRGB values, shape ``(..., 3)`` -> ``(..., 3)`` as ``(L*, a*, b*)``."""
    return lab_from_unit_rgb(torch.from_numpy(np.asarray(rgb, np.float32) / 255.0)).numpy()


def _foreground(lab: torch.Tensor, config: ColourConfig) -> torch.Tensor:
    chroma = torch.hypot(lab[..., 1], lab[..., 2])
    return ~((lab[..., 0] > config.background_lightness) & (chroma < config.background_chroma))


def foreground_mask(lab: np.ndarray, config: ColourConfig = ColourConfig()) -> np.ndarray:
    """True for pixels that are not near-white background (``lab`` of shape ``(..., 3)``)."""
    return _foreground(torch.from_numpy(np.asarray(lab, np.float32)), config).numpy()


def _bins(values: torch.Tensor, low: float, high: float, n: int) -> torch.Tensor:
    return ((values - low) * (n / (high - low))).floor().clamp(0, n - 1).long()


def colour_batch(rgb: torch.Tensor, config: ColourConfig = ColourConfig()) -> torch.Tensor:
    """The colour evidence of a batch: ``(N, 3, H, W)`` sRGB on the 0..1 scale -> ``(N, config.dim)`` float32."""
    n_img = rgb.shape[0]
    lab = lab_from_unit_rgb(rgb.permute(0, 2, 3, 1).reshape(n_img, -1, 3))
    L, a, b = lab.unbind(-1)
    chroma = torch.hypot(a, b)
    fg = _foreground(lab, config)
    share = fg.float().mean(1)
    w = torch.where((fg.sum(1) < config.min_foreground)[:, None], torch.ones_like(L), fg.float())
    n = w.sum(1).clamp(min=1.0)

    edges = torch.tensor(config.lightness_bins[1:-1], dtype=L.dtype, device=L.device)
    li = torch.bucketize(L.contiguous(), edges, right=True)
    ai = _bins(a, -config.ab_range, config.ab_range, config.ab_bins)
    bi = _bins(b, -config.ab_range, config.ab_range, config.ab_bins)
    n_joint = (len(config.lightness_bins) - 1) * config.ab_bins**2
    joint = L.new_zeros(n_img, n_joint).scatter_add_(1, (li * config.ab_bins + ai) * config.ab_bins + bi, w)
    hue_idx = _bins(torch.atan2(b, a), -math.pi, math.pi, config.hue_bins)
    hue = L.new_zeros(n_img, config.hue_bins).scatter_add_(1, hue_idx, w * chroma.clamp(max=60.0) / 60.0)
    grey = (chroma < config.grey_chroma).float()
    greys = L.new_zeros(n_img, config.grey_bins).scatter_add_(1, _bins(L, 0.0, 100.0, config.grey_bins), w * grey)

    def mean(v: torch.Tensor) -> torch.Tensor:
        return (w * v).sum(1) / n

    mL, ma, mb = mean(L), mean(a), mean(b)
    sL = mean((L - mL[:, None]) ** 2).sqrt()
    sa = mean((a - ma[:, None]) ** 2).sqrt()
    sb = mean((b - mb[:, None]) ** 2).sqrt()
    ordered = torch.where(w > 0, chroma, torch.full_like(chroma, float("inf"))).sort(1).values
    median = ordered.gather(1, ((n.long() - 1) // 2)[:, None]).squeeze(1)
    stats = torch.stack(
        [mL / 100, ma / 50, mb / 50, sL / 50, sa / 50, sb / 50, mean(chroma) / 50, median / 50, mean(grey), share],
        dim=1,
    )
    return torch.cat([joint / n[:, None], hue / n[:, None], greys / n[:, None], stats], dim=1).float()


def colour_features(image: Image.Image, config: ColourConfig = ColourConfig()) -> np.ndarray:
    """The colour evidence of one image (a PIL image, any mode) as ``float32[config.dim]``."""
    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), np.float32) / 255.0).permute(2, 0, 1)[None]
    return colour_batch(rgb, config)[0].numpy()


class ColourJoined(nn.Module):
    """A CNN embedding joined with the colour evidence of the same input batch.

    The output is ``[unit CNN vector, weight * unit colour vector]`` (the embedder
    L2-normalises the whole): the histograms enter as square roots (the Hellinger
    form, so a cosine between two images compares their colour distributions), and
    ``weight`` sets how much colour counts in a cosine kNN. The pixels are read back
    from the normalised input batch, pooled 2x2 first (catalog photos are smaller than
    the input, so that loses nothing and costs a quarter).

    Args:
        net: the CNN (its forward gives the embedding).
        mean: per-channel mean of the input normalisation (0..1 scale).
        std: per-channel standard deviation of the input normalisation.
        weight: norm of the colour block next to the unit CNN vector.
        config: the colour features.
    """

    mean: torch.Tensor  # buffers: the input normalisation, to read the pixels back
    std: torch.Tensor

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        weight: float,
        config: ColourConfig = ColourConfig(),
    ) -> None:
        super().__init__()
        self.net = net
        self.weight = float(weight)
        self.config = config
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The module's output for the batch ``x``."""
        features = F.normalize(self.net(x).float(), dim=1)
        with torch.autocast(device_type=x.device.type, enabled=False):
            rgb = (x.float() * self.std + self.mean).clamp(0.0, 1.0)
            if min(rgb.shape[-2:]) >= 64:
                rgb = F.avg_pool2d(rgb, 2)
            colour = colour_batch(rgb, self.config)
            hist = self.config.histogram_dim
            colour = torch.cat([colour[:, :hist].clamp(min=0).sqrt(), colour[:, hist:]], dim=1)
            colour = F.normalize(colour, dim=1) * self.weight
        return torch.cat([features, colour], dim=1)
