"""``vistag eval``: measure a trained model and the IDW kNN tagger on the test rows.

The JSON it writes (keys documented in the README):

* ``levels.<column>`` -- hierarchy levels with consistent decoding: ``top1``,
  ``top5``, ``macc`` (Chen et al.), ``per_class`` precision/recall (Li et al.) and
  ``top1_independent`` (argmax of the level's own softmax, for comparison);
* ``attributes.<column>`` -- the same for each attribute head;
* ``tags.heads`` / ``tags.knn`` / ``tags.ensemble`` -- ``at_k`` P/R/F1 at K=1,3,5,7
  of ranked tags (kNN tagging preprint), and ``sets``: Hamming score, exact match and micro
  P/R/F1 of thresholded tag sets (Sahay et al.; per-tag and global thresholds for the
  heads, kNN score >= 0.5 for kNN);
* ``confidence`` -- coverage vs error of the leaf prediction at several
  best-path confidence thresholds (Gutierrez et al. Table 4);
* ``type_validator`` -- how often a wrong claimed type is flagged and a true
  claim is wrongly flagged, at several radius scales;
* ``robustness`` -- agreement of predictions when test images are re-encoded
  and resized another way (Gutierrez et al. Table 2), when asked for.

References: the papers are listed in :mod:`vistag.evaluation.metrics`.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet
from vistag.catalog.vocabulary import tags_from_labels
from vistag.errors import ConfigError
from vistag.evaluation.metrics import (
    classification_report,
    coverage_vs_error,
    ranked_tag_prf,
    set_metrics,
)
from vistag.models.dataset import EmbeddedCatalog
from vistag.models.labels import OTHER, Vocabulary, clean_label
from vistag.models.loading import ModelSpec
from vistag.models.tagging_model import TaggingModel

logger = logging.getLogger(__name__)

KS = (1, 3, 5, 7)
CONFIDENCE_THRESHOLDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
RADIUS_SCALES = (0.8, 1.0, 1.2, 1.5)
UNSEEN = "(rare or unseen in training)"


def encode_truth(vocab: Vocabulary, values: Sequence[object]) -> tuple[np.ndarray, list[str]]:
    """True class indexes for evaluation.

    A value the model cannot predict (folded into ``other`` or never seen) gets an
    extra class ``UNSEEN`` so it always counts as an error -- never as a correct
    ``other``. Missing values are ``-1`` (not evaluated).
    """
    index = {c: i for i, c in enumerate(vocab.classes) if c != OTHER}
    extra = len(vocab.classes)
    out = []
    for value in values:
        label = clean_label(value)
        out.append(-1 if label is None else index.get(label, extra))
    return np.asarray(out, dtype=np.int64), [*list(vocab.classes), UNSEEN]


def _task_report(ranked: np.ndarray, vocab: Vocabulary, values: Sequence[object]) -> tuple[dict, np.ndarray]:
    y, classes = encode_truth(vocab, values)
    report = classification_report(ranked, y, classes)
    cm = report.pop("confusion")
    if not (y == len(vocab.classes)).any():  # no unseen labels: drop the extra class
        cm = cm[:-1, :-1]
        report["per_class"] = report["per_class"][:-1]
    report["classes"] = len(vocab.classes)  # the model's classes, without the UNSEEN pseudo-class
    report["unseen_rows"] = int((y == len(vocab.classes)).sum())
    return report, cm


def _knn_scores(model: TaggingModel, train: EmbeddedCatalog, test: EmbeddedCatalog, k: int) -> np.ndarray:
    """IDW kNN presence scores aligned to the model's tag vocabulary."""
    tags = [tags_from_labels(f, model.tag_columns) for f in train.fields]
    keep = [i for i, t in enumerate(tags) if t]
    reference = ReferenceSet([train.ids[i] for i in keep], train.x[keep], [tags[i] for i in keep])
    return KnnTagger(reference, k=k).score_over(model.tags.classes, test.x, exclude_ids=test.ids)


def _tag_block(scores: np.ndarray, classes: list[str], truth: list[set[str]], sets: dict[str, np.ndarray]) -> dict:
    order = np.argsort(-scores, axis=1)[:, : max(KS)]
    ranked = [[classes[j] for j in row] for row in order]
    out = {"at_k": ranked_tag_prf(ranked, truth, KS), "sets": {}}
    for name, thresholds in sets.items():
        predicted = [{classes[j] for j in np.nonzero(row >= thresholds)[0]} for row in scores]
        out["sets"][name] = set_metrics(predicted, truth)
    return out


