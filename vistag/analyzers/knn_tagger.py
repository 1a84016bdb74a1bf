"""Inverse-distance-weighted kNN tagging over a labelled reference catalog.

For an item ``x`` with K nearest reference neighbours ``n_1..n_K`` (cosine distance
``d = 1 - cos``) the presence score of tag ``t`` is::

    S(t|x) = sum_j I(n_j has t) / d(x, n_j)  /  sum_j 1 / d(x, n_j)

(distances are floored at ``eps`` so an exact duplicate dominates instead of
dividing by zero). The item itself is never its own neighbour when it is in the
reference set. Scores lie in [0, 1] (rounding is clipped); the top-D tags scoring at
least :data:`MIN_TAG_SCORE` are kept with their scores -- the same rule wherever
vistag tags by kNN (``vistag index``, the inference service, :class:`~vistag.analyzers.tagger.Tagger`
and the engine-side reference tagger). Similarities are
computed chunk by chunk over the reference set so memory stays bounded; the
reference vectors may live on disk (:class:`ReferenceBuilder`), and the per-chunk
top-k can run on a GPU (:func:`vistag.models.knn_device.torch_topk`).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from vistag.analyzers.ann import NeighbourIndex
from vistag.analyzers.vector_file import VectorFile
from vistag.errors import ConfigError

#: Reference vectors: in memory, or a file scanned in blocks.
Vectors = np.ndarray | VectorFile

#: Tags scoring below this share of the neighbours' weight are dropped: with ``k = 10``
#: it is a tenth of what one very far neighbour adds, i.e. noise, not evidence.
MIN_TAG_SCORE = 0.01


class ReferenceSet:
    """Labelled reference items.

    Args:
        ids: item ids, one per row of ``vectors`` (``None``: rows are only known by
            number; exclude items with ``exclude_rows``).
        vectors: (N, D) float32 unit vectors: an array, or a
            :class:`~vistag.analyzers.vector_file.VectorFile` scanned from disk.
        tags: the tags of each item.
    """

    def __init__(self, ids: list[str] | None, vectors: Vectors, tags: list[list[str]]) -> None:
        vocabulary = sorted({t for ts in tags for t in ts})
        index = {t: i for i, t in enumerate(vocabulary)}
        offsets = np.zeros(len(tags) + 1, dtype=np.int64)
        np.cumsum([len(ts) for ts in tags], out=offsets[1:])
        tag_idx = np.fromiter((index[t] for ts in tags for t in ts), dtype=np.int64, count=int(offsets[-1]))
        self._init(ids, vectors, vocabulary, offsets, tag_idx)

    @classmethod
    def from_csr(
        cls, ids: list[str] | None, vectors: Vectors, vocabulary: list[str], offsets: np.ndarray, tag_idx: np.ndarray
    ) -> ReferenceSet:
        """Build from a tag incidence in CSR form: the tags of row ``i`` are
        ``vocabulary[tag_idx[offsets[i]:offsets[i + 1]]]`` (``vocabulary`` sorted).
        """
        ref = cls.__new__(cls)
        ref._init(ids, vectors, list(vocabulary), np.asarray(offsets, np.int64), np.asarray(tag_idx, np.int64))
        return ref

    def _init(
        self, ids: list[str] | None, vectors: Vectors, vocabulary: list[str], offsets: np.ndarray, tag_idx: np.ndarray
    ) -> None:
        if (ids is not None and len(ids) != len(vectors)) or len(offsets) != len(vectors) + 1:
            raise ValueError("ids, vectors and tags must have the same length")
        self.ids = ids
        self.vectors = vectors
        self.vocabulary: list[str] = vocabulary
        self._row_of = {item: i for i, item in enumerate(ids)} if ids is not None else {}
        # CSR-like tag incidence: tags of row i are _tag_idx[_offsets[i]:_offsets[i+1]].
        self._offsets = offsets
        self._tag_idx = tag_idx

    @property
    def tags(self) -> list[list[str]]:
        """The tags of each item (built on demand)."""
        return [[self.vocabulary[j] for j in self._tag_idx[a:b]] for a, b in zip(self._offsets[:-1], self._offsets[1:])]

    def __len__(self) -> int:
        return len(self.vectors)

    def portable(self, keep_vectors: bool = True) -> ReferenceSet:
        """A copy that pickles (e.g. for Ray's object store): the vectors read into memory, or, with
        ``keep_vectors=False`` (an approximate index holds them), a zero-width placeholder of the same length.

        Examples:
            >>> ref = ReferenceSet(["a"], np.ones((1, 3), dtype=np.float32), [["x"]])
            >>> len(ref.portable(keep_vectors=False)), ref.portable(keep_vectors=False).vectors.shape
            (1, (1, 0))
        """
        n = len(self.vectors)
        if keep_vectors:
            vectors = np.vstack([block for _, block in iter_chunks(self.vectors, 65_536)]) if n else self.vectors
        else:
            vectors = np.zeros((n, 0), dtype=np.float32)
        return ReferenceSet.from_csr(self.ids, np.asarray(vectors), self.vocabulary, self._offsets, self._tag_idx)

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


def idw_tag_scores(
    neighbour_tags: Sequence[Sequence[str]], sims: Sequence[float], eps: float = 1e-4
) -> dict[str, float]:
    """Presence scores S(t|x) of one item from its neighbours' tags and cosine similarities
    (the formula of this module, for neighbours found elsewhere, e.g. by the engine).

    Examples:
        >>> idw_tag_scores([["shirts", "blue"], ["shirts"]], [0.9, 0.8])
        {'shirts': 1.0, 'blue': 0.6666666666666666}
    """
    weights = [1.0 / max(1.0 - float(s), eps) for s in sims]
    total = sum(weights)
    scores: dict[str, float] = {}
    if total <= 0:
        return scores
    for tags, weight in zip(neighbour_tags, weights):
        for tag in dict.fromkeys(tags):
            scores[tag] = scores.get(tag, 0.0) + weight / total
    return {t: min(v, 1.0) for t, v in scores.items()}


def rank_tags(scores: dict[str, float], top_d: int, min_score: float = MIN_TAG_SCORE) -> list[tuple[str, float]]:
    """The ``top_d`` best ``(tag, score)`` pairs scoring at least ``min_score`` (and above 0), best first;
    scores clipped to [0, 1], ties by name.

    Examples:
        >>> rank_tags({"shirts": 1.0000000000000002, "blue": 0.4, "briefs": 0.0007}, top_d=10)
        [('shirts', 1.0), ('blue', 0.4)]
    """
    ranked = sorted(((t, min(max(float(s), 0.0), 1.0)) for t, s in scores.items()), key=lambda p: (-p[1], p[0]))
    return [(t, s) for t, s in ranked if s > 0 and s >= min_score][:top_d]


class ReferenceBuilder:
    """Collects a reference set row by row with flat memory: vectors go to a
    :class:`~vistag.analyzers.vector_file.VectorFile`, tags to integer arrays.

    Args:
        dim: vector dimension.
        path: the vector file to write (deleted when the reference set is closed).
        keep_ids: keep the item ids (to exclude items by id; costs memory per row).
    """

    def __init__(self, dim: int, path: str | Path, keep_ids: bool = False) -> None:
        from vistag.analyzers.vector_file import VectorFileWriter

        self._writer = VectorFileWriter(path, dim)
        self._ids: list[str] | None = [] if keep_ids else None
        self._index: dict[str, int] = {}
        self._tag_idx = array("q")  # 8 bytes per tag, not a Python int object each
        self._offsets = array("q", [0])

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def add(self, vectors: np.ndarray, tags: Sequence[Sequence[str]], ids: Sequence[str] | None = None) -> None:
        """Append rows with their tags (and ids, when kept)."""
        if self._ids is not None:
            if ids is None or len(ids) != len(tags):
                raise ValueError("this builder keeps ids: pass one per row")
            self._ids.extend(ids)
        self._writer.append(vectors)
        for row_tags in tags:
            self._tag_idx.extend(self._index.setdefault(t, len(self._index)) for t in row_tags)
            self._offsets.append(len(self._tag_idx))

    def build(self) -> ReferenceSet:
        """Close the vector file and return the reference set over it."""
        from vistag.analyzers.vector_file import VectorFile

        self._writer.close()
        vectors = VectorFile(self._writer.path, self._writer.dim, delete_on_close=True)
        vocabulary = sorted(self._index)
        remap = np.empty(len(vocabulary), dtype=np.int64)
        for new, tag in enumerate(vocabulary):
            remap[self._index[tag]] = new
        tag_idx = remap[np.frombuffer(self._tag_idx, dtype=np.int64)] if len(self._tag_idx) else np.zeros(0, np.int64)
        return ReferenceSet.from_csr(
            self._ids, vectors, vocabulary, np.frombuffer(self._offsets, dtype=np.int64).copy(), tag_idx
        )


def iter_chunks(vectors: Vectors, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, block)`` over an array or a :class:`~vistag.analyzers.vector_file.VectorFile`."""
    if hasattr(vectors, "chunks"):
        yield from vectors.chunks(size)
        return
    for start in range(0, len(vectors), size):
        yield start, np.asarray(vectors[start : start + size], dtype=np.float32)


def numpy_topk(
    query: np.ndarray, block: np.ndarray, start: int, k: int, exclude: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine top-``k`` of ``query`` against the reference block at row ``start``:
    (local rows, similarities), unordered.

    ``exclude`` holds per query a local row to skip (out of range: none).
    """
    sims = query @ block.T
    if exclude is not None:
        hit = (exclude >= 0) & (exclude < len(block))
        sims[np.nonzero(hit)[0], exclude[hit]] = -np.inf
    take = min(k, sims.shape[1])
    part = np.argpartition(-sims, take - 1, axis=1)[:, :take]
    return part, np.take_along_axis(sims, part, axis=1)


TopK = Callable[[np.ndarray, np.ndarray, int, int, "np.ndarray | None"], tuple[np.ndarray, np.ndarray]]


def top_k_rows(
    queries: np.ndarray,
    vectors: Vectors,
    k: int,
    exclude: np.ndarray | None = None,
    chunk_size: int = 4096,
    topk: TopK = numpy_topk,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-``k`` of unit ``queries`` over ``vectors`` (an array or a
    :class:`~vistag.analyzers.vector_file.VectorFile`), block by block.

    Args:
        queries: (n, D) unit vectors.
        vectors: (N, D) unit vectors, ``k <= N``.
        k: neighbours per query.
        exclude: per query, a row never to return (-1: none).
        chunk_size: rows compared at once (bounds memory).
        topk: the per-block top-k (numpy, or a device one).

    Returns:
        (rows, similarities), each (n, k), best first.
    """
    n = len(queries)
    best_sim = np.full((n, k), -np.inf, dtype=np.float32)
    best_row = np.zeros((n, k), dtype=np.int64)
    query = np.ascontiguousarray(queries, dtype=np.float32)
    for start, block in iter_chunks(vectors, chunk_size):
        part, part_sim = topk(query, block, start, k, None if exclude is None else exclude - start)
        merged_sim = np.concatenate([best_sim, part_sim], axis=1)
        merged_row = np.concatenate([best_row, part + start], axis=1)
        keep = np.argpartition(-merged_sim, k - 1, axis=1)[:, :k]
        best_sim = np.take_along_axis(merged_sim, keep, axis=1)
        best_row = np.take_along_axis(merged_row, keep, axis=1)
    order = np.argsort(-best_sim, axis=1, kind="stable")
    return np.take_along_axis(best_row, order, axis=1), np.take_along_axis(best_sim, order, axis=1)


class KnnTagger:
    """Tags items from their nearest labelled neighbours.

    Args:
        reference: the labelled reference set.
        k: neighbours per item.
        top_d: tags kept per item.
        min_score: tags scoring below this are dropped (default :data:`MIN_TAG_SCORE`).
        eps: distance floor.
        chunk_size: reference rows compared at once (bounds memory).
        topk: the per-block top-k of the exact scan (numpy, or a device one).
        index: find neighbours in this approximate index instead of the exact scan (e.g.
            :class:`~vistag.analyzers.ann.HnswNeighbours` over ``reference.vectors``; see
            :func:`with_neighbour_index`).
    """

    def __init__(
        self,
        reference: ReferenceSet,
        k: int = 10,
        top_d: int = 10,
        min_score: float = MIN_TAG_SCORE,
        eps: float = 1e-4,
        chunk_size: int = 4096,
        topk: TopK | None = None,
        index: NeighbourIndex | None = None,
    ) -> None:
        if k < 1 or top_d < 1:
            raise ConfigError("k and top_d must be at least 1")
        self.reference = reference
        self.k = k
        self.top_d = top_d
        self.min_score = min_score
        self.eps = eps
        self.chunk_size = chunk_size
        self.topk: TopK = topk or numpy_topk
        self.index = index

    @property
    def method(self) -> str:
        """``exact`` or ``hnsw``: how neighbours are found."""
        return "exact" if self.index is None else "hnsw"

    def neighbours(
        self,
        vectors: np.ndarray,
        exclude_ids: Sequence[str | None] | None = None,
        exclude_rows: Sequence[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (rows, similarities), each (n, k'), best first, with ``k' = min(k, N)``.

        Args:
            vectors: (n, D) unit query vectors.
            exclude_ids: per query, a reference id never to return (the item itself).
            exclude_rows: per query, a reference row never to return (-1: none);
                for reference sets without ids. When given, ``exclude_ids`` is not used.
        """
        ref = self.reference.vectors
        n = len(vectors)
        excluding = exclude_ids is not None or exclude_rows is not None
        k = min(self.k, len(ref) - (1 if excluding else 0))
        if n == 0 or k <= 0:
            return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
        exclude = None
        if exclude_rows is not None:
            exclude = np.asarray(exclude_rows, dtype=np.int64)
        elif exclude_ids is not None:
            rows_of = (self.reference.row_of(i) if i is not None else None for i in exclude_ids)
            exclude = np.array([-1 if r is None else r for r in rows_of], dtype=np.int64)
        if self.index is None:
            return top_k_rows(vectors, ref, k, exclude, self.chunk_size, self.topk)
        rows, sims = self.index.search(vectors, k, exclude)
        rows = np.where(rows < 0, 0, rows)  # not found: any row, with weight 0 (similarity -inf)
        return rows, sims

    def score(
        self,
        vectors: np.ndarray,
        exclude_ids: Sequence[str | None] | None = None,
        exclude_rows: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Dense (n, T) presence scores over the reference vocabulary."""
        rows, sims = self.neighbours(vectors, exclude_ids, exclude_rows)
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
        return np.clip(scores, 0.0, 1.0, out=scores)  # a sum of shares can round to 1.0000000000000002

    def score_over(
        self,
        vocabulary: Sequence[str],
        vectors: np.ndarray,
        exclude_ids: Sequence[str | None] | None = None,
        exclude_rows: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Presence scores as :meth:`score`, with columns in the order of ``vocabulary``
        (another tagger's tags, e.g. a trained model's); tags the reference never has score 0.
        """
        raw = self.score(vectors, exclude_ids, exclude_rows)
        ref_index = {t: i for i, t in enumerate(self.reference.vocabulary)}
        out = np.zeros((len(vectors), len(vocabulary)), dtype=np.float32)
        for j, tag in enumerate(vocabulary):
            if tag in ref_index:
                out[:, j] = raw[:, ref_index[tag]]
        return out

    def tag(
        self,
        vectors: np.ndarray,
        exclude_ids: Sequence[str | None] | None = None,
        exclude_rows: Sequence[int] | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Top-D ``(tag, score)`` per item, best first, scores in [``min_score``, 1] (see :func:`rank_tags`)."""
        scores = self.score(vectors, exclude_ids, exclude_rows)
        vocab = self.reference.vocabulary
        out: list[list[tuple[str, float]]] = []
        top = min(self.top_d, scores.shape[1])
        for row in scores:
            if top == 0:
                out.append([])
                continue
            idx = np.argpartition(-row, top - 1)[:top]
            idx = idx[np.argsort(-row[idx], kind="stable")]
            out.append([(vocab[i], float(row[i])) for i in idx if row[i] > 0 and row[i] >= self.min_score])
        return out


def with_neighbour_index(tagger: KnnTagger, method: str = "auto", on_device: bool = False, **hnsw: int) -> KnnTagger:
    """Give ``tagger`` an approximate neighbour index when ``method`` asks for one
    (``auto``: from :data:`~vistag.analyzers.ann.APPROXIMATE_FROM` reference vectors up, on CPU).

    Args:
        tagger: the tagger (changed in place and returned).
        method: ``auto``, ``exact`` or ``hnsw``.
        on_device: the exact scan runs on a GPU.
        **hnsw: ``m``, ``ef_construction``, ``ef_search``, ``project_to``, ``refine`` for
            :meth:`~vistag.analyzers.ann.HnswNeighbours.build`.

    Raises:
        ConfigError: an unknown method, or ``hnsw`` without faiss installed.

    Examples:
        >>> ref = ReferenceSet(["a", "b"], np.eye(2, dtype=np.float32), [["x"], ["y"]])
        >>> with_neighbour_index(KnnTagger(ref), "auto").method
        'exact'
    """
    from vistag.analyzers.ann import HnswNeighbours, choose_method

    if choose_method(method, len(tagger.reference), on_device) == "hnsw" and tagger.index is None:
        tagger.index = HnswNeighbours.build(tagger.reference.vectors, **hnsw)
    return tagger
