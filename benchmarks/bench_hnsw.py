"""HNSW recall@10 against exact search, query latency and index size: float vs int8-quantized vectors.

Corpus: the catalog's real embeddings (from the embedding cache of ``--model``) plus
synthetic "variants" up to ``--size`` vectors: a real vector plus Gaussian noise
(cosine 0.75-0.95 to its source), renormalised. ``--dim`` projects everything onto
the top principal components first (the 1M run uses it: 1M x 1840 floats would not
fit this machine's disk and time budget). Queries are held-out real embeddings
that are not in the corpus.

For each engine and each vector setting (``vistag``'s own mapping through
:meth:`EngineAdapter.vector_mapping`: float HNSW, or int8 = Elasticsearch
``int8_hnsw`` / OpenSearch Lucene ``sq``) it loads the corpus with ``_bulk``, force
merges to one segment (one graph: the steady state of a built index), then runs
the queries one at a time (k=10, 100 candidates: ``num_candidates`` in
Elasticsearch, ``ef_search`` in OpenSearch) and prints:

* recall@10 against the exact top 10 (numpy brute force over the float vectors);
* p50/p95 latency, client wall time and the engine's ``took``;
* index size on disk, and the part HNSW search keeps hot: graph + the vectors it
  scores (floats, or the quantized copies).

    python benchmarks/bench_hnsw.py --size 100000 [--engines opensearch elasticsearch]
    python benchmarks/bench_hnsw.py --size 1000000 --dim 128
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import machine, require_data_dir

from vistag.analyzers.knn_tagger import top_k_rows
from vistag.config import ConnectionSettings, vistag_home
from vistag.engine.adapter import EngineAdapter
from vistag.engine.connect import connect
from vistag.local.node import LocalNode
from vistag.models.cache import EmbeddingCache
from vistag.models.registry import get_config

FIELD = "v"
INDEX = "bench-hnsw"


def real_embeddings(model: str) -> np.ndarray:
    """Distinct catalog embeddings from the embedding cache."""
    config = get_config(model)
    data = require_data_dir()
    with open(data / "labels.csv", newline="", encoding="utf-8") as fh:
        shas = list(dict.fromkeys(r["sha256"] for r in csv.DictReader(fh)))
    cache = EmbeddingCache(vistag_home() / "cache" / "embeddings", config.model_id, config.embedding_dim)
    vectors, found = cache.get_many(shas)
    if sum(found) < 0.9 * len(shas):
        sys.exit(
            f"only {sum(found)} of {len(shas)} catalog embeddings are cached for {config.model_id}: "
            "run `vistag index` or `vistag train` over the full catalog first"
        )
    return vectors[np.array(found)]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_corpus(
    real: np.ndarray, size: int, dim: int | None, queries: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(corpus, queries), unit float32; queries are real vectors left out of the corpus."""
    rng = np.random.default_rng(seed)
    real = real[rng.permutation(len(real))]
    if dim:
        centred = real - real.mean(axis=0)
        _, _, vt = np.linalg.svd(
            centred[rng.choice(len(real), min(20000, len(real)), replace=False)], full_matrices=False
        )
        real = unit(centred @ vt[:dim].T)
    held, base = real[:queries], real[queries:]
    if size <= len(base):
        return base[:size].copy(), held
    corpus = np.empty((size, base.shape[1]), np.float32)
    corpus[: len(base)] = base
    for start in range(len(base), size, 65536):
        n = min(65536, size - start)
        src = base[rng.integers(0, len(base), n)]
        # target cosine c to the source: noise of norm sqrt(1/c^2 - 1)
        cos = rng.uniform(0.75, 0.95, (n, 1)).astype(np.float32)
        noise = unit(rng.standard_normal((n, base.shape[1]), dtype=np.float32)) * np.sqrt(1 / cos**2 - 1)
        corpus[start : start + n] = unit(src + noise)
    return corpus, held


