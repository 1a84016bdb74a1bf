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
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet
from vistag.catalog.vocabulary import tags_from_labels
from vistag.evaluation.metrics import classification_report, coverage_vs_error, ranked_tag_prf, set_metrics
from vistag.models.labels import OTHER, Vocabulary, clean_label
from vistag.models.tagging_model import TaggingModel
from vistag.models.dataset import EmbeddedCatalog

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
    return np.asarray(out, dtype=np.int64), list(vocab.classes) + [UNSEEN]


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


def evaluate(model: TaggingModel, test: EmbeddedCatalog, train: EmbeddedCatalog | None = None, k: int = 10,
             knn_x: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[dict, dict]:
    """Measure ``model`` (and the kNN tagger over ``train``) on ``test``.

    ``knn_x``: the image embeddings of ``(test, train)`` when the model's inputs are
    more than the image (a title-aware model): the kNN tagger compares images only.

    Returns:
        ``(report, extras)``: the JSON report (see the module docstring) and
        ``extras`` with the leaf confusion matrix and its class names, and
        ``attribute_confusion``: attribute column -> ``(matrix, class names)``.
    """
    pred = model.predict(test.x, top_k=5)
    report: dict = {"model": model.tagger_id, "backbone": model.backbone.model_id, "test_rows": len(test),
                    "levels": {}, "attributes": {}, "tags": {}}
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
            extras["confusion"], extras["classes"] = cm, [c for c in vocab.classes] + ([UNSEEN] if len(cm) > len(vocab.classes) else [])
    for vocab in model.attributes:
        ranked = np.argsort(-pred.attributes[vocab.column], axis=1)[:, :5]
        block, cm = _task_report(ranked, vocab, test.column(vocab.column))
        report["attributes"][vocab.column] = block
        extras.setdefault("attribute_confusion", {})[vocab.column] = (
            cm, list(vocab.classes) + ([UNSEEN] if len(cm) > len(vocab.classes) else []))

    truth = [set(tags_from_labels(f, model.tag_columns)) for f in test.fields]
    classes = model.tags.classes
    if len(classes):
        heads = pred.tag_probs
        report["tags"]["heads"] = _tag_block(heads, classes, truth, {
            "per_tag_thresholds": model.tag_thresholds,
            "global_threshold": np.full(len(classes), model.global_threshold, np.float32)})
        report["tags"]["heads"]["global_threshold"] = model.global_threshold
        if train is not None and len(train):
            knn = _knn_scores(model, replace(train, x=knn_x[1]), replace(test, x=knn_x[0]), k) if knn_x is not None \
                else _knn_scores(model, train, test, k)
            report["tags"]["knn"] = _tag_block(knn, classes, truth, {"score>=0.5": np.full(len(classes), 0.5, np.float32)})
            report["tags"]["knn"]["k"] = k
            blend = (heads + knn) / 2
            report["tags"]["ensemble"] = _tag_block(blend, classes, truth, {
                "per_tag_thresholds": model.tag_thresholds, "score>=0.5": np.full(len(classes), 0.5, np.float32)})

    if model.levels:
        leaf = model.levels[-1]
        y, _ = encode_truth(leaf, test.column(leaf.column))
        known = y >= 0
        correct = pred.path_ranked[:, 0, -1] == y
        report["confidence"] = {"level": leaf.column, "table": coverage_vs_error(pred.path_confidence[known], correct[known],
                                                                                 CONFIDENCE_THRESHOLDS)}
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
        table.append({
            "radius_scale": scale,
            "true_claims_flagged": round(float(model.validator.is_outlier(x, true, scale).mean()), 4),
            "wrong_claims_flagged": round(float(model.validator.is_outlier(x, wrong, scale).mean()), 4),
        })
    return {"level": model.levels[-1].column, "quantile": model.validator.quantile, "classes": n_classes,
            "rows": len(rows), "table": table}


def robustness(model: TaggingModel, embed: Callable[[list[Image.Image]], np.ndarray], images: list[Image.Image],
               alternate_resize: Callable[[Image.Image], Image.Image]) -> dict:
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
    base_tags = [set(t for t, _ in row) for row in model.tag_sets(base.tag_probs)]
    out = {"images": len(images), "conditions": []}

    def compare(name: str, variant: list[Image.Image]) -> None:
        p = model.predict(embed(variant), top_k=1)
        tags = [set(t for t, _ in row) for row in model.tag_sets(p.tag_probs)]
        jaccard = [len(a & b) / len(a | b) if a | b else 1.0 for a, b in zip(base_tags, tags)]
        out["conditions"].append({
            "condition": name,
            "leaf_agreement": round(float((p.path_ranked[:, 0, -1] == base_leaf).mean()), 4),
            "tag_set_agreement": round(float(np.mean(jaccard)), 4),
            "tag_set_identical": round(float(np.mean([a == b for a, b in zip(base_tags, tags)])), 4),
        })

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
