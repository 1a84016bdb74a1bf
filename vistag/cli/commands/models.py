"""``vistag train``, ``vistag eval`` and ``vistag tag``: see :mod:`vistag.models.trainer`,
:func:`vistag.evaluation.evaluate.evaluate_model` and :func:`vistag.models.loading.tag_images`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from vistag.cli.options import add_catalog, add_runtime, loading_kwargs, progress
from vistag.cli.output import print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag train``, ``vistag eval`` and ``vistag tag``."""
    train = sub.add_parser(
        "train",
        help="train category, attribute and tag heads on a labelled catalog",
        description="Embed a labelled catalog (through the embedding cache), train a multi-task head (consistent "
        "category hierarchy, masked attribute heads, multi-label tags with per-tag thresholds) and "
        "write a model directory that `vistag index --model`, `eval` and `tag` read.",
    )
    add_catalog(train)
    train.add_argument("--out", required=True, help="model directory to write")
    split = train.add_mutually_exclusive_group()
    split.add_argument(
        "--split-col", default=None, help="column whose value 'test' marks test rows (and 'val' validation rows)"
    )
    split.add_argument(
        "--test-fraction",
        type=float,
        default=0.1,
        help="test share by id hash when no --split-col (default %(default)s)",
    )
    train.add_argument(
        "--val-fraction", type=float, default=0.1, help="validation share of the training rows (default %(default)s)"
    )
    train.add_argument(
        "--backbone",
        default=os.environ.get("VISTAG_MODEL", "efficientnet-lite0"),
        help="backbone name (env VISTAG_MODEL, default %(default)s)",
    )
    train.add_argument("--input-size", type=int, default=None, help="input resolution (default: the backbone's)")
    train.add_argument(
        "--levels", nargs="*", default=None, help="hierarchy columns root first (default: the schema's category)"
    )
    train.add_argument(
        "--attributes", nargs="*", default=None, help="attribute columns (default: the schema's attributes)"
    )
    train.add_argument("--tag-columns", nargs="*", default=None, help="tag columns (default: the schema's tags)")
    train.add_argument(
        "--min-count",
        type=int,
        default=10,
        help="rarer classes fold into 'other', rarer tags are dropped (default %(default)s)",
    )
    train.add_argument(
        "--class-weighting",
        choices=("none", "sqrt", "balanced"),
        default="sqrt",
        help="loss weights against class imbalance (default %(default)s)",
    )
    train.add_argument("--epochs", type=int, default=40, help="maximum epochs (default %(default)s)")
    train.add_argument(
        "--hidden", type=int, default=1024, help="hidden layer width, 0 for linear heads (default %(default)s)"
    )
    train.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        help="best-path probability below which predictions are not written (default %(default)s)",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    train.add_argument(
        "--text-image",
        action="store_true",
        help="also train the text->image projection on the rows' titles (saved in MODEL/text-image; "
        "hybrid search then adds a text->image kNN list)",
    )
    train.add_argument(
        "--title-aware",
        action="store_true",
        help="opt-in: the heads also read the product title (its sentence vector joined to the image "
        "embedding); such a model tags in `vistag index` only, and `vistag check-tags` stays "
        "image-only",
    )
    tune = train.add_argument_group(
        "fine-tuning",
        "train the network's last stages with the heads (EfficientNet-Lite; on a CPU the frozen stages run once "
        "and their feature maps are cached, about 14 KB per image and view)",
    )
    tune.add_argument(
        "--fine-tune",
        action="store_true",
        help="fine-tune the network with its heads; the model directory then holds its own network and model id",
    )
    tune.add_argument(
        "--head-vectors",
        action="store_true",
        help="embed (index, search) with the network followed by the trained head's hidden layer; "
        "the heads are trained afresh on those vectors (EfficientNet-Lite; with or without --fine-tune)",
    )
    tune.add_argument(
        "--fine-tune-stages",
        type=int,
        default=2,
        help="last stages trained (default %(default)s; above 2 the maps are cached before the middle stage, "
        "which trains too)",
    )
    tune.add_argument(
        "--attention",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Chen et al.'s spatial attention after the last block (default: on)",
    )
    tune.add_argument("--fine-tune-epochs", type=int, default=8, help="fine-tuning epochs (default %(default)s)")
    tune.add_argument(
        "--fine-tune-head-epochs",
        type=int,
        default=4,
        help="epochs of the fresh head, on the frozen features, that fine-tuning starts from "
        "(0: the fully trained head; default %(default)s)",
    )
    tune.add_argument(
        "--refit-head",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the usual head afresh on the fine-tuned vectors (default: on)",
    )
    tune.add_argument(
        "--views",
        type=int,
        default=2,
        help="cached views per image: the photo, then mirrored crops (default %(default)s)",
    )
    tune.add_argument(
        "--fine-tune-lr", type=float, default=1e-3, help="peak learning rate of the heads (default %(default)s)"
    )
    tune.add_argument(
        "--backbone-lr",
        type=float,
        default=1e-4,
        help="peak learning rate of the network's stages (default %(default)s)",
    )
    train.add_argument(
        "--read-labels",
        nargs="*",
        default=None,
        metavar="COLUMN",
        help="with --text-image: label columns the query text learns to read as query tags (default: "
        "the deepest category level and any colour attribute; none: nothing read)",
    )
    train.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_runtime(train.add_argument_group("runtime"), loading=True)
    train.set_defaults(handler=run_train)

    ev = sub.add_parser(
        "eval",
        help="measure a model and the kNN tagger on the test rows",
        description="Top-1/top-5/MACC per level and attribute, P/R/F1@K of heads, kNN and their ensemble, Hamming "
        "score and exact match, coverage vs error, type-validator rates, confusion matrix PNG.",
    )
    ev.add_argument("--model", required=True, help="model directory from `vistag train`")
    add_catalog(ev)
    ev.add_argument("--split-col", default=None, help="override the model's split column")
    ev.add_argument("--test-fraction", type=float, default=None, help="override the model's test fraction")
    ev.add_argument("--k", type=int, default=10, help="neighbours of the kNN tagger (default %(default)s)")
    ev.add_argument("--json", default=None, help="write the report as JSON here")
    ev.add_argument("--report", default=None, help="write the report as Markdown here")
    ev.add_argument("--confusion-png", default=None, help="write the finest level's confusion matrix here")
    ev.add_argument(
        "--attribute-confusion-png",
        nargs=2,
        action="append",
        default=[],
        metavar=("COLUMN", "PNG"),
        help="write an attribute's confusion matrix (e.g. baseColour colours.png); repeatable",
    )
    ev.add_argument(
        "--robustness",
        type=int,
        default=0,
        metavar="N",
        help="also re-encode and re-resize N test images and report prediction agreement",
    )
    add_runtime(ev.add_argument_group("runtime"), loading=True)
    ev.set_defaults(handler=run_eval)

    tag = sub.add_parser(
        "tag",
        help="tag image files with a trained model (JSON)",
        description="Print categories, attributes and tags with scores for each image as JSON.",
    )
    tag.add_argument("images", nargs="+", metavar="IMAGE", help="image files or http(s) URLs")
    tag.add_argument("--model", required=True, help="model directory from `vistag train`")
    tag.add_argument("--top-k", type=int, default=3, help="ranked classes shown per level (default %(default)s)")
    add_runtime(tag.add_argument_group("runtime"))
    tag.set_defaults(handler=run_tag)


