"""kNN tagging throughput on CPU: queries/s of the IDW tagger against 44k real and 1M synthetic reference vectors.

The reference vectors of the real set come from the embedding cache (the catalog's
1840-d embeddings); the synthetic set is random unit vectors of the same size with
7 random tags each, stored in a float32 memory map (7.4 GB for 1M), scored in
chunks of 32,768 rows so memory stays bounded.

    python benchmarks/bench_knn_tagging.py [--synthetic 1000000] [--queries 512]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import machine

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet
from vistag.catalog.schema import CatalogSchema
from vistag.catalog.vocabulary import tags_from_labels
from vistag.config import default_data_dir, vistag_home
from vistag.models.cache import EmbeddingCache
from vistag.models.registry import get_config


def rate(tagger: KnnTagger, queries: np.ndarray, batch: int) -> float:
    tagger.tag(queries[:batch])  # warm up
    start = time.perf_counter()
    for i in range(0, len(queries), batch):
        tagger.tag(queries[i : i + batch])
    return len(queries) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    config = get_config("efficientnet-lite0")
    data = default_data_dir()
    with open(data / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cache = EmbeddingCache(vistag_home() / "cache" / "embeddings", config.model_id, config.embedding_dim)
    vectors, found = cache.get_many([r["sha256"] for r in rows])
    keep = np.nonzero(found)[0]
    schema = CatalogSchema.bundled()
    ref = ReferenceSet(
        [rows[i]["id"] for i in keep], vectors[keep], [tags_from_labels(rows[i], schema.tags) for i in keep]
    )
    queries = vectors[keep[: args.queries]]
    real = rate(KnnTagger(ref, k=args.k), queries, args.batch)
    print(
        f"real reference set: {len(ref)} x {config.embedding_dim}: {real:.0f} queries/s (batch {args.batch}, K={args.k})",
        flush=True,
    )

    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp(prefix="vistag-knn-")) / "vectors.f32"
    synth = np.lib.format.open_memmap(
        path.with_suffix(".npy"), mode="w+", dtype=np.float32, shape=(args.synthetic, config.embedding_dim)
    )
    for start in range(0, args.synthetic, 65536):
        block = rng.standard_normal((min(65536, args.synthetic - start), config.embedding_dim), dtype=np.float32)
        synth[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    synth.flush()
    vocab = [f"tag{i}" for i in range(5000)]
    tags = [[vocab[j] for j in rng.integers(0, len(vocab), 7)] for _ in range(args.synthetic)]
    big = ReferenceSet([str(i) for i in range(args.synthetic)], synth, tags)
    synth_rate = rate(KnnTagger(big, k=args.k), queries[: args.queries], args.batch)
    print(
        f"synthetic reference set: {args.synthetic} x {config.embedding_dim} (memory-mapped): {synth_rate:.1f} queries/s",
        flush=True,
    )
    path.with_suffix(".npy").unlink()


if __name__ == "__main__":
    main()
