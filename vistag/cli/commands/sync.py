"""``vistag sync``: see :mod:`vistag.indexer.sync`."""

from __future__ import annotations

import argparse

from vistag.cli.commands.common import connect, embedding_cache, make_embedder, print_json
from vistag.cli.commands.index import reference_index_tagger
from vistag.images import ImageStore
from vistag.models.embedding import BatchEmbedder
from vistag.indexer.options import IndexOptions
from vistag.catalog.schema import CatalogSchema
from vistag.indexer.sync import sync_catalog


def cmd_sync(args: argparse.Namespace) -> int:
    """Sync ``--index`` with ``--catalog``; exit 1 when a row failed or the run stopped early."""
    client = connect(args)
    client.info()
    schema = CatalogSchema.load(args.schema)
    embedder = make_embedder(args)
    options = IndexOptions(index=args.index, batch_size=args.batch_size, chunk_size=args.chunk_size,
                           max_chunk_bytes=args.chunk_bytes, k=args.k, top_d=args.top_d, dead_letter=args.dead_letter,
                           progress=False, max_retries=args.max_retries, bulk_threads=args.bulk_threads,
                           knn_batch=args.knn_batch, vector_quantization=args.vector_quantization or "none")
    with ImageStore(args.images) as store:
        batch = BatchEmbedder(embedder, store, embedding_cache(embedder), workers=args.workers,
                              processes=args.decode_processes)
        try:
            summary = sync_catalog(
                client, args.catalog, schema, batch, options, dry_run=args.dry_run,
                make_tagger=lambda: reference_index_tagger(client, args.index, schema, embedder.dim, options))
        finally:
            batch.close()
    if args.json:
        print_json(summary.to_dict())
    else:
        verb = "would add" if summary.dry_run else "added"
        print(f"sync {summary.index}: read {summary.read}; {verb} {summary.added}, re-tagged {summary.retagged} "
              f"(new image), updated {summary.updated} (row changed), deleted {summary.deleted}, unchanged "
              f"{summary.unchanged}, failed {summary.failed}; {summary.embedded} images embedded in "
              f"{summary.seconds:.1f}s")
        for record in summary.dead_letters[:20]:
            print(f"  line {record.get('line')} ({record.get('stage')}): {record.get('reason')}")
        if summary.aborted:
            print(f"stopped early: {summary.aborted}\nrun the same command again to finish")
    return 0 if summary.ok else 1
