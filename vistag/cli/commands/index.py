"""``vistag index``, ``vistag sync`` and ``vistag reindex``: see :mod:`vistag.indexer` (and :mod:`vistag.ray`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vistag.cli.options import (
    add_connection,
    add_indexing,
    add_model,
    connect,
    index_kwargs,
    resolved_settings,
)
from vistag.cli.output import print_dead_letters, print_json, print_summary


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag index``, ``vistag sync`` and ``vistag reindex``."""
    index = sub.add_parser(
        "index",
        help="embed, tag and bulk-index a catalog",
        description="Read a catalog (CSV/JSONL) and its images, embed them, tag them by kNN over a "
        "labelled reference set and stream them into the index.",
    )
    add_connection(index)
    add_model(index)
    index.add_argument("--catalog", required=True, help="catalog file (.csv, .tsv, .jsonl)")
    index.add_argument("--index", default="products", help="index name (default %(default)s)")
    index.add_argument("--resume", action="store_true", help="skip rows whose id is already in the index")
    index.add_argument(
        "--partition",
        default=None,
        metavar="I/N",
        help="index only the I-th of N disjoint slices of the catalog (a stable hash of the id), so N "
        "jobs or machines can share one catalog into one index; the kNN reference set is the "
        "slice itself unless --reference or --reference-index names a shared one",
    )
    add_indexing(index)
    ray = index.add_argument_group("Ray runner (the ray extra)")
    ray.add_argument(
        "--runner",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: a Ray Data pipeline on a Ray cluster (decode tasks, model "
        "actors with a GPU each when there are GPUs, tagger actors, bulk write tasks)",
    )
    ray.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="the Ray cluster (auto, ray://head:10001, HOST:6379; env RAY_ADDRESS); default: a local Ray for the run",
    )
    ray.add_argument("--ray-embed-actors", type=int, default=None, help="model actors (default: one per GPU, else 1)")
    ray.add_argument("--ray-tag-actors", type=int, default=1, help="tagger actors (default %(default)s)")
    ray.add_argument(
        "--ray-object-store-memory",
        type=int,
        default=None,
        metavar="BYTES",
        help="object store of a local Ray, and this run's budget of data between stages (the backpressure threshold)",
    )
    index.set_defaults(handler=run_index)

    sync = sub.add_parser(
        "sync",
        help="make an index equal to today's catalog, doing only what changed",
        description="Index new rows, re-embed and re-tag rows whose image changed, rewrite rows that "
        "changed otherwise (no embedding), delete documents that left the catalog, leave "
        "unchanged rows alone. Idempotent; run it again after an interruption.",
    )
    add_connection(sync)
    add_model(sync)
    sync.add_argument("--catalog", required=True, help="today's catalog file (.csv, .tsv, .jsonl)")
    sync.add_argument("--index", default="products", help="index or alias to sync (default %(default)s)")
    sync.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    add_indexing(sync)
    sync.set_defaults(handler=run_sync)

    reindex = sub.add_parser(
        "reindex",
        help="build a new versioned index and swap the alias to it with no downtime",
        description="Build <alias>-<timestamp> from a catalog (or from the current index with --from-index, "
        "re-tagging stored vectors when --model is a trained model), check it is complete, then point "
        "the alias at it in one atomic _aliases call and delete the old index (unless --keep-old).",
    )
    add_connection(reindex)
    add_model(reindex)
    reindex.add_argument("--alias", default="products", help="the alias readers use (default %(default)s)")
    reindex.add_argument("--catalog", default=None, help="catalog file to build from")
    reindex.add_argument("--from-index", action="store_true", help="build from the documents the alias serves now")
    reindex.add_argument("--keep-old", action="store_true", help="keep the old index after the swap")
    reindex.add_argument("--dry-run", action="store_true", help="print what would happen; change nothing")
    reindex.add_argument("--resume", action="store_true", help="continue the newest unfinished <alias>-* index")
    add_indexing(reindex)
    reindex.set_defaults(handler=run_reindex)


def run_index(args: argparse.Namespace) -> int:
    """Index a catalog; exit 1 when any row failed or was dead-lettered."""
    from vistag.indexer.pipeline import index_catalog

    if args.runner == "ray":
        summary = _run_index_on_ray(args)
        if args.json:
            print_json(summary.to_dict())
        else:
            print_summary(summary)
        return 0 if summary.ok else 1
    summary = index_catalog(
        connect(args),
        args.catalog,
        args.images,
        args.index,
        resume=args.resume,
        partition=args.partition,
        vector_quantization=args.vector_quantization or "none",
        **index_kwargs(args),
    )
    if args.json:
        print_json(summary.to_dict())
    else:
        print_summary(summary)
    return 0 if summary.ok else 1


