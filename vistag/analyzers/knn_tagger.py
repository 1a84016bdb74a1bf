"""Inverse-distance-weighted kNN tagging over a labelled reference catalog.

For an item ``x`` with K nearest reference neighbours ``n_1..n_K`` (cosine distance
``d = 1 - cos``) the presence score of tag ``t`` is::

    S(t|x) = sum_j I(n_j has t) / d(x, n_j)  /  sum_j 1 / d(x, n_j)

(distances are floored at ``eps`` so an exact duplicate dominates instead of
dividing by zero). The item itself is never its own neighbour when it is in the
reference set. The top-D tags are kept with their scores. Similarities are
computed chunk by chunk over the reference set so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class ReferenceSet:
    """Labelled reference items.

    Attributes:
        ids: item ids, one per row of ``vectors``.
        vectors: (N, D) float32 unit vectors.
        tags: the tags of each item.
    """

    ids: list[str]
    vectors: np.ndarray
    tags: list[list[str]]

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.vectors) == len(self.tags)):
            raise ValueError("ids, vectors and tags must have the same length")
        self.vocabulary: list[str] = sorted({t for ts in self.tags for t in ts})
        index = {t: i for i, t in enumerate(self.vocabulary)}
        self._row_of = {item: i for i, item in enumerate(self.ids)}
        # CSR-like tag incidence: tags of row i are _tag_idx[_offsets[i]:_offsets[i+1]].
        self._offsets = np.zeros(len(self.ids) + 1, dtype=np.int64)
        np.cumsum([len(ts) for ts in self.tags], out=self._offsets[1:])
        self._tag_idx = np.fromiter((index[t] for ts in self.tags for t in ts), dtype=np.int64, count=int(self._offsets[-1]))

    def __len__(self) -> int:
        return len(self.ids)

    def row_of(self, item_id: str) -> int | None:
        """Row of ``item_id``, or ``None``."""
        return self._row_of.get(item_id)

    def tag_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For ``rows`` (any shape), return (tag indices, position of the row in ``rows.ravel()``)."""
        flat = rows.ravel()
        starts, ends = self._offsets[flat], self._offsets[flat + 1]
        counts = ends - starts
        owner = np.repeat(np.arange(flat.size), counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return self._tag_idx[np.repeat(starts, counts) + within], owner


class KnnTagger:
    """Tags items from their nearest labelled neighbours.

    Args:
        reference: the labelled reference set.
        k: neighbours per item.
        top_d: tags kept per item.
        min_score: tags scoring below this are dropped.
        eps: distance floor.
        chunk_size: reference rows compared at once (bounds memory).
    """

    def __init__(self, reference: ReferenceSet, k: int = 10, top_d: int = 10, min_score: float = 0.0,
                 eps: float = 1e-4, chunk_size: int = 32768) -> None:
        if k < 1 or top_d < 1:
            raise ValueError("k and top_d must be at least 1")
        self.reference = reference
        self.k = k
        self.top_d = top_d
        self.min_score = min_score
        self.eps = eps
        self.chunk_size = chunk_size

    def neighbours(self, vectors: np.ndarray, exclude_ids: Sequence[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (rows, similarities), each (n, k'), best first, with ``k' = min(k, N)``.

        Args:
            vectors: (n, D) unit query vectors.
            exclude_ids: per query, a reference id never to return (the item itself).
        """
        ref = self.reference.vectors
        n = len(vectors)
        k = min(self.k, len(ref) - (1 if exclude_ids is not None else 0))
        if n == 0 or k <= 0:
            return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
        exclude_rows = None
        if exclude_ids is not None:
            rows_of = (self.reference.row_of(i) if i is not None else None for i in exclude_ids)
            exclude_rows = np.array([-1 if r is None else r for r in rows_of], dtype=np.int64)
        best_sim = np.full((n, k), -np.inf, dtype=np.float32)
        best_row = np.zeros((n, k), dtype=np.int64)
        query = np.ascontiguousarray(vectors, dtype=np.float32)
        for start in range(0, len(ref), self.chunk_size):
            block = np.asarray(ref[start:start + self.chunk_size], dtype=np.float32)
            sims = query @ block.T
            if exclude_rows is not None:
                local = exclude_rows - start
                hit = (local >= 0) & (local < len(block))
                sims[np.nonzero(hit)[0], local[hit]] = -np.inf
            take = min(k, sims.shape[1])
            part = np.argpartition(-sims, take - 1, axis=1)[:, :take]
            merged_sim = np.concatenate([best_sim, np.take_along_axis(sims, part, axis=1)], axis=1)
            merged_row = np.concatenate([best_row, part + start], axis=1)
            keep = np.argpartition(-merged_sim, k - 1, axis=1)[:, :k]
            best_sim = np.take_along_axis(merged_sim, keep, axis=1)
            best_row = np.take_along_axis(merged_row, keep, axis=1)
        order = np.argsort(-best_sim, axis=1, kind="stable")
        return np.take_along_axis(best_row, order, axis=1), np.take_along_axis(best_sim, order, axis=1)

    def score(self, vectors: np.ndarray, exclude_ids: Sequence[str | None] | None = None) -> np.ndarray:
        """Dense (n, T) presence scores over the reference vocabulary."""
        rows, sims = self.neighbours(vectors, exclude_ids)
        n = len(vectors)
        vocab = len(self.reference.vocabulary)
        scores = np.zeros((n, vocab), dtype=np.float64)
        if rows.size == 0:
            return scores
        valid = np.isfinite(sims)
        weights = np.where(valid, 1.0 / np.maximum(1.0 - sims.astype(np.float64), self.eps), 0.0)
        norm = weights.sum(axis=1, keepdims=True)
        norm[norm == 0] = 1.0
        weights = weights / norm
        tag_idx, owner = self.reference.tag_rows(rows)
        query_of = owner // rows.shape[1]
        np.add.at(scores, (query_of, tag_idx), weights.ravel()[owner])
        return scores

    def score_over(self, vocabulary: Sequence[str], vectors: np.ndarray,
                   exclude_ids: Sequence[str | None] | None = None) -> np.ndarray:
        """Presence scores as :meth:`score`, with columns in the order of ``vocabulary``
        (another tagger's tags, e.g. a trained model's); tags the reference never has score 0."""
        raw = self.score(vectors, exclude_ids)
        ref_index = {t: i for i, t in enumerate(self.reference.vocabulary)}
        out = np.zeros((len(vectors), len(vocabulary)), dtype=np.float32)
        for j, tag in enumerate(vocabulary):
            if tag in ref_index:
                out[:, j] = raw[:, ref_index[tag]]
        return out

    def tag(self, vectors: np.ndarray, exclude_ids: Sequence[str | None] | None = None) -> list[list[tuple[str, float]]]:
        """Top-D ``(tag, score)`` per item, best first, scores in (0, 1]."""
        scores = self.score(vectors, exclude_ids)
        vocab = self.reference.vocabulary
        out = []
        top = min(self.top_d, scores.shape[1])
        for row in scores:
            if top == 0:
                out.append([])
                continue
            idx = np.argpartition(-row, top - 1)[:top]
            idx = idx[np.argsort(-row[idx], kind="stable")]
            out.append([(vocab[i], float(row[i])) for i in idx if row[i] > max(self.min_score, 0.0)])
        return out