def exact_top(corpus: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact cosine top-k ids (rows), best first (the kNN tagger's exact scan)."""
    return top_k_rows(queries, corpus, k, chunk_size=65536)[0]


def load(url: str, corpus: np.ndarray, batch: int, threads: int = 2) -> float:
    """Bulk-load the corpus (ids = row numbers); return seconds."""
    local = threading.local()

    def send(start: int) -> None:
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        lines = []
        for i, row in enumerate(np.round(corpus[start : start + batch], 6).tolist()):
            lines.append(json.dumps({"index": {"_id": str(start + i)}}, separators=(",", ":")))
            lines.append(json.dumps({FIELD: row}, separators=(",", ":")))
        resp = session.post(
            f"{url}/{INDEX}/_bulk",
            data=("\n".join(lines) + "\n").encode(),
            headers={"Content-Type": "application/x-ndjson"},
            timeout=600,
        )
        resp.raise_for_status()
        if resp.json()["errors"]:
            raise RuntimeError(json.dumps(resp.json()["items"][:2]))

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, range(0, len(corpus), batch)))
    return time.perf_counter() - started


def file_sizes(url: str) -> dict[str, int]:
    stats = requests.get(
        f"{url}/{INDEX}/_stats/segments", params={"include_segment_file_sizes": "true"}, timeout=60
    ).json()
    sizes = stats["indices"][INDEX]["primaries"]["segments"].get("file_sizes", {})
    return {ext: v["size_in_bytes"] for ext, v in sizes.items()}


def query_body(engine: str, vector: list[float], k: int, candidates: int, oversample: float | None = None) -> dict:
    if engine == "elasticsearch":
        knn = {"field": FIELD, "query_vector": vector, "k": k, "num_candidates": candidates}
        if oversample:
            knn["rescore_vector"] = {"oversample": oversample}
        return {"size": k, "_source": False, "knn": knn}
    return {
        "size": k,
        "_source": False,
        "query": {"knn": {FIELD: {"vector": vector, "k": k, "method_parameters": {"ef_search": candidates}}}},
    }


def run_variant(
    engine: str,
    url: str,
    corpus: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    quantization: str,
    batch: int,
    k: int,
    candidates: int,
) -> list[dict]:
    client = connect(ConnectionSettings(urls=(url,)))
    client.delete_index(INDEX)
    adapter = EngineAdapter(client.info())
    # compound_format false: per-file sizes (graph, vectors, quantized vectors) stay visible.
    settings = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1", "compound_format": False}
    if engine == "opensearch":
        settings["knn"] = True
    mapping = {"dynamic": "strict", "properties": {FIELD: adapter.vector_mapping(corpus.shape[1], quantization)}}
    client.create_index(INDEX, {"settings": {"index": settings}, "mappings": mapping})
    load_s = load(url, corpus, batch)
    started = time.perf_counter()
    requests.post(f"{url}/{INDEX}/_refresh", timeout=3600)
    requests.post(f"{url}/{INDEX}/_forcemerge", params={"max_num_segments": 1}, timeout=7200).raise_for_status()
    requests.post(f"{url}/{INDEX}/_refresh", timeout=3600)
    merge_s = time.perf_counter() - started
    store = requests.get(f"{url}/{INDEX}/_stats/store", timeout=60).json()["indices"][INDEX]["primaries"]["store"][
        "size_in_bytes"
    ]
    files = file_sizes(url)
    out = {
        "engine": engine,
        "quantization": quantization,
        "size": len(corpus),
        "dim": corpus.shape[1],
        "load_s": round(load_s, 1),
        "merge_s": round(merge_s, 1),
        "store_mb": round(store / 2**20, 1),
        "hot_mb": round(
            (files.get("vex", 0) + (files.get("veq", 0) if quantization == "int8" else files.get("vec", 0))) / 2**20, 1
        ),
        "files_mb": {ext: round(b / 2**20, 1) for ext, b in sorted(files.items()) if b > 2**20},
    }
    results = [{**out, **measure(engine, url, queries, truth, k, candidates)}]
    if engine == "elasticsearch" and quantization == "int8":
        results.append(
            {**out, "quantization": "int8+rescore x3", **measure(engine, url, queries, truth, k, candidates, 3.0)}
        )
    return results


