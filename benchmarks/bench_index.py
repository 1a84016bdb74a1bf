"""Indexing throughput, side by side in one run.

Prints, for N real catalog images:

* per engine: the index pass of ``vistag index`` (cached embeddings -> kNN tags ->
  documents -> bulk) in docs/s, and the same documents sent by the official client's
  own ``helpers.parallel_bulk`` (same client library, threads and chunk size) into an
  index with the same mapping (``bench-products-helper`` matches vistag's template),
  with the ratio of the two (goal >= 0.95: the helper does no tagging, so the gap is
  vistag's overhead). Both run in alternating rounds on a node that has already
  indexed the catalog once (the JVM's warm-up would otherwise count against
  whichever side runs first); medians are reported, with every round listed;
* vistag's bulk layer alone with the same documents (no tagging) against the same
  helper, in alternating rounds: the transport's own overhead;
* bytes per document: vistag's float32 vector encoding against the 17-digit doubles
  of ``json.dumps`` of the same document;
* end-to-end images/s of a cold run (embedding + indexing);
* with ``--ray``: whole runs of ``vistag.index_catalog`` (this process) and of the Ray runner
  (``vistag.ray.index_catalog`` on a local Ray of this machine's cores) on the same rows with the
  same warm embedding cache, in alternating rounds, and their ratio (goal >= 0.85 here).

With ``--cache-dir`` the embeddings come from that cache (warm after one run; the cold
end-to-end figure then needs an empty one); by default a fresh cache in a temporary folder.

The embedding pipeline against the bare model forward is ``bench_pipeline.py``.

Usage: ``python benchmarks/bench_index.py [--rows 2000] [--engines opensearch elasticsearch] [--ray]
[--cache-dir ~/.cache/vistag/cache/embeddings]``
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from vistag.catalog.schema import CatalogSchema
from vistag.config import ConnectionSettings, default_data_dir
from vistag.engine.connect import connect
from vistag.images import ImageStore
from vistag.indexer.pipeline import IndexOptions, run_index
from vistag.local.node import LocalNode
from vistag.models import create_embedder
from vistag.models.cache import EmbeddingCache
from vistag.models.embedding import BatchEmbedder


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as info:
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
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


def helper_parallel_bulk(client, docs: list[dict], index: str, threads: int, chunk: int) -> float:
    """Seconds for the official library's ``helpers.parallel_bulk`` to send ``docs`` (and refresh)."""
    if client.library == "elasticsearch":
        from elasticsearch import helpers
    else:
        from opensearchpy import helpers
    actions = ({"_index": index, "_id": d["id"], "_source": d} for d in docs)
    start = time.perf_counter()
    for ok, item in helpers.parallel_bulk(client.raw, actions, thread_count=threads, chunk_size=chunk):
        assert ok, item
    client.refresh(index)
    return time.perf_counter() - start


def vistag_bulk_layer(client, docs: list[dict], index: str, threads: int, chunk: int) -> float:
    """Seconds for vistag's own bulk layer alone (no tagging) to send ``docs`` (and refresh)."""
    import numpy as np

    from vistag.indexer.bulk import bulk

    actions = ({"_id": d["id"], **d, "image_vector": np.asarray(d["image_vector"], np.float32)} for d in docs)
    start = time.perf_counter()
    result = bulk(client, actions, index, threads=threads, chunk_size=chunk)
    assert result.rejected == 0, result.errors[:1]
    client.refresh(index)
    return time.perf_counter() - start


