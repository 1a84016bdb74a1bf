"""``vistag index``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vistag.cli.commands.common import (connect, embedding_cache, is_model_dir, load_tagging_model, make_embedder,
                                       print_json, print_summary)
from vistag.errors import ConfigError
from vistag.models.embedding import BatchEmbedder
from vistag.indexer.options import parse_partition
from vistag.images import ImageStore
from vistag.indexer.pipeline import IndexOptions, IndexSummary, index_catalog
from vistag.catalog.schema import CatalogSchema


def cmd_index(args: argparse.Namespace) -> int:
    """Index a catalog; exit 1 when any row failed or was dead-lettered."""
    client = connect(args)
    client.info()
    summary = run_index(args, client, args.index)
    if args.json:
        print_json(summary.to_dict())
    else:
        print_summary(summary)
    return 0 if summary.ok else 1


def run_index(args: argparse.Namespace, client, index: str, template: str | None = None,
              resume: bool | None = None) -> IndexSummary:
    """Index ``args.catalog`` into ``index`` with the flags of ``vistag index``."""
    if not args.catalog:
        raise ConfigError("--catalog is required")
    schema = CatalogSchema.load(args.schema)
    try:
        parse_partition(getattr(args, "partition", None))
    except ValueError as exc:
        raise ConfigError(f"--partition: {exc}") from None
    model = load_tagging_model(args.model) if is_model_dir(args.model) else None
    tagger = args.tagger or ("heads" if model is not None else "knn")
    if tagger != "knn" and model is None:
        raise ConfigError(f"--tagger {tagger} needs --model MODEL_DIR (a directory written by `vistag train`)")
    if args.reference_index and (args.reference or tagger != "knn"):
        raise ConfigError("--reference-index replaces --reference and tags by kNN only (no --tagger heads/ensemble)")
    embedder = make_embedder(args, model)
    cache = embedding_cache(embedder)
    options = IndexOptions(
        index=index, template=template, batch_size=args.batch_size, chunk_size=args.chunk_size, max_chunk_bytes=args.chunk_bytes,
        k=args.k, top_d=args.top_d, resume=args.resume if resume is None else resume, dead_letter=Path(args.dead_letter),
        progress=not args.quiet and sys.stderr.isatty(), max_retries=args.max_retries, limit=args.limit,
        tagger=tagger, relations=Path(args.expand_relations) if args.expand_relations else None,
        expand_discount=args.expand_discount, knn_batch=args.knn_batch, bulk_threads=args.bulk_threads,
        vector_quantization=args.vector_quantization or "none", reference_index=args.reference_index,
        pipeline=getattr(args, "pipeline", None), partition=getattr(args, "partition", None),
    )
    engine_tagger = None
    if args.reference_index:
        engine_tagger = reference_index_tagger(client, args.reference_index, schema, embedder.dim, options)
    with ImageStore(args.images) as store:
        batch_embedder = BatchEmbedder(embedder, store, cache, workers=args.workers, processes=args.decode_processes)
        reference = None
        ref_store = None
        try:
            if args.reference:
                ref_store = ImageStore(args.reference_images or args.images)
                reference = (args.reference, schema, BatchEmbedder(embedder, ref_store, cache, workers=args.workers,
                                                                processes=args.decode_processes))
            summary = index_catalog(client, args.catalog, schema, batch_embedder, options, reference, model=model,
                                    tagger=engine_tagger)
        finally:
            batch_embedder.close()
            if ref_store:
                ref_store.close()
    return summary


def reference_index_tagger(client, index: str, schema: CatalogSchema, dim: int, options: IndexOptions):
    """The kNN tagger over a labelled reference index the engine searches by HNSW."""
    from vistag.search.queries import Searcher
    from vistag.search.reference_tagger import EngineKnnDocumentTagger

    if not client.index_exists(index):
        raise ConfigError(f"reference index {index!r} does not exist")
    tagger = EngineKnnDocumentTagger(Searcher(client, index, dim), schema, k=options.k, top_d=options.top_d)
    tagger.reference_size = client.count(index)
    return tagger


def cmd_reindex(args: argparse.Namespace) -> int:
    """Build a new versioned index and swap the alias to it (see :mod:`vistag.indexer.reindex`)."""
    from vistag.indexer import reindex as rx

    client = connect(args)
    client.info()
    source = "index" if args.from_index else "catalog"
    if source == "catalog" and not args.catalog:
        raise ConfigError("give --catalog FILE, or --from-index to rebuild from the current index")
    if source == "index" and not client.index_exists(args.alias):
        raise ConfigError(f"--from-index: {args.alias!r} does not exist")
    plan = rx.plan_reindex(client, args.alias, resume=args.resume, source=source, keep_old=args.keep_old)
    if args.dry_run:
        if args.json:
            print_json({"dry_run": True, **plan.to_dict()})
        else:
            print("dry run, nothing changed:\n" + "\n".join(f"  {n}. {step}" for n, step in enumerate(plan.describe(), 1)))
        return 0
    result: dict = {"plan": plan.to_dict()}
    if source == "catalog":
        summary = run_index(args, client, plan.new_index, template=args.alias, resume=plan.resume)
        result["index"] = summary.to_dict()
        if not summary.ok:
            print_summary(summary)
            print(f"the alias {args.alias!r} was not moved; fix the rows above and rerun with --resume", file=sys.stderr)
            return 1
        expected = summary.indexed + summary.skipped_existing
    else:
        expected = client.count(args.alias)
        copy = rx.copy_index(client, args.alias, plan.new_index, _spec_of(client, args.alias, args.vector_quantization),
                             _retagger(args))
        result["copy"] = copy.__dict__
    rx.check_complete(client, plan.new_index, expected)
    rx.swap_alias(client, plan)
    result["alias"] = {args.alias: plan.new_index}
    if args.json:
        print_json(result)
    else:
        print(f"{args.alias} -> {plan.new_index} ({expected} documents); "
              + ("old indices kept" if plan.keep_old else f"deleted {', '.join(plan.old_indices) or 'nothing'}"))
    return 0


def _spec_of(client, alias: str, quantization: str | None = None):
    """The document spec of an existing index (vector dimension and quantization from
    its mapping; ``quantization`` overrides the latter)."""
    from vistag.documents import DocumentSpec

    mapping = client.get_mapping(alias)
    meta = next(iter(mapping.values()))["mappings"].get("_meta", {})
    return DocumentSpec(name=alias, vector_dim=int(meta.get("vector_dim", 1840)),
                        vector_quantization=quantization or meta.get("vector_quantization", "none"))


def _retagger(args: argparse.Namespace):
    """With ``--model MODEL_DIR``, a function that re-tags copied documents from their stored vectors
    (and, for a title-aware model, their stored ``title``)."""
    if not is_model_dir(args.model):
        return None
    import numpy as np

    from vistag.analyzers.taggers import ModelDocumentTagger

    model = load_tagging_model(args.model)
    tagger = ModelDocumentTagger(model, None, top_d=args.top_d)

    def retag(docs: list[dict]) -> list[dict]:
        stored = {d.get("model", {}).get("version") for d in docs}
        if stored != {model.backbone.model_id}:
            raise ConfigError(f"the stored vectors come from {sorted(map(str, stored))}, the model needs "
                              f"{model.backbone.model_id}: reindex from the catalog instead")
        vectors = np.asarray([d["image_vector"] for d in docs], dtype=np.float32)
        leaf = [_leaf(d.get("category", {})) for d in docs]
        titles = [d.get("title") for d in docs] if tagger.title_column else None
        for doc, tagged in zip(docs, tagger.tag(vectors, [d["_id"] for d in docs], leaf, titles=titles)):
            weights = {t: round(float(s), 6) for t, s in tagged.tags}
            doc.update(tags=list(weights), tag_weights=weights, predicted=tagged.predicted)
            doc["model"] = {**doc.get("model", {}), "tagger": tagger.id}
        return docs

    return retag


def _leaf(category: dict) -> str | None:
    """The deepest ``lvl<N>`` value of a document's category."""
    levels = sorted((int(k[3:]), v) for k, v in category.items() if k.startswith("lvl") and k[3:].isdigit())
    return levels[-1][1] if levels else None
