"""kNN tagging on CPU: the exact scan against the HNSW graph (faiss), agreement and rate by reference size.

1. Agreement on the 44,072 real catalog embeddings (from the embedding cache; run
   ``vistag index`` or ``bench_index.py`` once to fill it): every row is tagged from the
   others (never itself, as ``vistag index`` does) by the exact scan and by the graph; printed:
   the share of rows with the same top-1 tag, with the same top-D tag set, and the mean
   |score difference| over the tags either keeps (a tag one side drops counts its full score).
2. Rate (rows tagged per second, batches of ``--batch``) at reference sizes ``--sizes``: the
   first 44,072 are the real vectors; beyond them each synthetic row is a real vector plus
   Gaussian noise (sigma ``--noise`` per dimension, renormalised) with that row's tags -- the
   same neighbourhood structure as the catalog, at any size. The graph's build time and memory
   are printed with its rate; the exact rate at sizes over 200k uses fewer queries.
3. The crossover: exact and graph rates at small sizes (``--small``), where ``auto`` switches.

    python benchmarks/bench_knn_tagging.py [--sizes 10000,100000,1000000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import csv
import gc
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import machine

from vistag.analyzers.ann import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    HNSW_PROJECT_TO,
    HNSW_REFINE,
    HnswNeighbours,
)
from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet
from vistag.catalog.schema import CatalogSchema
from vistag.catalog.vocabulary import tags_from_labels
from vistag.config import default_data_dir, vistag_home
from vistag.models.cache import EmbeddingCache
from vistag.models.registry import get_config


def tag_all(tagger: KnnTagger, vectors: np.ndarray, ids: list[str], batch: int) -> list[list[tuple[str, float]]]:
    out: list[list[tuple[str, float]]] = []
    for i in range(0, len(vectors), batch):
        out.extend(tagger.tag(vectors[i : i + batch], exclude_ids=ids[i : i + batch]))
    return out


def rate(tagger: KnnTagger, queries: np.ndarray, batch: int) -> float:
    tagger.tag(queries[: min(batch, 32)])  # warm up
    start = time.perf_counter()
    for i in range(0, len(queries), batch):
        tagger.tag(queries[i : i + batch])
    return len(queries) / (time.perf_counter() - start)


def agreement(exact: list, approx: list) -> tuple[float, float, float]:
    top1 = np.mean([bool(a) == bool(b) and (not a or a[0][0] == b[0][0]) for a, b in zip(exact, approx)])
    same_set = np.mean([{t for t, _ in a} == {t for t, _ in b} for a, b in zip(exact, approx)])
    diffs = []
    for a, b in zip(exact, approx):
        da, db = dict(a), dict(b)
        diffs.extend(abs(da.get(t, 0.0) - db.get(t, 0.0)) for t in set(da) | set(db))
    return float(top1), float(same_set), float(np.mean(diffs)) if diffs else 0.0


def synthetic(real: np.ndarray, size: int, noise: float, path: Path, seed: int = 0) -> np.ndarray:
    """``size`` rows: the real vectors first, then real vectors plus noise (memory-mapped)."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(size, real.shape[1]))
    head = min(size, len(real))
    out[:head] = real[:head]
    for start in range(head, size, 32_768):
        n = min(32_768, size - start)
        src = rng.integers(0, len(real), n)
        block = real[src] + rng.normal(0.0, noise, (n, real.shape[1])).astype(np.float32)
        out[start : start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    out.flush()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="reference sizes for the rate")
    parser.add_argument("--small", default="2000,5000,10000,20000,40000", help="sizes for the crossover")
    parser.add_argument("--queries", type=int, default=2000, help="queries per rate measurement")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--top-d", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.01, help="sigma per dimension of the synthetic rows")
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--ef-search", default="32,48,64", help="other efSearch values for the agreement")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    print(
        f"graph: HNSW M={HNSW_M}, efConstruction={HNSW_EF_CONSTRUCTION}, efSearch={HNSW_EF_SEARCH}, over the projection "
        f"onto {HNSW_PROJECT_TO} principal directions, {HNSW_REFINE} x k candidates re-ranked exactly",
        flush=True,
    )
    config = get_config("efficientnet-lite0")
    with open(default_data_dir() / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cache = EmbeddingCache(vistag_home() / "cache" / "embeddings", config.model_id, config.embedding_dim)
    vectors, found = cache.get_many([r["sha256"] for r in rows])
    schema = CatalogSchema.bundled()
    keep = [i for i in np.nonzero(found)[0] if tags_from_labels(rows[i], schema.tags)]
    if len(keep) < 40_000:
        sys.exit(f"only {len(keep)} of {len(rows)} catalog embeddings are cached: index the catalog once first")
    real = np.ascontiguousarray(vectors[keep])
    ids = [rows[i]["id"] for i in keep]
    tags = [tags_from_labels(rows[i], schema.tags) for i in keep]
    del vectors
    print(f"real reference set: {len(real)} x {real.shape[1]}", flush=True)

    if not args.skip_agreement:
        ref = ReferenceSet(ids, real, tags)
        t0 = time.perf_counter()
        exact_tags = tag_all(KnnTagger(ref, k=args.k, top_d=args.top_d), real, ids, args.batch)
        exact_s = time.perf_counter() - t0
        settings = [
            (HNSW_PROJECT_TO, ef) for ef in sorted({*(int(e) for e in args.ef_search.split(",") if e), HNSW_EF_SEARCH})
        ]
        settings.append((0, 96))  # the graph over the full vectors, as before the projection
        graphs: dict[int, tuple[HnswNeighbours, float]] = {}
        for project_to, ef in settings:
            if project_to not in graphs:
                graphs.clear()
                t0 = time.perf_counter()
                graphs[project_to] = (HnswNeighbours.build(real, project_to=project_to), time.perf_counter() - t0)
            graph, build_s = graphs[project_to]
            graph.ef_search = ef
            t0 = time.perf_counter()
            approx_tags = tag_all(KnnTagger(ref, k=args.k, top_d=args.top_d, index=graph), real, ids, args.batch)
            approx_s = time.perf_counter() - t0
            top1, same_set, mad = agreement(exact_tags, approx_tags)
            kind = f"projected to {project_to}" if project_to else "full vectors"
            default = " (default)" if (project_to, ef) == (HNSW_PROJECT_TO, HNSW_EF_SEARCH) else ""
            print(
                f"agreement over all {len(real)} rows (each tagged from the others, K={args.k}, D={args.top_d}), "
                f"graph over {kind}, efSearch {ef}{default}: same top-1 tag {100 * top1:.2f} %, "
                f"same top-{args.top_d} tag set {100 * same_set:.2f} %, mean |score difference| {mad:.4f}; "
                f"exact {len(real) / exact_s:.0f} rows/s, graph {len(real) / approx_s:.0f} rows/s "
                f"(+ {build_s:.1f}s to build, {graph.memory_bytes / 1e6:.0f} MB)",
                flush=True,
            )
        del graphs, ref

    rng = np.random.default_rng(1)
    work = Path(tempfile.mkdtemp(prefix="vistag-knn-"))
    query_rows = rng.integers(0, len(real), args.queries)
    queries = real[query_rows] + rng.normal(0.0, args.noise, (args.queries, real.shape[1])).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    def measure(size: int, label: str, exact_queries: int) -> float:
        path = work / f"ref-{size}.npy"
        ref_vectors = synthetic(real, size, args.noise, path) if size > len(real) else real[:size]
        ref_tags = [tags[i % len(tags)] for i in range(size)] if size <= len(real) else None
        if ref_tags is None:
            src = np.random.default_rng(0).integers(0, len(real), size - len(real))  # the same draw as synthetic()
            ref_tags = tags + [tags[j] for j in src]
        ref = ReferenceSet(None, ref_vectors, ref_tags)
        exact = rate(KnnTagger(ref, k=args.k, top_d=args.top_d), queries[:exact_queries], args.batch)
        t0 = time.perf_counter()
        graph = HnswNeighbours.build(ref_vectors)
        build_s = time.perf_counter() - t0
        approx = rate(KnnTagger(ref, k=args.k, top_d=args.top_d, index=graph), queries, args.batch)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(
            f"{label} {size:>9,} references: exact {exact:8.1f} rows/s ({exact_queries} queries) | graph "
            f"{approx:8.1f} rows/s (built in {build_s:.1f}s, {graph.memory_bytes / 1e9:.2f} GB) | "
            f"graph / exact {approx / exact:.1f}x | peak RSS {rss:.1f} GB",
            flush=True,
        )
        del graph, ref, ref_vectors
        gc.collect()
        if path.exists():
            path.unlink()
        return approx

    for size in [int(s) for s in args.small.split(",") if s]:
        measure(size, "crossover", min(args.queries, 1000))
    rates = {}
    for size in [int(s) for s in args.sizes.split(",") if s]:
        rates[size] = measure(size, "scale", args.queries if size <= 200_000 else 256)
    first = next(iter(rates.values()), 1.0)
    print(
        "graph rate relative to the smallest size: "
        + ", ".join(f"{size:,}: {value / first:.2f}" for size, value in rates.items())
        + " (goal: flat within +-20 %)",
        flush=True,
    )
    work.rmdir()


if __name__ == "__main__":
    main()