def run_train(args: argparse.Namespace) -> int:
    """Train heads on a labelled catalog and write the model directory."""
    from vistag.catalog.schema import as_schema
    from vistag.config import embedding_cache_dir
    from vistag.models.finetune import FineTuneConfig
    from vistag.models.trainer import SplitSettings, TrainSettings, train
    from vistag.models.training import TrainConfig

    schema = as_schema(args.schema)
    settings = TrainSettings.for_schema(
        schema,
        levels=args.levels,
        attributes=args.attributes,
        tag_columns=args.tag_columns,
        title_aware=args.title_aware,
        min_count=args.min_count,
        min_confidence=args.min_confidence,
        train=TrainConfig(hidden=args.hidden, epochs=args.epochs, class_weighting=args.class_weighting, seed=args.seed),
    )
    result = train(
        args.catalog,
        args.out,
        images=args.images,
        schema=schema,
        backbone=args.backbone,
        settings=settings,
        split=SplitSettings(args.split_col, args.test_fraction, args.val_fraction, args.seed),
        text_image=args.text_image,
        read_labels=args.read_labels,
        device=args.device,
        batch_size=args.batch_size,
        input_size=args.input_size,
        weights=args.weights,
        compile=args.compile,
        cache_dir=embedding_cache_dir(),
        limit=args.limit,
        progress=progress(args),
        fine_tune=FineTuneConfig(
            stages=args.fine_tune_stages,
            attention=args.attention,
            views=args.views,
            epochs=args.fine_tune_epochs,
            patience=args.fine_tune_epochs,
            lr=args.fine_tune_lr,
            backbone_lr=args.backbone_lr,
            head_epochs=args.fine_tune_head_epochs,
            refit_head=args.refit_head,
            seed=args.seed,
        )
        if args.fine_tune
        else None,
        head_vectors=args.head_vectors,
        **_loading(args),
    )
    if args.json:
        print_json(result.summary())
    else:
        rows = result.model.info["training"]["rows"]
        print(
            f"model written to {result.path} ({result.model.tagger_id}): {rows['train']} train / {rows['val']} val "
            f"rows, embedding {result.embedding_seconds:.0f}s ({result.images_embedded} images embedded, "
            f"{result.from_cache} from cache), training {result.model.info['training']['seconds']:.0f}s, "
            f"total {result.total_seconds:.0f}s"
        )
    return 0


def _loading(args: argparse.Namespace) -> dict[str, Any]:
    kwargs = loading_kwargs(args)
    return {
        "workers": kwargs["workers"],
        "decode_processes": kwargs["decode_processes"],
        "max_pixels": kwargs["max_pixels"],
    }


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate a model on the test split of a catalog."""
    from vistag.config import embedding_cache_dir
    from vistag.evaluation.evaluate import evaluate_model

    result = evaluate_model(
        args.model,
        args.catalog,
        images=args.images,
        schema=args.schema,
        k=args.k,
        split_column=args.split_col,
        test_fraction=args.test_fraction,
        robustness_images=args.robustness,
        confusion_png=args.confusion_png,
        attribute_confusion_png=dict(args.attribute_confusion_png),
        device=args.device,
        batch_size=args.batch_size,
        cache_dir=embedding_cache_dir(),
        limit=args.limit,
        progress=progress(args),
        **_loading(args),
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result.report, indent=1, default=str))
    if args.report:
        Path(args.report).write_text(result.markdown + "\n")
    if not args.json or args.verbose:
        print(result.markdown)
    return 0


def run_tag(args: argparse.Namespace) -> int:
    """Tag image files with a trained model; prints JSON; exit 1 when an image could not be read."""
    from vistag.models.loading import tag_images

    records = tag_images(args.model, args.images, top_k=args.top_k, device=args.device, batch_size=args.batch_size)
    print_json([r for r in records if "error" not in r] + [r for r in records if "error" in r])
    return 1 if any("error" in r for r in records) else 0
