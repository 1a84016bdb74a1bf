"""``vistag sync`` after a 1 % change against a full ``vistag index`` of the same catalog, one run.

Both start from an empty embedding cache. The full index builds the index from
yesterday's catalog (every image embedded); today's catalog then differs in 1 % of
its rows: a third re-titled, a third with a new image (another product's photo),
and a sixth removed plus as many new products. ``vistag sync`` brings the index up
to date; the figure is its wall time over the full index's (goal < 10 %), with
what it counted and what it embedded.

Usage: ``python benchmarks/bench_sync.py [--rows 44072] [--engine opensearch]``
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import machine, require_data_dir

from vistag.catalog.schema import CatalogSchema
from vistag.config import ConnectionSettings
from vistag.engine.connect import connect
from vistag.images import ImageStore
from vistag.indexer.options import IndexOptions
from vistag.indexer.pipeline import run_index
from vistag.indexer.sync import sync_catalog
from vistag.local.node import LocalNode
from vistag.models import create_embedder
from vistag.models.cache import EmbeddingCache
from vistag.models.embedding import BatchEmbedder
from vistag.search.queries import Searcher
from vistag.search.reference_tagger import EngineKnnDocumentTagger


def write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="catalog rows (default: all)")
    parser.add_argument("--engine", default="opensearch", choices=("opensearch", "elasticsearch"))
    parser.add_argument("--changed", type=float, default=0.01, help="share of rows that change (default 1 %%)")
    args = parser.parse_args()
    data = require_data_dir()
    print(f"machine: {machine()}")
    with open(data / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[: args.rows]
    rng = random.Random(0)
    n = max(6, int(len(rows) * args.changed))
    picked = rng.sample(range(len(rows)), n)
    retitle, reimage, swap = picked[: n // 3], picked[n // 3 : 2 * n // 3], picked[2 * n // 3 :]
    removed, added = swap[: len(swap) // 2], swap[len(swap) // 2 :]
    yesterday = [r for i, r in enumerate(rows) if i not in set(added)]
    today = []
    for i, r in enumerate(rows):
        if i in set(removed):
            continue
        r = dict(r)
        if i in set(retitle):
            r["productDisplayName"] += " (new season)"
        if i in set(reimage):
            r["file"] = rows[(i + 1) % len(rows)]["file"]  # another product's photo
        today.append(r)
    work = Path(tempfile.mkdtemp(prefix="vistag-bench-sync-"))
    schema = CatalogSchema.bundled()
    embedder = create_embedder("efficientnet-lite0", device="auto")
    node = LocalNode(args.engine, name="bench", heap="1g")
    client = connect(ConnectionSettings(urls=(node.start(),)))
    client.delete_index("bench-sync")
    options = IndexOptions(index="bench-sync", progress=False, dead_letter=work / "dl.jsonl")
    with ImageStore(data / "images.tar") as store:
        t0 = time.monotonic()
        with BatchEmbedder(
            embedder, store, EmbeddingCache(work / "cache-full", embedder.model_id, embedder.dim)
        ) as batch:
            full = run_index(client, write(work / "yesterday.csv", yesterday), schema, batch, options)
        full_s = time.monotonic() - t0
        assert full.ok, full.to_dict()
        print(f"full index of {len(yesterday)} rows: {full_s:.1f}s ({full.embedded} images embedded)", flush=True)

        def make_tagger():
            tagger = EngineKnnDocumentTagger(Searcher(client, "bench-sync", embedder.dim), schema)
            tagger.reference_size = client.count("bench-sync")
            return tagger

        t0 = time.monotonic()
        with BatchEmbedder(
            embedder, store, EmbeddingCache(work / "cache-sync", embedder.model_id, embedder.dim)
        ) as batch:
            synced = sync_catalog(client, write(work / "today.csv", today), schema, batch, options, make_tagger)
        sync_s = time.monotonic() - t0
    client.refresh("bench-sync")
    count = client.count("bench-sync")
    node.stop()
    print(
        f"sync to today's catalog ({n} rows changed: {len(retitle)} re-titled, {len(reimage)} new images, "
        f"{len(removed)} removed, {len(added)} new): {sync_s:.1f}s = {sync_s / full_s:.3f} of the full index; "
        f"added {synced.added}, re-tagged {synced.retagged}, updated {synced.updated}, deleted {synced.deleted}, "
        f"unchanged {synced.unchanged}, failed {synced.failed}; {synced.embedded} images embedded; "
        f"index count {count} (catalog {len(today)})"
    )


if __name__ == "__main__":
    main()
