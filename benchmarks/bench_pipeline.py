"""Embedding pipeline images/s / bare model forward images/s, side by side in one run.

* bare forward: the backbone on ready, normalised ``channels_last`` batches already
  on the device (no reading, decoding, resizing, copying or caching);
* pipeline: :meth:`BatchEmbedder.embed_stream` over the same catalog images, from
  the tar: read + sha256 + decode + pad/resize (decode processes) + normalise +
  forward + writes to a cold embedding cache.

Both use the same model object, batch size and resolution. Rounds alternate
(forward, pipeline, forward, ...) so machine noise hits both; the ratio of each
round and of the medians is printed. ``--compile`` runs both through
``torch.compile`` (compile time excluded: one warm-up batch each).

    python benchmarks/bench_pipeline.py [--rows 2000] [--rounds 3] [--compile] [--decode-processes N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import machine, require_data_dir, sample_catalog

from vistag.catalog.rows import read_catalog
from vistag.catalog.schema import CatalogSchema
from vistag.images import ImageStore
from vistag.models import create_embedder
from vistag.models.cache import EmbeddingCache
from vistag.models.embedding import BatchEmbedder


def bare_forward(embedder, batches: list, images: int) -> float:
    """images/s of the model alone on prepared device batches, ``images`` in total."""
    import torch

    done = 0
    start = time.perf_counter()
    with torch.inference_mode():
        while done < images:
            embedder.forward_batch(batches[(done // embedder.batch_size) % len(batches)])
            done += embedder.batch_size
    if embedder.device.type == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def pipeline(embedder, store: ImageStore, refs: list[str], processes: int | None, work: Path, n: int) -> float:
    """images/s of ``embed_stream`` over ``refs`` with a cold cache."""
    cache = EmbeddingCache(work / f"cache-{n}", embedder.model_id, embedder.dim)
    with BatchEmbedder(embedder, store, cache, processes=processes) as batch:
        # Start the decode processes outside the timing (a pool lives for a whole run).
        list(batch.embed_stream([(0, refs[0], None)]))
        computed = batch.computed
        start = time.perf_counter()
        count = sum(
            1 for _, res in batch.embed_stream((i, r, None) for i, r in enumerate(refs[1:])) if res.vector is not None
        )
        seconds = time.perf_counter() - start
    assert batch.computed - computed == count, "every image must go through the model, none come from the cache"
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--decode-processes", type=int, default=None)
    args = parser.parse_args()
    data = require_data_dir()
    import torch

    print(f"machine: {machine()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="vistag-bench-pipeline-"))
    catalog = sample_catalog(data, args.rows + 1, work / "catalog.csv")
    schema = CatalogSchema.bundled()
    refs = [schema.image_ref(r.fields) for r in read_catalog(catalog, schema) if hasattr(r, "fields")]
    embedder = create_embedder(args.model, device=args.device, batch_size=args.batch_size, compile=args.compile)
    with ImageStore(data / "images.tar") as store:
        prepared = [embedder.prepare(store.load(r).image) for r in refs[: 8 * args.batch_size]]
    with torch.inference_mode():
        batches = [
            embedder.prepared_batch(prepared[i : i + args.batch_size]).contiguous(memory_format=torch.channels_last)
            for i in range(0, len(prepared) - args.batch_size + 1, args.batch_size)
        ]
        embedder.forward_batch(batches[0])  # warm-up (and compile)
    processes = args.decode_processes
    print(
        f"model: {embedder.model_id} on {embedder.device}{' compiled' if args.compile else ''}, batch {args.batch_size}, "
        f"{len(refs) - 1} images per pipeline round, decode processes: "
        f"{'default' if processes is None else processes}",
        flush=True,
    )
    fwd, pipe = [], []
    with ImageStore(data / "images.tar") as store:
        for n in range(args.rounds):
            fwd.append(bare_forward(embedder, batches, len(refs) - 1))
            pipe.append(pipeline(embedder, store, refs, processes, work, n))
            print(
                f"round {n + 1}: bare forward {fwd[-1]:.1f} img/s, pipeline {pipe[-1]:.1f} img/s, "
                f"ratio {pipe[-1] / fwd[-1]:.2f}",
                flush=True,
            )
    print(
        f"median: bare forward {statistics.median(fwd):.1f} img/s, pipeline {statistics.median(pipe):.1f} img/s, "
        f"ratio {statistics.median(pipe) / statistics.median(fwd):.2f}"
    )


if __name__ == "__main__":
    main()
