"""Approximate nearest neighbours for the kNN tagger: a faiss HNSW graph over the reference vectors.

The exact scan of :func:`~vistag.analyzers.knn_tagger.top_k_rows` costs ``N x D`` multiply-adds
per row, so tagging slows down as the reference catalog grows. An HNSW graph
("Efficient and robust approximate nearest neighbor search using Hierarchical Navigable
Small World graphs", Malkov and Yashunin) answers in about ``log N`` steps instead; the
similarities it returns are exact inner products of the vectors it stores, so only the
*set* of neighbours can differ from the exact scan, never their scores.

Above :data:`HNSW_PROJECT_TO` dimensions the graph is built over the vectors' projection onto
their top principal directions (uncentred, so inner products keep their meaning), and each search
takes :data:`HNSW_REFINE` times as many candidates from it and re-ranks them by their exact inner
product with the full vectors (faiss ``IndexRefineFlat``): on the 44,072 catalog embeddings
(1,840-d) this tags 3.6x faster than a graph over the full vectors, with the same top-1 tag for
99.5 % of the rows against the exact scan (``benchmarks/bench_knn_tagging.py``).

The graph is built once per run from the reference vectors (read block by block, so a
:class:`~vistag.analyzers.vector_file.VectorFile` is never loaded whole), kept in memory
(:attr:`HnswNeighbours.memory_bytes`: the vectors at ``4 x D`` bytes each, their projections
at ``4 x 256``, plus about ``8 x M`` bytes of links per vector), and can be pickled (e.g. put once into Ray's
object store and shared by every actor).

``faiss-cpu`` is the ``faiss`` extra; it is imported when a graph is built, never at import.
A search runs on ``HnswNeighbours.search_threads`` OpenMP threads (default
:data:`HNSW_SEARCH_THREADS`, one), set for the calling thread for the length of the call and
restored after it, so nothing changes process-wide.

Examples:
    >>> import numpy as np
    >>> vectors = np.eye(4, dtype=np.float32)
    >>> index = HnswNeighbours.build(vectors)                                   # doctest: +SKIP
    >>> rows, sims = index.search(vectors[:1], k=2, exclude=np.array([0]))      # doctest: +SKIP
    >>> int(rows[0, 0]) != 0                                                    # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import numpy as np

from vistag.errors import ConfigError

logger = logging.getLogger(__name__)

#: Links per node (``M``), candidate list while building, and while searching: measured on the
#: 44,072 catalog embeddings by ``benchmarks/bench_knn_tagging.py`` (see docs/benchmarks.md).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 64

#: Vectors longer than this are searched in the graph by their projection onto this many
#: principal directions; :data:`HNSW_REFINE` x k candidates are then re-ranked exactly.
HNSW_PROJECT_TO = 256
HNSW_REFINE = 4

#: OpenMP threads of one search. One core tags about 8,000 catalog rows/s, more than a bulk
#: pipeline sends; more threads mostly spin against the engine when both share a machine (the
#: 44,072-row index pass took 37-38 s with one, 40-47 s with two, on 2 cores).
HNSW_SEARCH_THREADS = 1

#: ``knn_method="auto"`` uses the graph from this many reference vectors up on CPU (below it the
#: exact scan is as fast; measured by ``benchmarks/bench_knn_tagging.py``); a GPU top-k stays exact.
APPROXIMATE_FROM = 20_000

#: The ways to find neighbours: ``exact`` (full scan), ``hnsw`` (this module), ``auto``.
KNN_METHODS = ("auto", "exact", "hnsw")


class NeighbourIndex(Protocol):
    """What :class:`~vistag.analyzers.knn_tagger.KnnTagger` asks of a neighbour index."""

    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, similarities), each (n, k), best first; ``exclude`` holds per query a row never to return."""
        ...  # pragma: no cover


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "approximate kNN needs faiss-cpu: pip install 'vistag[faiss]' (or use knn_method='exact')"
        ) from exc
    return faiss