def bytes_per_doc(docs: list[dict]) -> tuple[float, float]:
    """Mean bulk bytes per document: vistag's encoding, and json.dumps with doubles."""
    import numpy as np

    from vistag.indexer.bulk import expand_action

    ours = doubles = 0
    for d in docs:
        action, source = expand_action(
            {"_id": d["id"], **d, "image_vector": np.asarray(d["image_vector"], np.float32)}, "products"
        )
        ours += len(action) + len(source)
        vector = [float(x) for x in np.asarray(d["image_vector"], np.float32)]
        doubles += len(action) + len(json.dumps({**d, "image_vector": vector}, separators=(",", ":")).encode()) + 1
    return ours / len(docs), doubles / len(docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--engines", nargs="+", default=["opensearch", "elasticsearch"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--threads", type=int, default=2, help="bulk requests in flight, both sides")
    parser.add_argument("--chunk-size", type=int, default=500, help="documents per bulk request, both sides")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of each side (medians reported)")
    parser.add_argument("--cache-dir", default=None, help="embedding cache to use (default: a fresh one)")
    parser.add_argument("--ray", action="store_true", help="also compare the Ray runner with vistag.index_catalog")
    parser.add_argument("--knn-method", default="auto", choices=("auto", "exact", "hnsw"))
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
            client = connect(ConnectionSettings(urls=(url,)))
            for idx in ("bench-products", "bench-products-helper"):
                client.delete_index(idx)
            cache_root = Path(args.cache_dir).expanduser() if args.cache_dir else work / "cache"
            cache = EmbeddingCache(cache_root, embedder.model_id, embedder.dim)  # cold for the first engine

            def index_pass(tag: str) -> float:
                """One ``vistag index`` run into a fresh index; returns the index pass's docs/s."""
                client.delete_index("bench-products")
                batch_embedder = BatchEmbedder(embedder, store, cache, workers=4)
                options = IndexOptions(
                    index="bench-products",
                    progress=False,
                    dead_letter=work / f"{engine}-{tag}-dl.jsonl",
                    batch_size=args.batch_size,
                    bulk_threads=args.threads,
                    chunk_size=args.chunk_size,
                    knn_method=args.knn_method,
                )
                summary = run_index(client, catalog, schema, batch_embedder, options)
                batch_embedder.close()
                assert summary.ok and summary.indexed == args.rows, summary.to_dict()
                if n == 0 and tag == "cold":
                    print(
                        f"first run end to end (embed + tag + index; {summary.embedded} embedded, "
                        f"{summary.cache_hits} from the cache): {args.rows / summary.seconds:.1f} img/s; "
                        f"tagger {summary.tagger}, timings {summary.timings}"
                    )
                return args.rows / summary.timings["index_s"]

            first = index_pass("cold")  # embeds (first engine) and warms the node's JVM up
            # The same documents through the official helper, into an index with the same mapping.
            docs = [h["_source"] for h in client.scan("bench-products")]
            assert len(docs) == args.rows
            ours, doubles = bytes_per_doc(docs)
            passes, rounds, layer_rounds = [], [], []
            for r in range(args.rounds):  # alternating, so machine noise and JIT warm-up hit every side
                passes.append(index_pass(f"round{r}"))
                for send, out in ((helper_parallel_bulk, rounds), (vistag_bulk_layer, layer_rounds)):
                    client.delete_index("bench-products-helper")
                    client.create_index("bench-products-helper")
                    out.append(len(docs) / send(client, docs, "bench-products-helper", args.threads, args.chunk_size))
            median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
            vistag, helper, layer = median(passes), median(rounds), median(layer_rounds)
            results[engine] = (vistag, helper)
            listed = lambda xs: ", ".join(f"{x:.0f}" for x in xs)  # noqa: E731
            print(
                f"{engine}: vistag index pass {vistag:.1f} docs/s (kNN tags + docs + bulk; median of {args.rounds}: "
                f"{listed(passes)}; first run on the fresh node {first:.0f}), "
                f"{client.library}.helpers.parallel_bulk {helper:.1f} docs/s (median: {listed(rounds)}), "
                f"ratio {vistag / helper:.2f}; "
                f"vistag bulk layer alone (same docs, no tagging) {layer:.1f} docs/s (median: {listed(layer_rounds)}), "
                f"ratio {layer / helper:.2f}; "
                f"bytes/doc {ours:.0f} (float32) vs {doubles:.0f} (doubles), {ours / doubles:.2f}x"
            )
            if args.ray:
                compare_ray(args, client, url, catalog, data, cache_root, schema)
            LocalNode(engine, name="bench").stop()


def compare_ray(
    args: argparse.Namespace, client, url: str, catalog: Path, data: Path, cache_root: Path, schema
) -> None:
    """Whole runs of vistag.index_catalog and of the Ray runner on the same rows, alternating (warm cache)."""
    import logging

    import ray

    import vistag
    import vistag.ray
    from vistag.ray.runner import RayOptions

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local Ray in this benchmark process
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
    common = {
        "schema": schema,
        "model": args.model,
        "cache_dir": cache_root,
        "batch_size": args.batch_size,
        "bulk_threads": args.threads,
        "chunk_size": args.chunk_size,
        "knn_method": args.knn_method,
    }
    cores = os.cpu_count() or 1
    options = RayOptions(
        read_tasks=2, embed_actors=1, embed_threads=cores, tag_actors=1, tag_threads=cores, load_cpus=0.5
    )
    local, remote = [], []
    for _ in range(args.rounds):
        client.delete_index("bench-one")
        one = vistag.index_catalog(client.raw, catalog, data / "images.tar", "bench-one", progress=False, **common)
        assert one.ok, one.to_dict()
        local.append(one.indexed / one.seconds)
        client.delete_index("bench-ray")
        by_ray = vistag.ray.index_catalog(url, catalog, data / "images.tar", "bench-ray", ray_options=options, **common)
        assert by_ray.ok and by_ray.indexed == one.indexed, by_ray.to_dict()
        remote.append(by_ray.indexed / by_ray.seconds)
    ray.shutdown()
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    listed = lambda xs: ", ".join(f"{x:.0f}" for x in xs)  # noqa: E731
    print(
        f"{client.engine}: whole run, warm cache: vistag.index_catalog {median(local):.1f} docs/s ({listed(local)}), "
        f"Ray runner {median(remote):.1f} docs/s ({listed(remote)}; {options}), "
        f"ratio {median(remote) / median(local):.2f}; last Ray timings {by_ray.timings}, tagger {by_ray.tagger}"
    )


if __name__ == "__main__":
    main()
