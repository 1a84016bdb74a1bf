"""``vistag train``, ``vistag eval`` and ``vistag tag``."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

from vistag.cli.commands.common import embedding_cache, image_only, load_tagging_model, make_embedder, print_json
from vistag.errors import ConfigError
from vistag.images import ImageStore
from vistag.catalog.schema import CatalogSchema

logger = logging.getLogger(__name__)


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _embedder(name: str, args: argparse.Namespace, input_size: int | None):
    from vistag.models import create_embedder

    return create_embedder(name, device=args.device, batch_size=args.batch_size, input_size=input_size, weights=args.weights,
                           compile=args.compile)


def _embed(args: argparse.Namespace, embedder, catalog: str, images: str | None, schema: CatalogSchema):
    from vistag.models.embedding import BatchEmbedder
    from vistag.models.dataset import embed_catalog

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


def title_column(args: argparse.Namespace, schema: CatalogSchema) -> str | None:
    """The schema's title column with ``--title-aware``, else ``None``."""
    if not getattr(args, "title_aware", False):
        return None
    if not schema.title:
        raise ConfigError("--title-aware needs a title column in the schema")
    return schema.title


def read_label_columns(given: list[str] | None, settings) -> list[str]:
    """The columns the text->image projection learns to read: ``given``, or the deepest level and colour attributes."""
    if given is not None:
        return list(given)
    readable = set(settings.tag_columns)  # a read label is of use only as an index tag
    deepest = [c for c in settings.levels[-1:] if c in readable]
    return deepest + [c for c in settings.attributes if c in readable and re.search(r"colou?r", c, re.I)]


def cmd_train(args: argparse.Namespace) -> int:
    """Train heads on a labelled catalog and write the model directory."""
    from vistag.models.training import TrainConfig
    from vistag.models.dataset import assign_splits
    from vistag.models.trainer import TrainSettings, train_model

    started = time.monotonic()
    schema = CatalogSchema.load(args.schema)
    settings = TrainSettings(
        levels=args.levels if args.levels is not None else list(schema.category),
        attributes=args.attributes if args.attributes is not None else list(schema.attributes),
        tag_columns=args.tag_columns if args.tag_columns is not None else list(schema.tags),
        min_count=args.min_count, min_confidence=args.min_confidence,
        train=TrainConfig(hidden=args.hidden, epochs=args.epochs, class_weighting=args.class_weighting, seed=args.seed),
        title_column=title_column(args, schema),
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
        from vistag.models.trainer import train_text_image

        if not schema.title:
            raise ConfigError("--text-image needs a title column in the schema")
        t0 = time.monotonic()
        projection = train_text_image(data, splits, schema.title, embedder.model_id, args.seed, _progress(args),
                                      label_columns=read_label_columns(args.read_labels, settings))
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
    from vistag.models.dataset import TEST, TRAIN, assign_splits
    from vistag.evaluation.evaluate import evaluate, robustness

    model = load_tagging_model(args.model)
    schema = CatalogSchema.load(args.schema)
    embedder = make_embedder(args, model)
    data, _ = _embed(args, embedder, args.catalog, args.images, schema)
    if model.title_column and not any(data.column(model.title_column)):
        raise ConfigError(f"this model is title-aware: no row of {args.catalog} has a {model.title_column!r} title")
    split = model.info.get("training", {}).get("split", {})
    split_col = args.split_col if args.split_col is not None else split.get("split_column")
    test_fraction = args.test_fraction if args.test_fraction is not None else (split.get("test_fraction") or 0.1)
    splits = assign_splits(data, split_col, test_fraction, split.get("val_fraction", 0.1), split.get("seed", 0))
    image_x = data.x
    if model.title_column:
        data = replace(data, x=model.with_titles(data.x, data.column(model.title_column)))
    test, train = data.subset(splits == TEST), data.subset(splits == TRAIN)
    if len(test) == 0:
        raise ConfigError("the catalog has no test rows under the model's split; pass --split-col or --test-fraction")
    knn_x = (image_x[splits == TEST], image_x[splits == TRAIN]) if model.title_column else None  # kNN: images only
    report, extras = evaluate(model, test, train, k=args.k, knn_x=knn_x)
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

        embed = embedder.embed_images
        if model.title_column:  # the same titles beside each re-encoded image
            titles = [test.fields[i].get(model.title_column) for i in pick]

            def embed(batch, _embed=embedder.embed_images):
                return model.with_titles(_embed(batch), titles)
        report["robustness"] = robustness(model, embed, images, alternate)
    if args.confusion_png and "confusion" in extras:
        confusion_png(extras["confusion"], extras["classes"], args.confusion_png,
                      title=f"{model.levels[-1].column}: {len(test)} test rows, top-1 "
                            f"{100 * report['levels'][model.levels[-1].column]['top1']:.1f}%")
        report["confusion_png"] = str(args.confusion_png)
    for column, png in args.attribute_confusion_png:
        if column not in extras.get("attribute_confusion", {}):
            raise ConfigError(f"--attribute-confusion-png: {column!r} is not an attribute of this model "
                              f"({', '.join(extras.get('attribute_confusion', {})) or 'none'})")
        cm, classes = extras["attribute_confusion"][column]
        confusion_png(cm, classes, png, title=f"{column}: {len(test)} test rows, top-1 "
                                              f"{100 * report['attributes'][column]['top1']:.1f}%")
        report.setdefault("attribute_confusion_png", {})[column] = str(png)
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

    model = image_only(load_tagging_model(args.model), "`vistag tag`")
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