def evaluate(
    model: TaggingModel,
    test: EmbeddedCatalog,
    train: EmbeddedCatalog | None = None,
    k: int = 10,
    knn_x: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict, dict]:
    """Measure ``model`` (and the kNN tagger over ``train``) on ``test``.

    ``knn_x``: the image embeddings of ``(test, train)`` when the model's inputs are
    more than the image (a title-aware model): the kNN tagger compares images only.

    Returns:
        ``(report, extras)``: the JSON report (see the module docstring) and
        ``extras`` with the leaf confusion matrix and its class names, and
        ``attribute_confusion``: attribute column -> ``(matrix, class names)``.
    """
    pred = model.predict(test.x, top_k=5)
    report: dict = {
        "model": model.tagger_id,
        "backbone": model.backbone.model_id,
        "test_rows": len(test),
        "levels": {},
        "attributes": {},
        "tags": {},
    }
    extras: dict = {}
    for level, vocab in enumerate(model.levels):
        values = test.column(vocab.column)
        block, cm = _task_report(pred.level_ranked[level], vocab, values)
        independent = np.argsort(-pred.levels[level], axis=1)[:, :1]
        y, _ = encode_truth(vocab, values)
        known = y >= 0
        block["top1_independent"] = round(float((independent[known, 0] == y[known]).mean()), 4) if known.any() else None
        report["levels"][vocab.column] = block
        if level == len(model.levels) - 1:
            extras["confusion"], extras["classes"] = (
                cm,
                list(vocab.classes) + ([UNSEEN] if len(cm) > len(vocab.classes) else []),
            )
    for vocab in model.attributes:
        ranked = np.argsort(-pred.attributes[vocab.column], axis=1)[:, :5]
        block, cm = _task_report(ranked, vocab, test.column(vocab.column))
        report["attributes"][vocab.column] = block
        extras.setdefault("attribute_confusion", {})[vocab.column] = (
            cm,
            list(vocab.classes) + ([UNSEEN] if len(cm) > len(vocab.classes) else []),
        )

    truth = [set(tags_from_labels(f, model.tag_columns)) for f in test.fields]
    classes = model.tags.classes
    if len(classes):
        heads = pred.tag_probs
        report["tags"]["heads"] = _tag_block(
            heads,
            classes,
            truth,
            {
                "per_tag_thresholds": model.tag_thresholds,
                "global_threshold": np.full(len(classes), model.global_threshold, np.float32),
            },
        )
        report["tags"]["heads"]["global_threshold"] = model.global_threshold
        if train is not None and len(train):
            knn = (
                _knn_scores(model, replace(train, x=knn_x[1]), replace(test, x=knn_x[0]), k)
                if knn_x is not None
                else _knn_scores(model, train, test, k)
            )
            report["tags"]["knn"] = _tag_block(
                knn, classes, truth, {"score>=0.5": np.full(len(classes), 0.5, np.float32)}
            )
            report["tags"]["knn"]["k"] = k
            blend = (heads + knn) / 2
            report["tags"]["ensemble"] = _tag_block(
                blend,
                classes,
                truth,
                {"per_tag_thresholds": model.tag_thresholds, "score>=0.5": np.full(len(classes), 0.5, np.float32)},
            )

    if model.levels:
        leaf = model.levels[-1]
        y, _ = encode_truth(leaf, test.column(leaf.column))
        known = y >= 0
        correct = pred.path_ranked[:, 0, -1] == y
        report["confidence"] = {
            "level": leaf.column,
            "table": coverage_vs_error(pred.path_confidence[known], correct[known], CONFIDENCE_THRESHOLDS),
        }
        report["type_validator"] = _validator_report(model, test, y)
    return report, extras


def _validator_report(model: TaggingModel, test: EmbeddedCatalog, y: np.ndarray) -> dict:
    """Flag rates for true claims and for deliberately wrong claims of another type."""
    if model.validator is None:
        return {}
    rng = np.random.default_rng(0)
    rows = np.nonzero((y >= 0) & (y < len(model.levels[-1].classes)))[0]
    if len(rows) == 0:
        return {}
    x = test.x[rows]
    true = y[rows]
    n_classes = len(model.levels[-1].classes)
    # A wrong claim: a random other leaf class that has a finite radius.
    usable = np.nonzero(np.isfinite(model.validator.radii))[0]
    wrong = usable[rng.integers(0, len(usable), size=len(rows))]
    clash = wrong == true
    wrong[clash] = usable[(np.searchsorted(usable, wrong[clash]) + 1) % len(usable)]
    table = []
    for scale in RADIUS_SCALES:
        table.append(
            {
                "radius_scale": scale,
                "true_claims_flagged": round(float(model.validator.is_outlier(x, true, scale).mean()), 4),
                "wrong_claims_flagged": round(float(model.validator.is_outlier(x, wrong, scale).mean()), 4),
            }
        )
    return {
        "level": model.levels[-1].column,
        "quantile": model.validator.quantile,
        "classes": n_classes,
        "rows": len(rows),
        "table": table,
    }