def _run_index_on_ray(args: argparse.Namespace) -> Any:
    """``vistag index --runner ray``: :func:`vistag.ray.index_catalog` with the same flags."""
    import os

    from vistag.errors import ConfigError

    try:
        from vistag.ray.runner import RayOptions, index_catalog
    except ImportError as exc:  # the ray extra is not installed
        raise ConfigError(f"--runner ray needs Ray: pip install 'vistag[ray]' ({exc})") from None
    if args.partition:
        raise ConfigError("--partition is for the local runner; the Ray runner spreads the catalog over the cluster")
    if args.reference_index or (args.tagger not in (None, "knn")):
        raise ConfigError("the Ray runner tags by kNN over a reference catalog (no --reference-index, --tagger heads)")
    kwargs = index_kwargs(args)
    for name in ("workers", "decode_processes", "weights", "compile", "tagger", "reference_index"):
        kwargs.pop(name, None)
    options = RayOptions(
        address=args.ray_address or os.environ.get("RAY_ADDRESS") or None,
        embed_actors=args.ray_embed_actors,
        tag_actors=args.ray_tag_actors,
        object_store_memory=args.ray_object_store_memory,
    )
    return index_catalog(
        resolved_settings(args),
        args.catalog,
        args.images,
        args.index,
        resume=args.resume,
        vector_quantization=args.vector_quantization or "none",
        ray_options=options,
        **kwargs,
    )


def run_sync(args: argparse.Namespace) -> int:
    """Sync ``--index`` with ``--catalog``; exit 1 when a row failed or the run stopped early."""
    from vistag.errors import ConfigError
    from vistag.indexer.sync import sync

    if args.limit is not None:
        raise ConfigError("sync reads the whole catalog: with --limit it would delete every document past the limit")
    if args.reference or args.reference_index or args.tagger or args.expand_relations:
        raise ConfigError(
            "sync tags new rows by kNN over the index itself: --reference, --reference-index, --tagger "
            "and --expand-relations do not apply"
        )
    kwargs = index_kwargs(args)
    for unused in (
        "tagger",
        "reference",
        "reference_images",
        "reference_index",
        "relations",
        "expand_discount",
        "progress",
        "input_size",
        "weights",
        "compile",
        "limit",
    ):
        kwargs.pop(unused, None)
    summary = sync(
        connect(args),
        args.catalog,
        args.images,
        args.index,
        dry_run=args.dry_run,
        vector_quantization=args.vector_quantization or "none",
        **kwargs,
    )
    if args.json:
        print_json(summary.to_dict())
    else:
        verb = "would add" if summary.dry_run else "added"
        print(
            f"sync {summary.index}: read {summary.read}; {verb} {summary.added}, re-tagged {summary.retagged} "
            f"(new image), updated {summary.updated} (row changed), deleted {summary.deleted}, unchanged "
            f"{summary.unchanged}, failed {summary.failed}; {summary.embedded} images embedded in "
            f"{summary.seconds:.1f}s"
        )
        print_dead_letters(summary.dead_letters)
        if summary.aborted:
            print(f"stopped early: {summary.aborted}\nrun the same command again to finish")
    return 0 if summary.ok else 1


def run_reindex(args: argparse.Namespace) -> int:
    """Build a new versioned index and swap the alias to it (see :mod:`vistag.indexer.reindex`)."""
    from vistag.indexer.reindex import reindex

    kwargs = index_kwargs(args)
    if args.from_index:  # copying: no catalog is read and no image embedded
        kwargs = {key: kwargs[key] for key in ("model", "top_d", "retry")}
    result = reindex(
        connect(args),
        args.alias,
        args.catalog,
        args.images,
        from_index=args.from_index,
        keep_old=args.keep_old,
        dry_run=args.dry_run,
        resume=args.resume,
        vector_quantization=args.vector_quantization,
        **kwargs,
    )
    if args.json:
        print_json({"dry_run": True, **result.plan.to_dict()} if args.dry_run else result.to_dict())
    elif args.dry_run:
        print(
            "dry run, nothing changed:\n"
            + "\n".join(f"  {n}. {step}" for n, step in enumerate(result.plan.describe(), 1))
        )
    elif result.done:
        plan = result.plan
        print(
            f"{plan.alias} -> {plan.new_index} ({result.documents} documents); "
            + ("old indices kept" if plan.keep_old else f"deleted {', '.join(plan.old_indices) or 'nothing'}")
        )
    if not result.done and not args.dry_run:
        if result.index is not None and not args.json:
            print_summary(result.index)
        print(f"the alias {args.alias!r} was not moved; fix the rows above and rerun with --resume", file=sys.stderr)
        return 1
    return 0
