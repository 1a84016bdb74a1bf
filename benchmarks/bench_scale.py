"""A million documents through the index pass: docs/s and indexer memory by size, exact count, HNSW recall and latency.

The catalog is synthetic, built from the real one: row ``i`` copies the title, category, attributes
and labels of a real product (drawn at random) and its vector is that product's embedding plus
Gaussian noise (cosine 0.75-0.95 to the source, renormalised; the generator of
``bench_hnsw.py``). ``--dim`` projects every vector onto the top principal components first: at
1,840 dimensions a million documents (7.4 GB of float32 vectors, about 20 GB of ``_source`` text and
the HNSW graph) do not fit this 2-core, 24 GB machine's disk and time budget, so the 1M run is at a
reduced dimension and the full dimension runs at the largest size that fits.

Each row goes through the index pass's own stages: kNN tags from the labelled real rows (the
approximate HNSW tagger, :mod:`vistag.analyzers.ann`), :func:`~vistag.documents.build.build_document`,
and vistag's bulk layer (:func:`~vistag.indexer.bulk.parallel_bulk`, 2 requests in flight) into an
index created from vistag's template with int8 HNSW (``--vectors``, default ``int8``). Rows are made
as they are sent, so the indexer's memory should stay flat. Printed at each checkpoint: docs/s of
the segment since the previous one, the indexer's RSS now and at its peak; at the end: the exact
count, recall@10 of the engine's HNSW against the exact top 10 (numpy over the same vectors) and
p50/p95 latency of held-out real queries (k=10, 100 candidates).

    python benchmarks/bench_scale.py --size 1000000 --dim 128
    python benchmarks/bench_scale.py --size 100000 --checkpoints 25000,50000,100000
"""

from __future__ import annotations

import argparse
import csv
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_hnsw import exact_top, unit
from bench_index import machine, require_data_dir

from vistag.analyzers.ann import HnswNeighbours
from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet
from vistag.catalog.schema import CatalogSchema
from vistag.catalog.vocabulary import tags_from_labels
from vistag.config import ConnectionSettings, vistag_home
from vistag.documents.build import build_document
from vistag.documents.spec import DocumentSpec
from vistag.documents.templates import create_index
from vistag.engine.connect import connect
from vistag.indexer.bulk import parallel_bulk
from vistag.local.node import LocalNode
from vistag.models.cache import EmbeddingCache
from vistag.models.registry import get_config

INDEX = "bench-scale"


def rss_gb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in GB."""
    with open("/proc/self/status") as fh:
        now = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS"))
    return now / 1e6, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def real_rows(model: str) -> tuple[list[dict], np.ndarray]:
    """The labelled catalog rows with a cached embedding, and those embeddings."""
    config = get_config(model)
    with open(require_data_dir() / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cache = EmbeddingCache(vistag_home() / "cache" / "embeddings", config.model_id, config.embedding_dim)
    vectors, found = cache.get_many([r["sha256"] for r in rows])
    keep = np.nonzero(found)[0].tolist()
    if len(keep) < 0.9 * len(rows):
        sys.exit(f"only {len(keep)} of {len(rows)} catalog embeddings are cached: index the whole catalog once first")
    return [rows[i] for i in keep], vectors[keep]


def project(vectors: np.ndarray, dim: int | None, rng: np.random.Generator) -> np.ndarray:
    if not dim or dim >= vectors.shape[1]:
        return vectors.astype(np.float32)
    centred = vectors - vectors.mean(axis=0)
    sample = centred[rng.choice(len(vectors), min(20000, len(vectors)), replace=False)]
    _, _, vt = np.linalg.svd(sample, full_matrices=False)
    return unit(centred @ vt[:dim].T)


def variants(base: np.ndarray, size: int, seed: int, block: int = 8192) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(start, source rows, vectors)`` blocks of the synthetic corpus; the same blocks for the same seed."""
    rng = np.random.default_rng(seed)
    for start in range(0, size, block):
        n = min(block, size - start)
        src = rng.integers(0, len(base), n)
        cos = rng.uniform(0.75, 0.95, (n, 1)).astype(np.float32)
        noise = unit(rng.standard_normal((n, base.shape[1]), dtype=np.float32)) * np.sqrt(1 / cos**2 - 1)
        yield start, src, unit(base[src] + noise)


