"""``vistag index``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vistag.cli.commands.common import (connect, embedding_cache, is_model_dir, load_tagging_model, make_embedder,
                                       print_json)
from vistag.errors import ConfigError
from vistag.indexer.embedding import BatchEmbedder
from vistag.indexer.images import ImageStore
from vistag.indexer.pipeline import IndexOptions, IndexSummary, index_catalog
from vistag.indexer.schema import CatalogSchema


def cmd_index(args: argparse.Namespace) -> int:
    """Index a catalog; exit 1 when any row failed or was dead-lettered."""
    client = connect(args)
    client.info()
    schema = CatalogSchema.load(args.schema)
    model = load_tagging_model(args.model) if is_model_dir(args.model) else None
    tagger = args.tagger or ("heads" if model is not None else "knn")
    if tagger != "knn" and model is None:
        raise ConfigError(f"--tagger {tagger} needs --model MODEL_DIR (a directory written by `vistag train`)")
    embedder = make_embedder(args, model)
    cache = embedding_cache(embedder)
    options = IndexOptions(
        index=args.index, batch_size=args.batch_size, chunk_size=args.chunk_size, max_chunk_bytes=args.chunk_bytes,
        k=args.k, top_d=args.top_d, resume=args.resume, dead_letter=Path(args.dead_letter),
        progress=not args.quiet and sys.stderr.isatty(), max_retries=args.max_retries, limit=args.limit,
        tagger=tagger, relations=Path(args.expand_relations) if args.expand_relations else None,
        expand_discount=args.expand_discount,
    )
    with ImageStore(args.images) as store:
        batch_embedder = BatchEmbedder(embedder, store, cache, workers=args.workers)
        reference = None
        ref_store = None
        try:
            if args.reference:
                ref_store = ImageStore(args.reference_images or args.images)
                reference = (args.reference, schema, BatchEmbedder(embedder, ref_store, cache, workers=args.workers))
            summary = index_catalog(client, args.catalog, schema, batch_embedder, options, reference, model=model)
        finally:
            batch_embedder.close()
            if ref_store:
                ref_store.close()
    if args.json:
        print_json(summary.to_dict())
    else:
        print_summary(summary)
    return 0 if summary.ok else 1


def print_summary(summary: IndexSummary) -> None:
    """Human-readable summary."""
    rate = summary.indexed / summary.seconds if summary.seconds else 0.0
    print(f"index {summary.index}: read {summary.read}, indexed {summary.indexed}, skipped (already indexed) "
          f"{summary.skipped_existing}, failed {summary.failed}, dead-lettered {summary.dead_lettered} "
          f"in {summary.seconds:.1f}s ({rate:.1f} docs/s; {summary.embedded} images embedded, "
          f"{summary.cache_hits} from cache; reference set {summary.reference_size}; tagger {summary.tagger})")
    if summary.dead_lettered:
        print(f"bad rows written to {summary.dead_letter_path}")
    if summary.aborted:
        print(f"stopped early: {summary.aborted}\nrerun with --resume once the engine is back")