def principal_directions(vectors: Any, count: int, sample: int = 10_000, chunk_size: int = 16_384) -> np.ndarray:
    """The top ``count`` principal directions of a strided sample of ``vectors``, as (count, D) rows.

    Uncentred (no mean is subtracted): projecting onto them keeps the inner products that
    rank neighbours, which a PCA that centres the data would shift by a per-vector term. They
    are the top eigenvectors of the sample's ``D x D`` second-moment matrix.

    Examples:
        >>> v = np.array([[1, 0, 0], [0.9, 0.1, 0], [1, 0, 0.1]], dtype=np.float32)
        >>> d = principal_directions(v, 1)
        >>> d.shape, bool(abs(d[0, 0]) > 0.9)
        ((1, 3), True)
    """
    from vistag.analyzers.knn_tagger import iter_chunks

    total = int(vectors.shape[0]) if hasattr(vectors, "shape") else len(vectors)
    stride = max(1, total // sample)
    moment: np.ndarray | None = None
    for start, block in iter_chunks(vectors, chunk_size):
        picked = np.ascontiguousarray(block[(-start) % stride :: stride], dtype=np.float32)
        product = (picked.T @ picked).astype(np.float64)
        moment = product if moment is None else moment + product
    if moment is None:
        raise ConfigError("no reference vectors to find principal directions in")
    _, eigenvectors = np.linalg.eigh(moment)  # ascending eigenvalues
    return np.ascontiguousarray(eigenvectors[:, ::-1][:, :count].T, dtype=np.float32)


class HnswNeighbours:
    """A faiss HNSW graph (inner product) over unit reference vectors.

    Build it with :meth:`build`; the constructor wraps a ready faiss index: an
    ``IndexHNSWFlat``, or an ``IndexRefineFlat`` over an ``IndexPreTransform`` (projection)
    and an ``IndexHNSWFlat`` (see the module's docstring).

    Args:
        index: the faiss index over the reference vectors, row ``i`` = reference row ``i``.
        ef_search: candidate list length of a search in the graph (recall against speed).
        refine: for a projected graph, candidates taken per neighbour asked for and re-ranked
            exactly (0: the graph is over the full vectors).
        search_threads: OpenMP threads of a search (``None``: faiss's setting for the process).
    """

    def __init__(
        self,
        index: Any,
        ef_search: int = HNSW_EF_SEARCH,
        refine: int = 0,
        search_threads: int | None = HNSW_SEARCH_THREADS,
    ) -> None:
        self.index = index
        self.ef_search = ef_search
        self.refine = refine
        self.search_threads = search_threads

    @classmethod
    def build(
        cls,
        vectors: Any,
        *,
        m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
        project_to: int = HNSW_PROJECT_TO,
        refine: int = HNSW_REFINE,
        chunk_size: int = 16_384,
    ) -> HnswNeighbours:
        """Build the graph from ``vectors`` (an (N, D) array or a
        :class:`~vistag.analyzers.vector_file.VectorFile`), block by block.

        Args:
            vectors: the unit reference vectors.
            m: links per node.
            ef_construction: candidate list length while building.
            ef_search: candidate list length while searching.
            project_to: over this many dimensions, build the graph over the projection onto
                this many principal directions and re-rank exactly (0: never).
            refine: candidates per neighbour re-ranked exactly, for a projected graph.
            chunk_size: vectors added per block.
        """
        from vistag.analyzers.knn_tagger import iter_chunks

        faiss = _faiss()
        started = time.monotonic()
        dim = int(vectors.shape[1]) if hasattr(vectors, "shape") else int(vectors.dim)
        low = project_to if 0 < project_to < dim else dim
        graph = faiss.IndexHNSWFlat(low, m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = ef_construction
        index: Any = graph
        if low < dim:
            transform = faiss.LinearTransform(dim, low, False)
            faiss.copy_array_to_vector(principal_directions(vectors, low, chunk_size=chunk_size).ravel(), transform.A)
            transform.is_trained = True
            # faiss keeps the sub-indexes alive: its constructors hold references to their arguments
            index = faiss.IndexRefineFlat(faiss.IndexPreTransform(transform, graph))  # full vectors: exact re-ranking
        for _, block in iter_chunks(vectors, chunk_size):
            index.add(np.ascontiguousarray(block, dtype=np.float32))
        out = cls(index, ef_search, refine if low < dim else 0)
        logger.info(
            "HNSW graph over %d reference vectors (%s) built in %.1fs (%.0f MB)",
            index.ntotal,
            f"{dim}-d projected to {low}, re-ranked x{refine}" if low < dim else f"{dim}-d",
            time.monotonic() - started,
            out.memory_bytes / 1e6,
        )
        return out

    def _graph(self) -> Any:
        """The ``IndexHNSWFlat`` inside (the index itself, or the one under the projection)."""
        if not self.refine:
            return self.index
        faiss = _faiss()
        projected = faiss.downcast_index(self.index.base_index)
        return faiss.downcast_index(projected.index)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def memory_bytes(self) -> int:
        """About what the index holds in memory: the vectors (and their projections) plus the links."""
        graph = self._graph()
        vectors = self.index.ntotal * self.index.d * 4
        projected = self.index.ntotal * graph.d * 4 if self.refine else 0
        links = int(graph.hnsw.neighbors.size()) * 4 + self.index.ntotal * 16
        return int(vectors + projected + links)

    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, similarities), each (n, k), best first (fewer found: row -1, similarity ``-inf``).

        Args:
            queries: (n, D) unit vectors.
            k: neighbours per query.
            exclude: per query, a reference row never to return (-1: none).
        """
        faiss = _faiss()
        n = len(queries)
        extra = 1 if exclude is not None else 0
        fetch = min(k + extra, len(self))
        hnsw = faiss.SearchParametersHNSW()
        hnsw.efSearch = max(self.ef_search, fetch * max(1, self.refine))
        params = hnsw
        if self.refine:  # the parameters nest as the indexes do: refine -> projection -> graph
            projection = faiss.SearchParametersPreTransform()
            projection.index_params = hnsw
            params = faiss.IndexRefineSearchParameters()
            params.k_factor = float(self.refine)
            params.base_index_params = projection
        before = faiss.omp_get_max_threads()
        if self.search_threads:
            faiss.omp_set_num_threads(self.search_threads)  # this thread's setting, restored below
        try:
            sims, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), fetch, params=params)
        finally:
            faiss.omp_set_num_threads(before)
        sims = sims.astype(np.float32, copy=False)
        sims[rows < 0] = -np.inf
        if exclude is not None:
            drop = rows == np.asarray(exclude, dtype=np.int64)[:, None]
            sims, rows = np.where(drop, -np.inf, sims), np.where(drop, -1, rows)
            order = np.argsort(-sims, axis=1, kind="stable")  # the excluded row moves to the end
            rows, sims = np.take_along_axis(rows, order, axis=1), np.take_along_axis(sims, order, axis=1)
        rows, sims = rows[:, :k], sims[:, :k]
        if rows.shape[1] < k:
            pad = k - rows.shape[1]
            rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=-1)
            sims = np.pad(sims, ((0, 0), (0, pad)), constant_values=-np.inf)
        return rows.astype(np.int64, copy=False), sims.reshape(n, k)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "index": _faiss().serialize_index(self.index),
            "ef_search": self.ef_search,
            "refine": self.refine,
            "search_threads": self.search_threads,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.index = _faiss().deserialize_index(state["index"])  # owns its sub-indexes
        self.ef_search = state["ef_search"]
        self.refine = state.get("refine", 0)
        self.search_threads = state.get("search_threads", HNSW_SEARCH_THREADS)


def choose_method(method: str, size: int, on_device: bool = False) -> str:
    """``exact`` or ``hnsw`` for a reference set of ``size`` vectors.

    Args:
        method: ``auto``, ``exact`` or ``hnsw``.
        size: reference vectors.
        on_device: the exact top-k runs on a GPU (``auto`` keeps it exact).

    Raises:
        ConfigError: an unknown method.

    Examples:
        >>> choose_method("auto", 5_000), choose_method("auto", 50_000), choose_method("auto", 50_000, True)
        ('exact', 'hnsw', 'exact')
    """
    if method not in KNN_METHODS:
        raise ConfigError(f"unknown kNN method {method!r}: {', '.join(KNN_METHODS)}")
    if method != "auto":
        return method
    return "hnsw" if size >= APPROXIMATE_FROM and not on_device else "exact"
