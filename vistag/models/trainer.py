"""``vistag train``: labelled catalog -> cached embeddings -> trained multi-task head -> model directory."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np

from vistag.catalog.vocabulary import tags_from_labels
from vistag.models.thresholds import hamming_score, tune_global, tune_per_tag
from vistag.models.config import BackboneConfig
from vistag.models.heads import HeadConfig
from vistag.models.labels import Hierarchy, Vocabulary, tag_targets
from vistag.models.tagging_model import TaggingModel, sigmoid
from vistag.models.training import TAGS, Split, TrainConfig, fit_temperatures, predict_logits, train_head
from vistag.models.validator import TypeValidator
from vistag.models.dataset import TRAIN, VAL, EmbeddedCatalog

logger = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """What to learn from a catalog.

    Attributes:
        levels: category columns, root first (a consistent hierarchy is decoded).
        attributes: attribute columns, each an independent masked softmax.
        tag_columns: columns whose values become multi-label tags.
        min_count: classes and tags with fewer training examples are folded into
            ``other`` (classes) or dropped (tags).
        validator_quantile: radius quantile of the product-type validator.
        min_confidence: best-path probability below which predictions are not written.
        train: head hyper-parameters.
        title_column: opt-in title-aware model: the heads read this column's title (its
            sentence vector joined to the image embedding) besides the image.
    """

    levels: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    tag_columns: list[str] = field(default_factory=list)
    min_count: int = 10
    validator_quantile: float = 0.99
    min_confidence: float = 0.0
    train: TrainConfig = field(default_factory=TrainConfig)
    title_column: str | None = None

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return asdict(self)


def _split(data: EmbeddedCatalog, levels: list[Vocabulary], attributes: list[Vocabulary], tags: Vocabulary,
           tag_columns: list[str]) -> Split:
    targets = {f"level:{v.column}": v.encode(data.column(v.column)) for v in levels}
    targets.update({f"attr:{v.column}": v.encode(data.column(v.column)) for v in attributes})
    y, mask = tag_targets(data.fields, tag_columns, tags)
    return Split(data.x, targets, y, mask)


def train_model(data: EmbeddedCatalog, splits: np.ndarray, backbone: BackboneConfig, settings: TrainSettings,
                name: str = "model", split_info: dict | None = None, progress: bool = False) -> TaggingModel:
    """Train heads on the ``train`` rows, early-stop and tune thresholds on the ``val`` rows.

    Args:
        data: the embedded catalog.
        splits: ``train``/``val``/``test`` per row (test rows are not touched).
        backbone: the embedding model of ``data.x``.
        settings: what to learn.
        name: model name recorded in documents.
        split_info: how the split was made (saved, so ``vistag eval`` uses the same).
        progress: progress bars.
    """
    started = time.monotonic()
    if settings.title_column:
        from vistag.models.tagging_model import join_titles

        data = replace(data, x=join_titles(data.x, data.column(settings.title_column)))
        logger.info("title-aware: %s titles joined to the embeddings in %.1fs", len(data), time.monotonic() - started)
    train = data.subset(splits == TRAIN)
    val = data.subset(splits == VAL)
    if len(train) == 0:
        raise ValueError("no training rows: check --split-col / --test-fraction")
    m = settings.min_count
    levels = [Vocabulary.fit(c, train.column(c), m) for c in settings.levels]
    attributes = [Vocabulary.fit(c, train.column(c), m) for c in settings.attributes]
    tag_values = [t for f in train.fields for t in tags_from_labels(f, settings.tag_columns)]
    tags = Vocabulary.fit("tags", tag_values, m, fold_rare=False)
    codes = np.stack([v.encode(train.column(v.column)) for v in levels], axis=1) if levels else np.zeros((len(train), 0), np.int64)
    hierarchy = Hierarchy.fit(levels, codes)
    train_split = _split(train, levels, attributes, tags, settings.tag_columns)
    val_split = _split(val, levels, attributes, tags, settings.tag_columns) if len(val) else None
    tasks = {f"level:{v.column}": len(v) for v in levels}
    tasks.update({f"attr:{v.column}": len(v) for v in attributes})
    head_config = HeadConfig(in_dim=data.x.shape[1], tasks=tasks, n_tags=len(tags), hidden=settings.train.hidden,
                             dropout=settings.train.dropout)
    head, history = train_head(head_config, train_split, val_split, settings.train, progress=progress)

    # Calibration and thresholds on validation rows (training rows if there are none).
    tune = val_split or train_split
    temperatures = fit_temperatures(head, tune)
    probs = sigmoid(predict_logits(head, tune.x)[TAGS]) if len(tags) else np.zeros((len(tune), 0))
    per_tag = tune_per_tag(probs, tune.tags, tune.tag_mask) if len(tags) else np.zeros(0, np.float32)
    global_t = tune_global(probs, tune.tags, tune.tag_mask) if len(tags) else 0.5
    validator = None
    if levels:
        validator = TypeValidator.fit(train.x, codes[:, -1], len(levels[-1]), settings.validator_quantile)
    rare = {v.column: {"classes": len(v), "folded_into_other": len(v.folded), "folded_rows": sum(v.folded.values())}
            for v in levels + attributes}
    rare["tags"] = {"kept": len(tags), "dropped": len(tags.folded)}
    info = {
        "name": name,
        "training": {
            "data_sha256": data.data_hash(settings.levels + settings.attributes + settings.tag_columns),
            "rows": {"train": len(train), "val": len(val), "test": int((splits == "test").sum()),
                     "skipped": len(data.skipped)},
            "split": split_info or {},
            "settings": settings.to_dict(),
            "rare_classes": {"min_count": m, "handling": "classes with fewer training rows are folded into 'other'; "
                             f"tags below the count are dropped; class weighting: {settings.train.class_weighting}",
                             **rare},
            "history": history,
            "seconds": round(time.monotonic() - started, 2),
        },
        "validation": {
            "hamming_score_per_tag_thresholds": round(hamming_score(probs >= per_tag, tune.tags, tune.tag_mask), 4) if len(tags) else None,
            "hamming_score_global_threshold": round(hamming_score(probs >= global_t, tune.tags, tune.tag_mask), 4) if len(tags) else None,
            "best_val_score": history["best_val_score"],
        },
    }
    logger.info("trained %s in %.1fs (best epoch %s of %s)", name, time.monotonic() - started,
                history["best_epoch"], history["epochs_run"])
    return TaggingModel(backbone=backbone, levels=levels, attributes=attributes, tags=tags,
                        tag_columns=list(settings.tag_columns), hierarchy=hierarchy, head=head,
                        tag_thresholds=per_tag, global_threshold=global_t, min_confidence=settings.min_confidence,
                        validator=validator, info=info, temperatures=temperatures,
                        title_column=settings.title_column or None)


def train_text_image(data: EmbeddedCatalog, splits: np.ndarray, title_column: str, image_model_id: str,
                     seed: int = 0, progress: bool = False, label_columns: Sequence[str] = ()):
    """Train the text->image projection on the training rows' (title, embedding) pairs.

    Validation rows pick the best epoch; test rows are never seen. Each title is also
    seen as a shopper's shorter query (:func:`~vistag.models.text_image.query_like`),
    and the text learns to read ``label_columns`` (query tags for hybrid search).

    Args:
        data: the embedded catalog.
        splits: each row's split.
        title_column: the catalog column with the product title.
        image_model_id: the backbone's model id (recorded in the projection).
        seed: random seed.
        progress: show progress while titles are encoded.
        label_columns: catalog columns whose values the text learns to predict (e.g. the
            product type and the colour; their values must be index tags to be of use).

    Raises:
        ValueError: no training row has a title.
    """
    from vistag.models.text_image import TextImageProjection

    titles = np.array([str(t or "").strip() for t in data.column(title_column)], dtype=object)
    has = titles != ""
    fit, val = has & (splits == TRAIN), has & (splits == VAL)
    if not fit.any():
        raise ValueError(f"no training row has a {title_column!r} title: the text->image projection needs titles")
    labels = {col: list(np.asarray(data.column(col), dtype=object)[fit]) for col in label_columns}
    groups = ["|".join(str(labels[c][n]) for c in labels) for n in range(int(fit.sum()))] if labels else None
    return TextImageProjection.fit(list(titles[fit]), data.x[fit], image_model_id=image_model_id,
                                   labels=labels or None, groups=groups, val_texts=list(titles[val]) if val.any() else None,
                                   val_vectors=data.x[val] if val.any() else None, seed=seed, progress=progress)