def knn_body(engine: str, vector: list[float], k: int, candidates: int) -> dict:
    """The engine's approximate kNN query on ``image_vector`` (ids only)."""
    if engine == "elasticsearch":
        knn = {"field": "image_vector", "query_vector": vector, "k": k, "num_candidates": candidates}
        return {"size": k, "_source": False, "knn": knn}
    options = {"vector": vector, "k": k, "method_parameters": {"ef_search": candidates}}
    return {"size": k, "_source": False, "query": {"knn": {"image_vector": options}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=None, help="project onto this many principal components")
    parser.add_argument("--checkpoints", default="100000,500000,1000000")
    parser.add_argument("--engine", default="opensearch", choices=("opensearch", "elasticsearch"))
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--heap", default="2g")
    parser.add_argument(
        "--vectors",
        default="int8",
        choices=("none", "int8"),
        help="HNSW vectors: none = float (int8 loses recall on PCA-reduced vectors in OpenSearch: see docs/benchmarks.md)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the node and the index (default: stop the node)")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    rng = np.random.default_rng(0)
    rows, real = real_rows(args.model)
    order = rng.permutation(len(rows))
    rows, real = [rows[i] for i in order], project(real[order], args.dim, rng)
    dim = real.shape[1]
    held, base, base_rows = real[: args.queries], real[args.queries :], rows[args.queries :]
    schema = CatalogSchema.bundled()
    tags = [tags_from_labels(r, schema.tags) for r in base_rows]
    t0 = time.perf_counter()
    tagger = KnnTagger(ReferenceSet(None, base, tags), k=10, top_d=10, index=HnswNeighbours.build(base))
    print(
        f"corpus: {args.size:,} x {dim} from {len(base):,} real rows (+ noise); {len(held)} held-out queries; "
        f"tagger: HNSW over the real rows, built in {time.perf_counter() - t0:.1f}s; RSS {rss_gb()[0]:.2f} GB",
        flush=True,
    )
    node = LocalNode(args.engine, name="bench", heap=args.heap)
    url = node.start()
    client = connect(ConnectionSettings(urls=(url,)))
    client.delete_index(INDEX)
    spec = DocumentSpec(
        name=INDEX, vector_dim=dim, category_levels=len(schema.category), vector_quantization=args.vectors
    )
    create_index(client, spec, INDEX)
    model_doc = {"name": args.model, "version": f"synthetic-{dim}d", "embedding_dim": dim, "tagger": "knn:k=10:hnsw"}

    def documents() -> Iterator[dict]:
        for start, src, vectors in variants(base, args.size, seed=1):
            tagged = tagger.tag(vectors)
            for j in range(len(src)):
                row = base_rows[int(src[j])]
                doc = build_document(
                    str(start + j),
                    {**row, "id": str(start + j)},
                    schema,
                    tags=tagged[j],
                    vector=vectors[j],
                    image={"source": row["file"], "sha256": row["sha256"], "width": 60, "height": 80},
                    model=model_doc,
                    indexed_at="2026-12-07T00:00:00+00:00",
                )
                yield doc

    checkpoints = [int(c) for c in args.checkpoints.split(",") if c and int(c) <= args.size]
    started, last_t, last_n, rates = time.perf_counter(), time.perf_counter(), 0, []
    confirmed = parallel_bulk(
        client, documents(), INDEX, threads=args.threads, chunk_size=args.chunk_size, max_chunk_bytes=20 << 20
    )
    for sent, (ok, item) in enumerate(confirmed, start=1):
        if not ok:
            raise SystemExit(f"document {item['_id']} refused: {item.get('error')}")
        if checkpoints and sent == checkpoints[0]:
            now = time.perf_counter()
            rate = (sent - last_n) / (now - last_t)
            rates.append(rate)
            current, peak = rss_gb()
            print(
                f"{sent:>9,} documents: {rate:7.0f} docs/s over the last {sent - last_n:,} "
                f"({sent / (now - started):.0f} since the start); indexer RSS {current:.2f} GB, peak {peak:.2f} GB",
                flush=True,
            )
            last_t, last_n = now, sent
            checkpoints.pop(0)
    load_s = time.perf_counter() - started
    client.refresh(INDEX)
    count = client.count(INDEX)
    print(f"count {count:,} of {args.size:,} ({'exact' if count == args.size else 'WRONG'}); loaded in {load_s:.0f}s")
    if rates:
        print(
            "docs/s by segment relative to the first: "
            + ", ".join(f"{r / rates[0]:.2f}" for r in rates)
            + " (goal: flat within +-20 %)"
        )

    # recall@10 and latency of the engine's HNSW for held-out real queries
    corpus = np.empty((args.size, dim), np.float32)
    for start, _, vectors in variants(base, args.size, seed=1):
        corpus[start : start + len(vectors)] = vectors
    truth = exact_top(corpus, held)
    del corpus
    hits, took = [], []
    for q, vector in enumerate(held):
        body = knn_body(args.engine, [float(x) for x in vector], 10, 100)
        t = time.perf_counter()
        resp = client.search(INDEX, body)
        took.append(time.perf_counter() - t)
        found = {int(h["_id"]) for h in resp["hits"]["hits"]}
        hits.append(len(found & set(truth[q].tolist())) / 10)
    took.sort()
    print(
        f"{args.engine} {args.vectors} HNSW at {args.size:,} x {dim}: recall@10 {statistics.mean(hits):.3f}, latency p50 "
        f"{took[len(took) // 2] * 1000:.1f} ms, p95 {took[int(0.95 * (len(took) - 1))] * 1000:.1f} ms "
        f"({len(took)} queries, k=10, 100 candidates, no force merge)",
        flush=True,
    )
    client.close()
    if not args.keep:
        node.stop()


if __name__ == "__main__":
    main()
