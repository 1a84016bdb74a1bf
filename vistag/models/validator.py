"""Product-type validation (Gutierrez et al.): is an image really the type it claims (numpy)?

Each class of the finest category level gets the normalised mean (centroid) of its
training embeddings and a radius: the ``quantile`` of its training images' cosine
distances to that centroid. An image farther than its type's radius is an
outlier for that type -- a seller's claimed type or the predicted one.

References:
    P. Gutierrez, P.-A. Sondag, P. Butkovic, M. Lacy, J. Berges, F. Bertrand, A. Knudson,
    "Deep Learning for Automated Tagging of Fashion Images".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class TypeValidator:
    """Class centroids and radii in embedding space.

    Attributes:
        centroids: ``(C, D)`` unit vectors (zeros for classes without examples).
        radii: ``(C,)`` cosine-distance thresholds.
        quantile: the training quantile the radii were taken at.
    """

    centroids: np.ndarray
    radii: np.ndarray
    quantile: float = 0.99

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, n_classes: int, quantile: float = 0.99, min_examples: int = 5
    ) -> TypeValidator:
        """Centroids and radii from training embeddings ``x`` and class indexes ``y`` (``-1`` ignored).

        Classes with fewer than ``min_examples`` examples get an infinite radius
        (nothing is rejected on too little evidence).
        """
        dim = x.shape[1]
        centroids = np.zeros((n_classes, dim), dtype=np.float32)
        radii = np.full(n_classes, np.inf, dtype=np.float32)
        for c in range(n_classes):
            members = x[y == c]
            if len(members) == 0:
                continue
            mu = members.mean(0)
            mu /= max(np.linalg.norm(mu), 1e-12)
            centroids[c] = mu
            if len(members) >= min_examples:
                radii[c] = float(np.quantile(1.0 - members @ mu, quantile))
        return cls(centroids, radii, quantile)

    def distance(self, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Cosine distance of each row of ``x`` to the centroid of its class in ``classes``."""
        classes = np.asarray(classes)
        out = np.full(len(x), np.nan, dtype=np.float32)
        known = classes >= 0
        out[known] = 1.0 - np.einsum("nd,nd->n", x[known], self.centroids[classes[known]])
        return out

    def is_outlier(self, x: np.ndarray, classes: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """True where an image lies outside ``scale`` x its class radius (False for unknown classes)."""
        classes = np.asarray(classes)
        d = self.distance(x, classes)
        radii = np.where(classes >= 0, self.radii[np.clip(classes, 0, None)], np.inf)
        return np.nan_to_num(d, nan=0.0) > radii * scale

    def save(self, directory: Path) -> None:
        """Write ``centroids.npy`` and ``radii.npy``."""
        np.save(directory / "centroids.npy", self.centroids.astype(np.float32))
        np.save(directory / "radii.npy", self.radii.astype(np.float32))

    @classmethod
    def load(cls, directory: Path, quantile: float) -> TypeValidator:
        """Inverse of :meth:`save`."""
        return cls(np.load(directory / "centroids.npy"), np.load(directory / "radii.npy"), quantile)
