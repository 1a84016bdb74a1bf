"""``vistag demo``: the whole job on the embedded default, end to end."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from vistag.cli.commands.common import embedding_cache, make_embedder, print_hits, print_summary
from vistag.config import default_data_dir, vistag_home
from vistag.local.node import LocalNode
from vistag.errors import ConfigError
from vistag.models.embedding import BatchEmbedder
from vistag.images import ImageStore
from vistag.indexer.pipeline import IndexOptions, index_catalog
from vistag.catalog.schema import CatalogSchema
from vistag.search import Searcher
from vistag.search.seller_check import check_seller_tags


def write_sample(labels: Path, out: Path, size: int) -> tuple[Path, dict]:
    """Write every n-th row of ``labels`` (a spread over the whole catalog) to ``out``.

    Returns:
        The sample path and one held-out row (not in the sample) to query by image.
    """
    with open(labels, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if size < 1 or size > len(rows):
        raise ConfigError(f"--size must be within 1..{len(rows)}")
    step = len(rows) / size
    picked = {int(i * step) for i in range(size)}
    held_out = next(r for i, r in enumerate(rows) if i not in picked and r["articleType"] == "Tshirts")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[i] for i in sorted(picked))
    return out, held_out


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the local engine, index a sample, print example queries."""
    started = time.monotonic()
    data = Path(args.data) if args.data else default_data_dir()
    if data is None or not (data / "labels.csv").is_file() or not (data / "images.tar").is_file():
        raise ConfigError("sample data not found: pass --data or set VISTAG_DATA to the fashion-product-images folder "
                          "(with labels.csv and images.tar)")
    print(f"== starting a local {args.engine} node")
    node = LocalNode(args.engine)
    url = node.start()
    print(f"   {url}")
    client = node.client()
    info = client.info()
    print(f"   {info.engine} {info.version}")
    sample, held_out = write_sample(data / "labels.csv", vistag_home() / "demo" / "sample.csv", args.size)
    print(f"== indexing {args.size} products from {data} into '{args.index}'")
    embedder = make_embedder(args)
    client.delete_index(args.index)
    options = IndexOptions(index=args.index, dead_letter=vistag_home() / "demo" / "dead-letter.jsonl",
                           progress=not args.quiet and sys.stderr.isatty(), batch_size=args.batch_size)
    with ImageStore(data / "images.tar") as store:
        batch_embedder = BatchEmbedder(embedder, store, embedding_cache(embedder))
        try:
            summary = index_catalog(client, sample, CatalogSchema.bundled(), batch_embedder, options)
        finally:
            batch_embedder.close()
        print_summary(summary)
        if not summary.ok:
            return 1
        searcher = Searcher(client, args.index, embedder.dim)
        print('\n== keyword query: "blue jeans"')
        print_hits(searcher.keyword("blue jeans", size=5))
        print("\n== tag query: tshirts + casual:0.5, gender=Men")
        print_hits(searcher.tags({"tshirts": 1.0, "casual": 0.5}, size=5, attributes={"gender": "Men"}))
        query_image = store.load(held_out["file"])
        vector = embedder.embed_images([query_image.image])[0]
        print(f"\n== image query: held-out product {held_out['id']} ({held_out['productDisplayName']}), k=5")
        image_hits = searcher.image(vector, k=5)
        print_hits(image_hits)
        if image_hits:
            print(f"\n== similar products to {image_hits[0].id} ({image_hits[0].title}), k=5")
            print_hits(searcher.similar(image_hits[0].id, k=5))
        print('\n== hybrid: "casual shirt" + tags shirts, fused by reciprocal rank')
        print_hits(searcher.hybrid("casual shirt", {"shirts": 1.0}, None, size=5))
        check = check_seller_tags(searcher, vector, ["Tshirts", "Casual", "Heels", "bestseller"])
        print("\n== seller tag check of the held-out photo with tags Tshirts, Casual, Heels, bestseller")
        print(f"   supported {[t['tag'] for t in check.supported]}, weak {[t['tag'] for t in check.weak]}, "
              f"contradicted {[t['tag'] for t in check.contradicted]}, unknown {check.unknown}, "
              f"suggested {[t['tag'] for t in check.suggested]}")
    print(f"\n== done in {time.monotonic() - started:.1f}s; the node keeps running at {url}")
    print(f"   try: vistag search --engine {args.engine} --index {args.index} --query 'red shirt'")
    if args.stop:
        node.stop()
        print("   (node stopped)")
    return 0
