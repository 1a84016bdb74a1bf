"""``vistag train``, ``vistag eval`` and ``vistag tag``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from vistag.cli.commands.common import embedding_cache, load_tagging_model, make_embedder, print_json
from vistag.errors import ConfigError
from vistag.images import ImageStore
from vistag.indexer.schema import CatalogSchema

logger = logging.getLogger(__name__)


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _embedder(name: str, args: argparse.Namespace, input_size: int | None):
    from vistag.models import create_embedder

    return create_embedder(name, device=args.device, batch_size=args.batch_size, input_size=input_size, weights=args.weights,
                           compile=args.compile)


def _embed(args: argparse.Namespace, embedder, catalog: str, images: str | None, schema: CatalogSchema):
    from vistag.indexer.embedding import BatchEmbedder
    from vistag.workflows.dataset import embed_catalog

    with ImageStore(images) as store:
        batch = BatchEmbedder(embedder, store, embedding_cache(embedder), workers=args.workers,
                              processes=args.decode_processes)
        try:
            data = embed_catalog(catalog, schema, batch, limit=args.limit, progress=_progress(args))
        finally:
            batch.close()
    logger.info("embedded %d rows (%d computed, %d from cache, %d skipped)", len(data), batch.computed,
                batch.cache_hits, len(data.skipped))
    return data, batch


def cmd_train(args: argparse.Namespace) -> int:
    """Train heads on a labelled catalog and write the model directory."""
    from vistag.models.training import TrainConfig
    from vistag.workflows.dataset import assign_splits
    from vistag.workflows.train import TrainSettings, train_model

    started = time.monotonic()
    schema = CatalogSchema.load(args.schema)
    settings = TrainSettings(
        levels=args.levels if args.levels is not None else list(schema.category),
        attributes=args.attributes if args.attributes is not None else list(schema.attributes),
        tag_columns=args.tag_columns if args.tag_columns is not None else list(schema.tags),
        min_count=args.min_count, min_confidence=args.min_confidence,
        train=TrainConfig(hidden=args.hidden, epochs=args.epochs, class_weighting=args.class_weighting, seed=args.seed),
    )
    if not (settings.levels or settings.attributes or settings.tag_columns):
        raise ConfigError("nothing to learn: the schema names no category, attribute or tag columns")
    embedder = _embedder(args.backbone, args, args.input_size)
    data, batch = _embed(args, embedder, args.catalog, args.images, schema)
    embed_s = time.monotonic() - started
    split_info = {"split_column": args.split_col, "test_fraction": None if args.split_col else args.test_fraction,
                  "val_fraction": args.val_fraction, "seed": args.seed}
    splits = assign_splits(data, args.split_col, args.test_fraction, args.val_fraction, args.seed)
    out = Path(args.out)
    model = train_model(data, splits, embedder.config, settings, name=out.name, split_info=split_info,
                        progress=_progress(args))
    model.info["training"]["embedding"] = {"seconds": round(embed_s, 2), "computed": batch.computed,
                                           "from_cache": batch.cache_hits, "rows": len(data)}
    model.info["training"]["total_seconds"] = round(time.monotonic() - started, 2)
    if args.text_image:
        from vistag.workflows.train import train_text_image

        if not schema.title:
            raise ConfigError("--text-image needs a title column in the schema")
        t0 = time.monotonic()
        projection = train_text_image(data, splits, schema.title, embedder.model_id, args.seed, _progress(args))
        model.info["training"]["text_image"] = {"seconds": round(time.monotonic() - t0, 2),
                                                "history": projection.config.history[-1:]}
    model.save(out)
    if args.text_image:
        projection.save(out / "text-image")
    t = model.info["training"]
    summary = {"model": str(out), "tagger": model.tagger_id, "backbone": embedder.model_id, "rows": t["rows"],
               "embedding_seconds": round(embed_s, 1), "images_embedded": batch.computed,
               "train_seconds": t["seconds"], "total_seconds": t["total_seconds"],
               "best_epoch": t["history"]["best_epoch"], "validation": model.info["validation"]}
    if args.json:
        print_json(summary)
    else:
        print(f"model written to {out} ({model.tagger_id}): {t['rows']['train']} train / {t['rows']['val']} val rows, "
              f"embedding {embed_s:.0f}s ({batch.computed} images embedded, {batch.cache_hits} from cache), "
              f"training {t['seconds']:.0f}s, total {t['total_seconds']:.0f}s")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a model on the test split of a catalog."""
    import numpy as np

    from vistag.evaluation.plots import confusion_png
    from vistag.evaluation.report import markdown
    from vistag.workflows.dataset import TEST, TRAIN, assign_splits
    from vistag.workflows.evaluate import evaluate, robustness

    model = load_tagging_model(args.model)
    schema = CatalogSchema.load(args.schema)
    embedder = make_embedder(args, model)
    data, _ = _embed(args, embedder, args.catalog, args.images, schema)
    split = model.info.get("training", {}).get("split", {})
    split_col = args.split_col if args.split_col is not None else split.get("split_column")
    test_fraction = args.test_fraction if args.test_fraction is not None else (split.get("test_fraction") or 0.1)
    splits = assign_splits(data, split_col, test_fraction, split.get("val_fraction", 0.1), split.get("seed", 0))
    test, train = data.subset(splits == TEST), data.subset(splits == TRAIN)
    if len(test) == 0:
        raise ConfigError("the catalog has no test rows under the model's split; pass --split-col or --test-fraction")
    report, extras = evaluate(model, test, train, k=args.k)
    report["split"] = {"split_column": split_col, "test_fraction": None if split_col else test_fraction,
                       "test_rows": len(test), "reference_rows": len(train)}
    if args.robustness:
        rng = np.random.default_rng(0)
        pick = rng.choice(len(test), size=min(args.robustness, len(test)), replace=False)
        with ImageStore(args.images) as store:
            images = [store.load(schema.image_ref(test.fields[i])).image for i in pick]
        size = embedder.config.input_size

        def alternate(image):  # another library path: plain stretch + bilinear, no padding to a square
            return image.convert("RGB").resize((size, size), resample=2)

        report["robustness"] = robustness(model, embedder.embed_images, images, alternate)
    if args.confusion_png and "confusion" in extras:
        confusion_png(extras["confusion"], extras["classes"], args.confusion_png,
                      title=f"{model.levels[-1].column}: {len(test)} test rows, top-1 "
                            f"{100 * report['levels'][model.levels[-1].column]['top1']:.1f}%")
        report["confusion_png"] = str(args.confusion_png)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    text = markdown(report)
    if args.report:
        Path(args.report).write_text(text + "\n")
    if not args.json or args.verbose:
        print(text)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    """Tag image files with a trained model; prints JSON."""
    from vistag.images import ImageLoadError

    model = load_tagging_model(args.model)
    embedder = make_embedder(args, model)
    store = ImageStore(None)
    images, names, errors = [], [], []
    for ref in args.images:
        try:
            images.append(store.load(ref if "://" in ref else str(Path(ref).resolve())).image)
            names.append(ref)
        except ImageLoadError as exc:
            errors.append({"image": ref, "error": str(exc)})
    out = []
    if images:
        records = model.to_records(embedder.embed_images(images), top_k=args.top_k)
        out = [{"image": n, "tagger": model.tagger_id, **r} for n, r in zip(names, records)]
    print_json(out + errors)
    return 1 if errors else 0
