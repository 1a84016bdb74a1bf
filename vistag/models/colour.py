"""Colour evidence of a product photo: CIELAB statistics of its foreground pixels.

A frozen ImageNet embedding keeps little of an object's colour (it is trained to be
robust to it), yet colour is what shoppers filter by. Catalog photos show a product
on a near-white background, so the foreground is "every pixel that is not bright
and grey", and its colour is summarised in CIELAB (a perceptual space: distances
roughly match what people see):

* a joint L x a x b histogram (5 x 6 x 6 bins) of the foreground;
* a hue histogram (12 bins) weighted by chroma, so greys do not vote for a hue;
* a lightness histogram (6 bins) of the achromatic pixels (black, grey, white);
* means and spreads of L, a, b and chroma, the achromatic share, the foreground share.

208 numbers per image, no torch, about 1 ms for a 60 x 80 photo. Issue 14 measures
what they add to the embedding for ``baseColour`` (``benchmarks/bench_colour.py``).

Example:
    >>> from PIL import Image
    >>> features = colour_features(Image.new("RGB", (60, 80), (200, 20, 30)))
    >>> features.shape
    (208,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], np.float32)
_D65 = np.array([0.95047, 1.0, 1.08883], np.float32)


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
    def dim(self) -> int:
        """Length of the feature vector."""
        return (len(self.lightness_bins) - 1) * self.ab_bins ** 2 + self.hue_bins + self.grey_bins + 10


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of 8-bit sRGB values, shape ``(..., 3)`` -> ``(..., 3)`` as ``(L*, a*, b*)``."""
    c = rgb.astype(np.float32) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def foreground_mask(lab: np.ndarray, config: ColourConfig = ColourConfig()) -> np.ndarray:
    """True for pixels that are not near-white background (``lab`` of shape ``(n, 3)``)."""
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    return ~((lab[:, 0] > config.background_lightness) & (chroma < config.background_chroma))


def colour_features(image, config: ColourConfig = ColourConfig()) -> np.ndarray:
    """The colour evidence of one image (a PIL image, any mode) as ``float32[config.dim]``."""
    lab = srgb_to_lab(np.asarray(image.convert("RGB"))).reshape(-1, 3)
    fg = foreground_mask(lab, config)
    share = float(fg.mean())
    if fg.sum() < config.min_foreground:
        fg = np.ones_like(fg)
    L, a, b = lab[fg, 0], lab[fg, 1], lab[fg, 2]
    chroma = np.hypot(a, b)
    n = len(L)
    edges = np.linspace(-config.ab_range, config.ab_range, config.ab_bins + 1)
    joint, _ = np.histogramdd(np.stack([L, a, b], 1), bins=(np.array(config.lightness_bins), edges, edges))
    hue, _ = np.histogram(np.arctan2(b, a), bins=config.hue_bins, range=(-np.pi, np.pi),
                          weights=np.minimum(chroma, 60.0) / 60.0)
    grey = chroma < config.grey_chroma
    greys, _ = np.histogram(L[grey], bins=config.grey_bins, range=(0.0, 100.0))
    stats = np.array([L.mean() / 100, a.mean() / 50, b.mean() / 50, L.std() / 50, a.std() / 50, b.std() / 50,
                      chroma.mean() / 50, np.median(chroma) / 50, grey.mean(), share])
    return np.concatenate([joint.ravel() / n, hue / n, greys / n, stats]).astype(np.float32)