def measure(
    engine: str,
    url: str,
    queries: np.ndarray,
    truth: np.ndarray,
    k: int,
    candidates: int,
    oversample: float | None = None,
) -> dict:
    """Recall@k and latency of the queries, one at a time."""
    session = requests.Session()
    wall, took, recall = [], [], []
    for i, q in enumerate(np.round(queries, 6).tolist()):
        body = json.dumps(query_body(engine, q, k, candidates, oversample))
        t0 = time.perf_counter()
        resp = session.post(
            f"{url}/{INDEX}/_search", data=body, headers={"Content-Type": "application/json"}, timeout=60
        )
        elapsed = time.perf_counter() - t0
        resp.raise_for_status()
        result = resp.json()
        ids = [int(h["_id"]) for h in result["hits"]["hits"]]
        if i >= 50:  # the first 50 queries warm the caches up
            wall.append(elapsed * 1000)
            took.append(result["took"])
        recall.append(len(set(ids) & set(truth[i].tolist())) / k)
    return {
        "recall_at_10": round(float(np.mean(recall)), 4),
        "wall_ms_p50": round(float(np.percentile(wall, 50)), 2),
        "wall_ms_p95": round(float(np.percentile(wall, 95)), 2),
        "took_ms_p50": float(np.percentile(took, 50)),
        "took_ms_p95": float(np.percentile(took, 95)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=None, help="project onto this many principal components")
    parser.add_argument(
        "--queries", type=int, default=550, help="queries (the first 50 only warm up the latency figures)"
    )
    parser.add_argument("--engines", nargs="+", default=["opensearch", "elasticsearch"])
    parser.add_argument("--quantization", nargs="+", default=["none", "int8"])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--batch", type=int, default=250, help="documents per bulk request")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--json", default=None, help="append results to this JSON-lines file")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    corpus, queries = make_corpus(real_embeddings(args.model), args.size, args.dim, args.queries)
    started = time.perf_counter()
    truth = exact_top(corpus, queries)
    print(
        f"corpus {corpus.shape[0]} x {corpus.shape[1]}, {len(queries)} held-out queries; "
        f"exact top-10 in numpy: {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    batch = args.batch if corpus.shape[1] > 512 else 2000
    for engine in args.engines:
        node = LocalNode(engine, name="bench-hnsw", heap=args.heap)
        url = node.start()
        try:
            for quantization in args.quantization:
                for r in run_variant(engine, url, corpus, queries, truth, quantization, batch, 10, args.candidates):
                    report(r, args.json)
            requests.delete(f"{url}/{INDEX}", timeout=120)
        finally:
            node.stop()


def report(r: dict, json_path: str | None) -> None:
    """Print one result line (and append it to ``json_path``)."""
    name = "float" if r["quantization"] == "none" else r["quantization"]
    print(
        f"{r['engine']} {name}: recall@10 {r['recall_at_10']:.3f}, "
        f"latency p50/p95 {r['wall_ms_p50']:.1f}/{r['wall_ms_p95']:.1f} ms (took {r['took_ms_p50']:.0f}/"
        f"{r['took_ms_p95']:.0f} ms), index {r['store_mb']:.0f} MB, HNSW hot set {r['hot_mb']:.0f} MB "
        f"{r['files_mb']}, load {r['load_s']:.0f} s + merge {r['merge_s']:.0f} s",
        flush=True,
    )
    if json_path:
        with open(json_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({**r, "machine": machine()}) + "\n")


if __name__ == "__main__":
    main()
