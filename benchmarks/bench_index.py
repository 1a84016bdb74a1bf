"""Indexing throughput, side by side in one run.

Prints, for N real catalog images:

* per engine: the index pass of ``vistag index`` (cached embeddings -> kNN tags ->
  documents -> bulk) in docs/s, and the same documents re-sent by a plain loop of
  raw ``_bulk`` requests, with the ratio of the two;
* end-to-end images/s of a cold run (embedding + indexing).

The embedding pipeline against the bare model forward is ``bench_pipeline.py``.

Usage: ``python benchmarks/bench_index.py [--rows 2000] [--engines opensearch elasticsearch]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vistag.config import ConnectionSettings, default_data_dir  # noqa: E402
from vistag.engine import EngineClient, LocalNode  # noqa: E402
from vistag.indexer.embedding import BatchEmbedder  # noqa: E402
from vistag.indexer.images import ImageStore  # noqa: E402
from vistag.indexer.pipeline import IndexOptions, index_catalog  # noqa: E402
from vistag.indexer.schema import CatalogSchema  # noqa: E402
from vistag.models import create_embedder  # noqa: E402
from vistag.models.cache import EmbeddingCache  # noqa: E402


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def require_data_dir() -> Path:
    """The fashion-product-images folder, or exit with how to set it."""
    data = default_data_dir()
    if data is None:
        sys.exit("set VISTAG_DATA to the fashion-product-images folder")
    return data


def sample_catalog(data: Path, rows: int, out: Path) -> Path:
    lines = (data / "labels.csv").read_text(encoding="utf-8").splitlines()
    step = max(1, (len(lines) - 1) // rows)
    out.write_text("\n".join([lines[0], *lines[1::step][:rows]]) + "\n", encoding="utf-8")
    return out


def raw_bulk_loop(url: str, docs: list[dict], index: str, chunk: int = 500) -> float:
    session = requests.Session()
    start = time.perf_counter()
    for i in range(0, len(docs), chunk):
        body = "".join(json.dumps({"index": {"_index": index, "_id": d["id"]}}) + "\n" + json.dumps(d) + "\n"
                       for d in docs[i:i + chunk])
        resp = session.post(f"{url}/_bulk", data=body.encode(), headers={"Content-Type": "application/x-ndjson"}, timeout=120)
        resp.raise_for_status()
        assert not resp.json()["errors"]
    session.post(f"{url}/{index}/_refresh", timeout=60)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--engines", nargs="+", default=["opensearch", "elasticsearch"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="efficientnet-lite0")
    args = parser.parse_args()
    data = require_data_dir()
    print(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="vistag-bench-"))
    catalog = sample_catalog(data, args.rows, work / "catalog.csv")
    schema = CatalogSchema.bundled()
    embedder = create_embedder(args.model, device="auto", batch_size=args.batch_size)
    print(f"model: {embedder.model_id} on {embedder.device}, batch {args.batch_size}, {args.rows} images")

    with ImageStore(data / "images.tar") as store:
        results = {}
        for n, engine in enumerate(args.engines):
            url = LocalNode(engine, name="bench", heap="1g").start()
            client = EngineClient(ConnectionSettings(url=url))
            for idx in ("bench-products", "bench-raw"):
                client.request("DELETE", f"/{idx}", ok_statuses=(404,))
            cache = EmbeddingCache(work / "cache", embedder.model_id, embedder.dim)  # cold for the first engine
            batch_embedder = BatchEmbedder(embedder, store, cache, workers=4)
            options = IndexOptions(index="bench-products", progress=False, dead_letter=work / f"{engine}-dl.jsonl",
                                   batch_size=args.batch_size)
            summary = index_catalog(client, catalog, schema, batch_embedder, options)
            batch_embedder.close()
            assert summary.ok, summary.to_dict()
            index_s = summary.timings["index_s"]
            if n == 0:
                print(f"cold end to end (embed + tag + index): {args.rows / summary.seconds:.1f} img/s")
            # The same documents through a plain raw _bulk loop.
            docs = [h["_source"] for h in client.search("bench-products", {"size": args.rows, "query": {"match_all": {}}})["hits"]["hits"]]
            raw_s = raw_bulk_loop(url, docs, "bench-raw")
            results[engine] = (args.rows / index_s, len(docs) / raw_s)
            print(f"{engine}: vistag index pass {args.rows / index_s:.1f} docs/s (kNN tags + docs + bulk), "
                  f"raw _bulk loop {len(docs) / raw_s:.1f} docs/s, ratio {(args.rows / index_s) / (len(docs) / raw_s):.2f}")
            LocalNode(engine, name="bench").stop()


if __name__ == "__main__":
    main()
