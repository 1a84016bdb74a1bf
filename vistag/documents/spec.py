"""The one description of a vistag product document, independent of the engine.

A document looks like::

    {
      "id": "15970",
      "title": "Turtle Check Men Navy Blue Shirt",
      "text": "Turtle Check Men Navy Blue Shirt Men Apparel Topwear Shirts Navy Blue ...",
      "category": {"lvl0": "Apparel", "lvl1": "Topwear", "lvl2": "Shirts",
                   "path": "Apparel > Topwear > Shirts",
                   "ancestors": ["Apparel", "Apparel > Topwear", "Apparel > Topwear > Shirts"]},
      "attributes": {"gender": "Men", "baseColour": "Navy Blue", "season": "Fall", "usage": "Casual"},
      "tags": ["shirts", "topwear", "men", "navy-blue", ...],
      "tag_weights": {"shirts": 0.97, "topwear": 1.0, ...},
      "image_vector": [...],
      "image": {"source": "15970.jpg", "sha256": "...", "width": 60, "height": 80},
      "model": {"name": "efficientnet-lite0", "version": "...", "embedding_dim": 1840,
                "tagger": "heads:fashion@3f2a..."},   # or "knn:k=10", "ensemble:..."
      "predicted": {"accepted": true, "confidence": 0.93, "claimed_type_outlier": false,
                    "category": "Apparel > Topwear > Shirts",
                    "attributes": {"gender": "Men", "baseColour": "Navy Blue"}},  # with --model only
      "indexed_at": "2026-11-23T18:00:00Z",
      "extra": {...}
    }
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vistag.errors import ConfigError

CATEGORY_SEPARATOR = " > "
TEXT_FIELDS = ("title^2", "text")


VECTOR_QUANTIZATIONS = ("none", "int8")


@dataclass(frozen=True)
class DocumentSpec:
    """What varies between catalogs and models.

    Attributes:
        name: index (or alias) name, e.g. ``products``.
        vector_dim: embedding dimension of the model that fills ``image_vector``.
        category_levels: how many hierarchy levels ``category.lvl<i>`` holds.
        vector_quantization: ``none`` (float HNSW) or ``int8`` (Elasticsearch
            ``int8_hnsw``, OpenSearch Lucene scalar quantization): a quarter of the
            vector memory for a small recall loss (``benchmarks/bench_hnsw.py``).
    """

    name: str
    vector_dim: int
    category_levels: int = 3
    vector_quantization: str = "none"

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower() or any(c in self.name for c in ' "*\\<|,>/?#:'):
            raise ConfigError(f"invalid index name {self.name!r}: use lowercase letters, digits, '-' or '_'")
        if not 1 <= self.vector_dim <= 4096:
            raise ConfigError(f"vector_dim must be within 1..4096, got {self.vector_dim}")
        if self.vector_quantization not in VECTOR_QUANTIZATIONS:
            raise ConfigError(
                f"vector_quantization must be one of {', '.join(VECTOR_QUANTIZATIONS)}, "
                f"got {self.vector_quantization!r}"
            )


def category_fields(path: list[str]) -> dict[str, Any]:
    """Return the ``category`` object for a hierarchy path such as ``["Apparel", "Topwear", "Tshirts"]``.

    Examples:
        >>> category_fields(["Apparel", "Topwear"])["ancestors"]
        ['Apparel', 'Apparel > Topwear']
    """
    clean = [p.strip() for p in path if p and p.strip()]
    out: dict = {f"lvl{i}": value for i, value in enumerate(clean)}
    if clean:
        out["path"] = CATEGORY_SEPARATOR.join(clean)
        out["ancestors"] = [CATEGORY_SEPARATOR.join(clean[: i + 1]) for i in range(len(clean))]
    return out