def robustness(
    model: TaggingModel,
    embed: Callable[[list[Image.Image]], np.ndarray],
    images: list[Image.Image],
    alternate_resize: Callable[[Image.Image], Image.Image],
) -> dict:
    """Agreement of the leaf prediction (and the top tag) under re-encoding and another resize path.

    Args:
        model: the trained model.
        embed: images -> embeddings with the model's own preprocessing.
        images: decoded test images.
        alternate_resize: another library path to the input size (Gutierrez et al.'s
            "different resize" condition); its output goes through ``embed``.
    """
    base = model.predict(embed(images), top_k=1)
    base_leaf = base.path_ranked[:, 0, -1]
    base_tags = [{t for t, _ in row} for row in model.tag_sets(base.tag_probs)]
    conditions: list[dict[str, Any]] = []
    out: dict[str, Any] = {"images": len(images), "conditions": conditions}

    def compare(name: str, variant: list[Image.Image]) -> None:
        p = model.predict(embed(variant), top_k=1)
        tags = [{t for t, _ in row} for row in model.tag_sets(p.tag_probs)]
        jaccard = [len(a & b) / len(a | b) if a | b else 1.0 for a, b in zip(base_tags, tags)]
        conditions.append(
            {
                "condition": name,
                "leaf_agreement": round(float((p.path_ranked[:, 0, -1] == base_leaf).mean()), 4),
                "tag_set_agreement": round(float(np.mean(jaccard)), 4),
                "tag_set_identical": round(float(np.mean([a == b for a, b in zip(base_tags, tags)])), 4),
            }
        )

    for quality in (95, 75, 50):
        compare(f"jpeg q{quality}", [_reencode(im, quality) for im in images])
    compare("other resize path", [alternate_resize(im) for im in images])
    compare("other resize path + jpeg q75", [alternate_resize(_reencode(im, 75)) for im in images])
    return out


