"""Image preprocessing shared by indexing and querying (no torch).

Every image goes through the same steps, wherever it comes from: convert to RGB
(flattening transparency onto white), pad to a white square, resize to the model's
input size with PIL (:func:`prepare`, uint8), scale to 0..1 and normalise by the
config's mean/std (:func:`normalize`; the embedder does this step on the batch, on
the model's device).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from vistag.models.config import BackboneConfig

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


def to_rgb(image: Image.Image, fill: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any PIL mode to RGB, compositing transparency onto ``fill``."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, fill)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float32)
        peak = float(array.max()) or 1.0
        return Image.fromarray((array * (255.0 / max(peak, 255.0))).clip(0, 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def pad_to_square(image: Image.Image, fill: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Centre ``image`` on a square canvas of colour ``fill``."""
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def prepare(image: Image.Image, config: BackboneConfig) -> np.ndarray:
    """The uint8 HWC array of the model's input size (RGB, padded square, resized).

    This is the CPU-heavy part of preprocessing; it runs in decode workers and its
    output is 4x smaller than the normalised float array it becomes.
    """
    rgb = pad_to_square(to_rgb(image, config.fill), config.fill)
    size = config.input_size
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), _RESAMPLE[config.interpolation])
    return np.asarray(rgb, dtype=np.uint8)


def normalize(prepared: np.ndarray, config: BackboneConfig) -> np.ndarray:
    """uint8 HWC (from :func:`prepare`) -> float32 CHW scaled to 0..1 and normalised by mean/std."""
    array = prepared.astype(np.float32) * np.float32(1.0 / 255.0)
    scaled = (array - np.asarray(config.mean, dtype=np.float32)) / np.asarray(config.std, dtype=np.float32)
    return np.ascontiguousarray(scaled.transpose(2, 0, 1))


def preprocess(image: Image.Image, config: BackboneConfig) -> np.ndarray:
    """Return a float32 CHW array ready for the backbone (``normalize(prepare(image))``)."""
    return normalize(prepare(image, config), config)
