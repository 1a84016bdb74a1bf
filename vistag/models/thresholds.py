"""Decision thresholds of the multi-label tag layer, tuned on validation rows.

Sahay et al. tuned one global threshold by Hamming score; vistag tunes one per tag
(maximising that tag's F1) and reports both.

References:
    A. Sahay, A. Bagree, K. Susanto, N. Padiyara, U. Chaturvedi, "Image Tagging for Search and Recommendation".
"""

from __future__ import annotations

import numpy as np

GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


def tune_per_tag(
    probs: np.ndarray, targets: np.ndarray, mask: np.ndarray, default: float = 0.5, min_positives: int = 3
) -> np.ndarray:
    """The threshold of each tag that maximises its F1 on the known rows.

    Tags with fewer than ``min_positives`` validation positives keep ``default``.
    """
    thresholds = np.full(probs.shape[1], default, dtype=np.float32)
    for t in range(probs.shape[1]):
        known = mask[:, t] > 0
        y = targets[known, t] > 0
        if y.sum() < min_positives:
            continue
        p = probs[known, t]
        pred = p[None, :] >= GRID[:, None]
        tp = (pred & y).sum(1)
        fp = (pred & ~y).sum(1)
        fn = (~pred & y).sum(1)
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        thresholds[t] = GRID[int(np.argmax(f1))]
    return thresholds


def hamming_score(pred: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> float:
    """Mean over rows of |P∩T| / |P∪T| on known tags (rows with no true tag skipped)."""
    y = (targets > 0) & (mask > 0)
    p = pred & (mask > 0)
    union = (p | y).sum(1)
    rows = y.sum(1) > 0
    if not rows.any():
        return float("nan")
    return float(((p & y).sum(1)[rows] / np.maximum(union[rows], 1)).mean())


def tune_global(probs: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> float:
    """The single threshold that maximises the Hamming score (Sahay et al.)."""
    scores = [hamming_score(probs >= t, targets, mask) for t in GRID]
    return float(GRID[int(np.nanargmax(scores))])