def _reencode(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


@dataclass
class EvaluationResult:
    """What :func:`evaluate_model` measured.

    Attributes:
        report: the JSON report (see the module docstring).
        markdown: the same as a Markdown report.
        files: the PNG files written (confusion matrices).
    """

    report: dict[str, Any]
    markdown: str
    files: list[Path] = field(default_factory=list)


def evaluate_model(
    model: ModelSpec,
    catalog: Any,
    *,
    images: str | Path | None = None,
    schema: Any = None,
    k: int = 10,
    split_column: str | None = None,
    test_fraction: float | None = None,
    robustness_images: int = 0,
    confusion_png: str | Path | None = None,
    attribute_confusion_png: Mapping[str, str | Path] | None = None,
    device: str = "auto",
    batch_size: int = 64,
    workers: int = 4,
    decode_processes: int | None = None,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    max_pixels: int | None = None,
    progress: bool = False,
) -> EvaluationResult:
    """Measure a trained model, and the kNN tagger over its training rows, on a catalog's test rows (``vistag eval``).

    The rows are split as the model's training split them (its directory records how),
    unless ``split_column`` or ``test_fraction`` say otherwise.

    Args:
        model: a model directory from ``vistag train`` (or a :class:`~vistag.models.loading.LoadedModel`).
        catalog: the labelled catalog (a file or an iterable of row dicts).
        images: where its images are.
        schema: its schema.
        k: neighbours of the kNN tagger.
        split_column: override the model's split column.
        test_fraction: override the model's test fraction.
        robustness_images: re-encode and re-resize this many test images and report how
            often predictions agree (Gutierrez et al.); 0: skip.
        confusion_png: write the finest level's confusion matrix here.
        attribute_confusion_png: attribute column -> PNG path of its confusion matrix.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: images per forward pass.
        workers: image loading threads.
        decode_processes: image decode processes.
        cache_dir: the embedding cache (default: a temporary one).
        limit: read only the first rows.
        max_pixels: decompression-bomb guard.
        progress: progress bars.

    Raises:
        ConfigError: no test rows, a title-aware model without titles, or an unknown attribute.

    Examples:
        >>> result = evaluate_model("models/fashion", "labels.csv", images="images.tar",
        ...                         schema="fashion-product-images")                   # doctest: +SKIP
        >>> result.report["levels"]["articleType"]["top1"]                                # doctest: +SKIP
        0.875
    """
    from vistag.catalog.schema import as_schema
    from vistag.evaluation.plots import confusion_png as write_confusion
    from vistag.evaluation.report import markdown
    from vistag.images import ImageStore
    from vistag.models.dataset import TEST, TRAIN, assign_splits, embed_catalog
    from vistag.models.embedding import open_batch_embedder
    from vistag.models.loading import LoadedModel, load_model

    loaded = model if isinstance(model, LoadedModel) else load_model(model, device=device, batch_size=batch_size)
    trained = loaded.tagging
    if trained is None:
        raise ConfigError(f"{model} is a backbone, not a trained model: pass a directory written by `vistag train`")
    embedder = loaded.embedder
    schema = as_schema(schema)
    with open_batch_embedder(
        embedder, images, cache_dir, workers=workers, processes=decode_processes, max_pixels=max_pixels
    ) as batch:
        data = embed_catalog(catalog, schema, batch, limit=limit, progress=progress)
    if trained.title_column and not any(data.column(trained.title_column)):
        raise ConfigError(f"this model is title-aware: no row of the catalog has a {trained.title_column!r} title")
    split = trained.info.get("training", {}).get("split", {})
    split_col = split_column if split_column is not None else split.get("split_column")
    fraction = test_fraction if test_fraction is not None else (split.get("test_fraction") or 0.1)
    splits = assign_splits(data, split_col, fraction, split.get("val_fraction", 0.1), split.get("seed", 0))
    image_x = data.x
    if trained.title_column:
        data = replace(data, x=trained.with_titles(data.x, data.column(trained.title_column)))
    test, train = data.subset(splits == TEST), data.subset(splits == TRAIN)
    if len(test) == 0:
        raise ConfigError("the catalog has no test rows under the model's split; pass split_column or test_fraction")
    knn_x = (image_x[splits == TEST], image_x[splits == TRAIN]) if trained.title_column else None  # kNN: images only
    report, extras = evaluate(trained, test, train, k=k, knn_x=knn_x)
    report["split"] = {
        "split_column": split_col,
        "test_fraction": None if split_col else fraction,
        "test_rows": len(test),
        "reference_rows": len(train),
    }
    files: list[Path] = []
    if robustness_images:
        rng = np.random.default_rng(0)
        pick = rng.choice(len(test), size=min(robustness_images, len(test)), replace=False)
        with ImageStore(images) as store:
            decoded = [store.load(schema.image_ref(test.fields[i])).image for i in pick]
        size = embedder.config.input_size

        def alternate(image: Image.Image) -> Image.Image:  # another library path: plain stretch + bilinear, no padding
            return image.convert("RGB").resize((size, size), resample=Image.Resampling.BILINEAR)

        embed: Callable[[list[Image.Image]], np.ndarray] = embedder.embed_images
        if trained.title_column:  # the same titles beside each re-encoded image
            titles = [test.fields[i].get(trained.title_column) for i in pick]

            def embed(batch_images: list[Image.Image]) -> np.ndarray:
                return trained.with_titles(embedder.embed_images(batch_images), titles)

        report["robustness"] = robustness(trained, embed, decoded, alternate)
    if confusion_png and "confusion" in extras:
        files.append(
            write_confusion(
                extras["confusion"],
                extras["classes"],
                confusion_png,
                title=f"{trained.levels[-1].column}: {len(test)} test rows, top-1 "
                f"{100 * report['levels'][trained.levels[-1].column]['top1']:.1f}%",
            )
        )
        report["confusion_png"] = str(confusion_png)
    for column, png in (attribute_confusion_png or {}).items():
        if column not in extras.get("attribute_confusion", {}):
            raise ConfigError(
                f"attribute_confusion_png: {column!r} is not an attribute of this model "
                f"({', '.join(extras.get('attribute_confusion', {})) or 'none'})"
            )
        cm, classes = extras["attribute_confusion"][column]
        files.append(
            write_confusion(
                cm,
                classes,
                png,
                title=f"{column}: {len(test)} test rows, top-1 {100 * report['attributes'][column]['top1']:.1f}%",
            )
        )
        report.setdefault("attribute_confusion_png", {})[column] = str(png)
    return EvaluationResult(report, markdown(report), files)
