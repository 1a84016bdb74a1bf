"""Confusion-matrix image with Pillow (no plotting library needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def confusion_png(cm: np.ndarray, classes: Sequence[str], path: str | Path, title: str = "", cell: int = 0) -> Path:
    """Write a row-normalised confusion matrix as a PNG heat map (true rows, predicted columns).

    Args:
        cm: ``(C, C)`` counts.
        classes: class names (axis labels).
        path: output file.
        title: caption drawn above the matrix.
        cell: pixel size of a cell (default: fits about 1,400 px).
    """
    n = len(classes)
    cell = cell or max(6, min(28, 1400 // max(n, 1)))
    font = ImageFont.load_default()
    label_w = 8 + 6 * max((len(c) for c in classes), default=1)
    top = 30 + label_w
    width, height = label_w + n * cell + 20, top + n * cell + 20
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text(
        (10, 8), title or f"confusion matrix, {n} classes (row-normalised: true class per row)", fill="black", font=font
    )
    rows = cm.sum(axis=1, keepdims=True).astype(np.float64)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=np.float64), where=rows > 0)
    for i in range(n):
        for j in range(n):
            v = norm[i, j]
            if v <= 0:
                continue
            shade = int(255 * (1 - v))
            colour = (shade, shade, 255) if i == j else (255, shade, shade)
            x0, y0 = label_w + j * cell, top + i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=colour)
    draw.rectangle([label_w, top, label_w + n * cell, top + n * cell], outline="grey")
    if cell >= 8:
        for i, name in enumerate(classes):
            draw.text((4, top + i * cell + (cell - 10) // 2), name[:40], fill="black", font=font)
        column_labels = Image.new("RGB", (label_w, n * cell), "white")
        cdraw = ImageDraw.Draw(column_labels)
        for j, name in enumerate(classes):
            cdraw.text((4, j * cell + (cell - 10) // 2), name[:40], fill="black", font=font)
        img.paste(column_labels.rotate(90, expand=True), (label_w, 30))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
