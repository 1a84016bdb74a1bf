"""``vistag train``: labelled catalog -> cached embeddings -> trained multi-task head -> model directory.

Examples:
    >>> result = train("labels.csv", "models/fashion", images="images.tar",
    ...                schema="fashion-product-images")                        # doctest: +SKIP
    >>> result.model.tagger_id                                                 # doctest: +SKIP
    'fashion@3f2a9c1d0e4b'
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vistag.catalog.schema import CatalogSchema, as_schema
from vistag.catalog.vocabulary import tags_from_labels
from vistag.errors import ConfigError
from vistag.models.config import BackboneConfig
from vistag.models.dataset import (
    TRAIN,
    VAL,
    EmbeddedCatalog,
    assign_splits,
    embed_catalog,
)
from vistag.models.heads import HeadConfig, MultiTaskHead
from vistag.models.labels import Hierarchy, Vocabulary, tag_targets
from vistag.models.tagging_model import TaggingModel, sigmoid
from vistag.models.thresholds import hamming_score, tune_global, tune_per_tag
from vistag.models.training import (
    TAGS,
    Split,
    TrainConfig,
    fit_temperatures,
    predict_logits,
    train_head,
)
from vistag.models.validator import TypeValidator

if TYPE_CHECKING:  # pragma: no cover
    from vistag.models.finetune import FineTuneConfig
    from vistag.models.text_image import TextImageProjection

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)

    @classmethod
    def for_schema(
        cls,
        schema: CatalogSchema,
        *,
        levels: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
        tag_columns: Sequence[str] | None = None,
        title_aware: bool = False,
        **options: Any,
    ) -> TrainSettings:
        """Settings that learn the schema's category levels, attributes and tags unless told otherwise.

        Args:
            schema: the catalog's schema.
            levels: hierarchy columns, root first (default: the schema's ``category``).
            attributes: attribute columns (default: the schema's ``attributes``).
            tag_columns: tag columns (default: the schema's ``tags``).
            title_aware: the heads also read the schema's title column.
            **options: the other fields (``min_count``, ``min_confidence``, ``train``, ...).

        Raises:
            ConfigError: nothing to learn, or ``title_aware`` without a title column.

        Examples:
            >>> TrainSettings.for_schema(CatalogSchema(category=("masterCategory",))).levels
            ['masterCategory']
        """
        settings = cls(
            levels=list(schema.category if levels is None else levels),
            attributes=list(schema.attributes if attributes is None else attributes),
            tag_columns=list(schema.tags if tag_columns is None else tag_columns),
            **options,
        )
        if not (settings.levels or settings.attributes or settings.tag_columns):
            raise ConfigError("nothing to learn: the schema names no category, attribute or tag columns")
        if title_aware:
            if not schema.title:
                raise ConfigError("a title-aware model needs a title column in the schema")
            settings.title_column = schema.title
        return settings


@dataclass(frozen=True)
class SplitSettings:
    """How rows are split into train, validation and test.

    Attributes:
        column: a column whose value ``test`` marks test rows (``val`` validation rows);
            ``None``: a hash of the id decides.
        test_fraction: test share by id hash when there is no ``column``.
        val_fraction: validation share of the other rows.
        seed: salts the hash.
    """

    column: str | None = None
    test_fraction: float = 0.1
    val_fraction: float = 0.1
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """What the model directory records (``vistag eval`` splits the same way)."""
        return {
            "split_column": self.column,
            "test_fraction": None if self.column else self.test_fraction,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
        }


@dataclass
class TrainResult:
    """What :func:`train` made and how long it took.

    Attributes:
        model: the trained model (saved in ``path``).
        path: the model directory.
        projection: the text->image projection (saved in ``path / "text-image"``), or ``None``.
        rows: usable rows of the catalog.
        embedding_seconds: reading and embedding the catalog.
        images_embedded: images run through the network (the rest came from the cache).
        from_cache: images whose vector was in the cache.
        total_seconds: the whole run.
    """

    model: TaggingModel
    path: Path
    projection: TextImageProjection | None
    rows: int
    embedding_seconds: float
    images_embedded: int
    from_cache: int
    total_seconds: float

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary (what ``vistag train --json`` prints)."""
        t = self.model.info["training"]
        return {
            "model": str(self.path),
            "tagger": self.model.tagger_id,
            "backbone": self.model.backbone.model_id,
            "rows": t["rows"],
            "embedding_seconds": round(self.embedding_seconds, 1),
            "images_embedded": self.images_embedded,
            "from_cache": self.from_cache,
            "train_seconds": t["seconds"],
            "total_seconds": round(self.total_seconds, 1),
            "best_epoch": t["history"]["best_epoch"],
            "validation": self.model.info["validation"],
            **(
                {"fine_tune_seconds": t["fine_tune"]["seconds"], "feature_maps": t["fine_tune"]["feature_maps"]}
                if "fine_tune" in t
                else {}
            ),
        }


def default_read_labels(settings: TrainSettings) -> list[str]:
    """The columns a text->image projection learns to read by default: the deepest category level and
    any colour attribute, when they are tag columns (a read label is of use only as an index tag).

    Examples:
        >>> default_read_labels(TrainSettings(levels=["subCategory", "articleType"], attributes=["baseColour"],
        ...                                   tag_columns=["articleType", "baseColour"]))
        ['articleType', 'baseColour']
    """
    readable = set(settings.tag_columns)
    deepest = [c for c in settings.levels[-1:] if c in readable]
    return deepest + [c for c in settings.attributes if c in readable and re.search(r"colou?r", c, re.I)]


def train(
    catalog: str | Path | Iterable[Mapping[str, Any]],
    out: str | Path,
    *,
    images: str | Path | None = None,
    schema: CatalogSchema | str | Path | None = None,
    backbone: str = "efficientnet-lite0",
    settings: TrainSettings | None = None,
    split: SplitSettings | None = None,
    text_image: bool = False,
    read_labels: Sequence[str] | None = None,
    device: str = "auto",
    batch_size: int = 64,
    input_size: int | None = None,
    weights: str | None = None,
    compile: bool = False,
    workers: int = 4,
    decode_processes: int | None = None,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    max_pixels: int | None = None,
    progress: bool = False,
    fine_tune: FineTuneConfig | None = None,
    head_vectors: bool = False,
) -> TrainResult:
    """Embed a labelled catalog (through the embedding cache), train the heads and write the model directory.

    Args:
        catalog: a labelled ``.csv``/``.tsv``/``.jsonl`` file, or an iterable of row dicts.
        out: the model directory to write (its name is the model's name in documents).
        images: where relative image references are found (a folder or a ``.tar``).
        schema: the catalog's schema (default ``id``/``title``/``image``).
        backbone: a registered backbone name.
        settings: what to learn (default: :meth:`TrainSettings.for_schema`).
        split: how rows are split (default: 10 % test and 10 % validation by id hash).
        text_image: also train the text->image projection on the titles (``out/text-image``).
        read_labels: columns the projection learns to read from a query
            (default :func:`default_read_labels`; empty: none).
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: images per forward pass.
        input_size: another input resolution.
        weights: a local weights file (torchvision backbones).
        compile: ``torch.compile`` the backbone.
        workers: image loading threads.
        decode_processes: image decode processes.
        cache_dir: the embedding cache (default: a temporary one).
        limit: read only the first rows.
        max_pixels: decompression-bomb guard.
        progress: progress bars.
        fine_tune: also train the network's last stages with the heads
            (:func:`fine_tune_model`); the model then carries its own network and model id.
        head_vectors: then embed with the network followed by the trained head's hidden layer
            (:func:`head_vectors_model`): the vectors that are indexed and searched are those
            the heads read their tasks from, and the heads are trained afresh on them.

    Raises:
        ConfigError: nothing to learn, no training rows, ``text_image`` without titles, or
            ``fine_tune`` with a title-aware model or a backbone that cannot be fine-tuned.
    """
    from vistag.models.embedding import open_batch_embedder
    from vistag.models.loading import create_embedder

    started = time.monotonic()
    schema = as_schema(schema)
    settings = settings or TrainSettings.for_schema(schema)
    split = split or SplitSettings()
    embedder = create_embedder(
        backbone, device=device, batch_size=batch_size, input_size=input_size, weights=weights, compile=compile
    )
    if fine_tune is not None:  # refused before minutes of embedding and training, not after
        from vistag.models.finetune import MidActivations

        if settings.title_column:
            raise ConfigError("fine-tuning trains the network on the photo alone: drop --title-aware")
        MidActivations(embedder, fine_tune.views, fine_tune.seed, fine_tune.stages)
    with open_batch_embedder(
        embedder, images, cache_dir, workers=workers, processes=decode_processes, max_pixels=max_pixels
    ) as batch:
        data = embed_catalog(catalog, schema, batch, limit=limit, progress=progress)
    logger.info(
        "embedded %d rows (%d computed, %d from cache, %d skipped)",
        len(data),
        batch.computed,
        batch.cache_hits,
        len(data.skipped),
    )
    embed_s = time.monotonic() - started
    splits = assign_splits(data, split.column, split.test_fraction, split.val_fraction, split.seed)
    out = Path(out)
    model = train_model(
        data, splits, embedder.config, settings, name=out.name, split_info=split.to_dict(), progress=progress
    )
    model.info["training"]["embedding"] = {
        "seconds": round(embed_s, 2),
        "computed": batch.computed,
        "from_cache": batch.cache_hits,
        "rows": len(data),
    }
    if fine_tune is not None:
        model, data = fine_tune_model(
            model,
            data,
            splits,
            embedder,
            settings,
            fine_tune,
            schema=schema,
            images=images,
            cache_dir=cache_dir,
            workers=workers,
            decode_processes=decode_processes,
            max_pixels=max_pixels,
            split_info=split.to_dict(),
            progress=progress,
        )
    if head_vectors:
        if settings.title_column:
            raise ConfigError("head vectors embed the photo alone: drop --title-aware")
        model, data = head_vectors_model(
            model, data, splits, settings, split_info=split.to_dict(), cache_dir=cache_dir, progress=progress
        )
    projection = None
    if text_image:
        if not schema.title:
            raise ConfigError("the text->image projection needs a title column in the schema")
        t0 = time.monotonic()
        labels = default_read_labels(settings) if read_labels is None else list(read_labels)
        projection = train_text_image(
            data, splits, schema.title, model.backbone.model_id, split.seed, progress, label_columns=labels
        )
        model.info["training"]["text_image"] = {
            "seconds": round(time.monotonic() - t0, 2),
            "history": projection.config.history[-1:],
        }
    model.info["training"]["total_seconds"] = round(time.monotonic() - started, 2)
    model.save(out)
    if projection is not None:
        projection.save(out / "text-image")
    return TrainResult(
        model, out, projection, len(data), embed_s, batch.computed, batch.cache_hits, time.monotonic() - started
    )


def fine_tune_model(
    frozen: TaggingModel,
    data: EmbeddedCatalog,
    splits: np.ndarray,
    embedder: Any,
    settings: TrainSettings,
    config: FineTuneConfig,
    *,
    schema: CatalogSchema,
    images: str | Path | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 4,
    decode_processes: int | None = None,
    max_pixels: int | None = None,
    split_info: dict | None = None,
    progress: bool = False,
) -> tuple[TaggingModel, EmbeddedCatalog]:
    """Fine-tune the network's last stages with the heads of ``frozen`` (see :mod:`vistag.models.finetune`).

    The middle-stage maps of every row (``config.views`` views) are read from, or added
    to, the cache below ``cache_dir``; a fresh head is trained for ``config.head_epochs`` on
    the frozen vectors and fine-tuned with the network; the fine-tuned network then embeds
    every row once more (from its first view), the usual head is trained afresh on those
    vectors (``config.refit_head``; else the fine-tuned head is kept) and calibrated and thresholded,
    and, with a ``cache_dir``, the vectors are added to the embedding cache under the new
    model id (so indexing the same catalog does not run the network again).

    Args:
        frozen: the model trained on the published network's features (its vocabularies and
            head shape are kept; its head is the start when ``config.head_epochs`` is 0).
        data: the embedded catalog (its rows, hashes and frozen vectors).
        splits: each row's split.
        embedder: the published network's :class:`~vistag.models.embedder.ImageEmbedder`.
        settings: what the model learns.
        config: fine-tuning hyper-parameters.
        schema: the catalog's schema (where each row's image is).
        images: where relative image references are found.
        cache_dir: the embedding cache root (default: a temporary one).
        workers: image loading threads.
        decode_processes: image decode processes.
        max_pixels: decompression-bomb guard.
        split_info: how the split was made (recorded).
        progress: progress bars.

    Returns:
        The fine-tuned model (``backbone.tuned`` set, ``backbone_weights`` to save) and the
        catalog with the fine-tuned vectors.

    Raises:
        ConfigError: a backbone that cannot be fine-tuned.
        ImageLoadError: an image that was read for the embeddings cannot be read again.
    """
    import copy

    from tqdm import tqdm

    from vistag.errors import ImageLoadError
    from vistag.models.cache import EmbeddingCache
    from vistag.models.embedding import open_batch_embedder
    from vistag.models.finetune import MidActivations, embed_maps, extra_block
    from vistag.models.finetune import fine_tune as run_fine_tune

    if embedder.config.flip or embedder.config.tuned:
        raise ConfigError(f"{embedder.model_id}: fine-tune the published network (no flip averaging or tuning)")
    started = time.monotonic()
    acts = MidActivations(embedder, config.views, config.seed, config.stages)
    maps = np.empty((len(data), config.views, *acts.shape), np.float16)
    with open_batch_embedder(
        acts, images, cache_dir, workers=workers, processes=decode_processes, max_pixels=max_pixels
    ) as batch:
        items = ((i, schema.image_ref(f), None) for i, f in enumerate(data.fields))
        bar = tqdm(total=len(data), desc="feature maps", unit="img", disable=not progress, leave=False)
        for i, res in batch.embed_stream(items):
            if res.vector is None:
                raise ImageLoadError(f"row {data.ids[i]}: {res.error}")
            maps[i] = res.vector.reshape(maps.shape[1:])
            bar.update(1)
        bar.close()
    maps_s = time.monotonic() - started
    logger.info("feature maps of %d rows in %.0fs (%d computed)", len(data), maps_s, batch.computed)
    network = copy.deepcopy(acts.lite)
    # a -colour backbone: each row's colour block (read from the pixels, not trained) joins the network's vector
    extra = extra_block(data.x, network.dim)
    if config.attention:
        network.add_attention(embedder.config.input_size)
    train_rows, val_rows = np.nonzero(splits == TRAIN)[0], np.nonzero(splits == VAL)[0]
    vocabularies = (frozen.levels, frozen.attributes, frozen.tags, settings.tag_columns)
    train_split = _split(data.subset(splits == TRAIN), *vocabularies)
    val_split = _split(data.subset(splits == VAL), *vocabularies) if len(val_rows) else None
    start = frozen.head
    if config.head_epochs:  # a short linear probe: the fully trained head has memorised the training rows
        short = replace(settings.train, epochs=config.head_epochs, patience=config.head_epochs)
        start, _ = train_head(frozen.head.config, train_split, val_split, short, progress=progress)
    result = run_fine_tune(
        network,
        start,
        train_split,
        maps[train_rows],
        val_split,
        maps[val_rows] if len(val_rows) else None,
        config,
        settings.train.class_weighting,
        progress,
        device=embedder.device,
        train_extra=None if extra is None else extra[train_rows],
        val_extra=None if extra is None or not len(val_rows) else extra[val_rows],
    )
    tuned = replace(embedder.config, attention=config.attention, tuned=result.digest)
    tuned_data = replace(data, x=embed_maps(result.network, maps[:, 0], extra, cut=acts.cut))
    model = train_model(
        tuned_data,
        splits,
        tuned,
        settings,
        name=frozen.name,
        split_info=split_info,
        progress=progress,
        head=None if config.refit_head else result.head,
        history=None if config.refit_head else result.history,
    )
    model.backbone_weights = result.weights
    if cache_dir is not None:
        EmbeddingCache(cache_dir, tuned.model_id, tuned.embedding_dim).put_many(tuned_data.sha256, tuned_data.x)
    model.info["training"]["embedding"] = frozen.info["training"].get("embedding", {})
    model.info["training"]["fine_tune"] = {
        "config": config.to_dict(),
        "from": embedder.model_id,
        "trainable_parameters": len(result.trainable),
        "feature_maps": {
            "seconds": round(maps_s, 1),
            "computed": batch.computed,
            "from_cache": batch.cache_hits,
            "bytes_per_image": int(acts.dim * 2),
            "bytes": int(acts.dim * 2 * len(data)),
        },
        "history": result.history,
        "frozen_validation": frozen.info["validation"],
        "frozen_history": frozen.info["training"]["history"],
        "seconds": round(time.monotonic() - started, 1),
    }
    return model, tuned_data


def head_vectors_model(
    trained: TaggingModel,
    data: EmbeddedCatalog,
    splits: np.ndarray,
    settings: TrainSettings,
    *,
    split_info: dict | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[TaggingModel, EmbeddedCatalog]:
    """The model whose network ends in ``trained``'s hidden layer (:class:`~vistag.models.backbones.HeadVectors`).

    Every row's new vector is the hidden layer's output for its current vector (no image is
    read again), the usual head is trained afresh on those vectors, and the network with
    the layer is saved as the model's weights under its own model id (``...-hv<width>-ft<sha256>``);
    with a ``cache_dir`` the vectors are added to the embedding cache under that id.

    Args:
        trained: a model trained on the network's vectors (frozen or fine-tuned), with a hidden layer.
        data: the catalog embedded by that network.
        splits: each row's split.
        settings: what the new heads learn.
        split_info: how the split was made (recorded).
        cache_dir: the embedding cache root.
        progress: progress bars.

    Returns:
        The new model (``backbone.head_vectors`` set, ``backbone_weights`` to save) and the
        catalog with the new vectors.

    Raises:
        ConfigError: a head without a hidden layer, a model that has head vectors already, or a
            network that is not EfficientNet-Lite with ``mean+mid(grid)`` pooling.
    """
    import io

    import torch
    from torch.nn import functional as F

    from vistag.models.backbones import HeadVectors, LiteMeanMid, saved_weights
    from vistag.models.cache import EmbeddingCache
    from vistag.models.registry import builder_for

    width = trained.head.config.hidden
    if not width:
        raise ConfigError("head vectors are the head's hidden layer: train with --hidden above 0")
    if trained.backbone.head_vectors:
        raise ConfigError(f"{trained.backbone.model_id} embeds with head vectors already")
    if trained.backbone.pooling not in ("mean+mid", "mean+midgrid"):
        raise ConfigError(
            f"{trained.backbone.model_id}: head vectors need EfficientNet-Lite with mean+mid(grid) pooling"
        )
    started = time.monotonic()
    base = replace(trained.backbone, tuned="")
    network = builder_for(base.name)(base)  # the published weights (the attention module, the colour block)
    if trained.backbone.tuned:  # the fine-tuned network's own weights
        assert trained.backbone_weights is not None
        lite = network if isinstance(network, LiteMeanMid) else network.net
        lite.load_state_dict(torch.load(io.BytesIO(trained.backbone_weights), map_location="cpu", weights_only=True))
    module = HeadVectors(network, base.embedding_dim, width).eval()
    head = trained.head
    module.mean.copy_(head.mean.cpu())
    module.std.copy_(head.std.cpu())
    module.trunk.load_state_dict(head.trunk.state_dict())
    with torch.inference_mode():
        parts = [
            F.normalize(module.project(torch.from_numpy(np.asarray(data.x[i : i + 4096], np.float32))), dim=1).numpy()
            for i in range(0, len(data), 4096)
        ]
    x = np.concatenate(parts) if parts else np.zeros((0, width), np.float32)
    weights, digest = saved_weights(module)
    config = replace(trained.backbone, head_vectors=width, embedding_dim=width, tuned=digest)
    vectors = replace(data, x=x)
    model = train_model(vectors, splits, config, settings, name=trained.name, split_info=split_info, progress=progress)
    model.backbone_weights = weights
    if cache_dir is not None:
        EmbeddingCache(cache_dir, config.model_id, width).put_many(vectors.sha256, x)
    for key in ("embedding", "fine_tune"):
        if key in trained.info["training"]:
            model.info["training"][key] = trained.info["training"][key]
    model.info["training"]["head_vectors"] = {
        "from": trained.backbone.model_id,
        "width": width,
        "validation_before": trained.info["validation"],
        "seconds": round(time.monotonic() - started, 1),
    }
    return model, vectors


def _split(
    data: EmbeddedCatalog,
    levels: list[Vocabulary],
    attributes: list[Vocabulary],
    tags: Vocabulary,
    tag_columns: list[str],
) -> Split:
    targets = {f"level:{v.column}": v.encode(data.column(v.column)) for v in levels}
    targets.update({f"attr:{v.column}": v.encode(data.column(v.column)) for v in attributes})
    y, mask = tag_targets(data.fields, tag_columns, tags)
    return Split(data.x, targets, y, mask)


def train_model(
    data: EmbeddedCatalog,
    splits: np.ndarray,
    backbone: BackboneConfig,
    settings: TrainSettings,
    name: str = "model",
    split_info: dict | None = None,
    progress: bool = False,
    head: MultiTaskHead | None = None,
    history: dict | None = None,
) -> TaggingModel:
    """Train heads on the ``train`` rows, early-stop and tune thresholds on the ``val`` rows.

    Args:
        data: the embedded catalog.
        splits: ``train``/``val``/``test`` per row (test rows are not touched).
        backbone: the embedding model of ``data.x``.
        settings: what to learn.
        name: model name recorded in documents.
        split_info: how the split was made (saved, so ``vistag eval`` uses the same).
        progress: progress bars.
        head: a head already trained on ``data.x`` (with its ``history``), e.g. by
            :func:`~vistag.models.finetune.fine_tune`: only calibrated, thresholded and
            wrapped here.
        history: its training history.
    """
    started = time.monotonic()
    if settings.title_column:
        from vistag.models.tagging_model import join_titles

        data = replace(data, x=join_titles(data.x, data.column(settings.title_column)))
        logger.info("title-aware: %s titles joined to the embeddings in %.1fs", len(data), time.monotonic() - started)
    train = data.subset(splits == TRAIN)
    val = data.subset(splits == VAL)
    if len(train) == 0:
        raise ConfigError("no training rows: check the split column or the test fraction")
    m = settings.min_count
    levels = [Vocabulary.fit(c, train.column(c), m) for c in settings.levels]
    attributes = [Vocabulary.fit(c, train.column(c), m) for c in settings.attributes]
    tag_values = [t for f in train.fields for t in tags_from_labels(f, settings.tag_columns)]
    tags = Vocabulary.fit("tags", tag_values, m, fold_rare=False)
    codes = (
        np.stack([v.encode(train.column(v.column)) for v in levels], axis=1)
        if levels
        else np.zeros((len(train), 0), np.int64)
    )
    hierarchy = Hierarchy.fit(levels, codes)
    train_split = _split(train, levels, attributes, tags, settings.tag_columns)
    val_split = _split(val, levels, attributes, tags, settings.tag_columns) if len(val) else None
    tasks = {f"level:{v.column}": len(v) for v in levels}
    tasks.update({f"attr:{v.column}": len(v) for v in attributes})
    head_config = HeadConfig(
        in_dim=data.x.shape[1],
        tasks=tasks,
        n_tags=len(tags),
        hidden=settings.train.hidden,
        dropout=settings.train.dropout,
    )
    if head is None:
        head, history = train_head(head_config, train_split, val_split, settings.train, progress=progress)
    elif head.config.tasks != head_config.tasks or head.config.n_tags != head_config.n_tags:
        raise ConfigError("the head given was trained on other classes than these rows have")
    history = history or {"best_epoch": None, "epochs_run": 0, "best_val_score": None, "history": []}

    # Calibration and thresholds on validation rows (training rows if there are none).
    tune = val_split or train_split
    temperatures = fit_temperatures(head, tune)
    probs = sigmoid(predict_logits(head, tune.x)[TAGS]) if len(tags) else np.zeros((len(tune), 0))
    tune_tags = tune.tags if tune.tags is not None else np.zeros(probs.shape, np.float32)
    tune_mask = tune.tag_mask if tune.tag_mask is not None else np.zeros(probs.shape, np.float32)
    per_tag = tune_per_tag(probs, tune_tags, tune_mask) if len(tags) else np.zeros(0, np.float32)
    global_t = tune_global(probs, tune_tags, tune_mask) if len(tags) else 0.5
    validator = None
    if levels:
        validator = TypeValidator.fit(train.x, codes[:, -1], len(levels[-1]), settings.validator_quantile)
    rare = {
        v.column: {"classes": len(v), "folded_into_other": len(v.folded), "folded_rows": sum(v.folded.values())}
        for v in levels + attributes
    }
    rare["tags"] = {"kept": len(tags), "dropped": len(tags.folded)}
    info = {
        "name": name,
        "training": {
            "data_sha256": data.data_hash(settings.levels + settings.attributes + settings.tag_columns),
            "rows": {
                "train": len(train),
                "val": len(val),
                "test": int((splits == "test").sum()),
                "skipped": len(data.skipped),
            },
            "split": split_info or {},
            "settings": settings.to_dict(),
            "rare_classes": {
                "min_count": m,
                "handling": "classes with fewer training rows are folded into 'other'; "
                f"tags below the count are dropped; class weighting: {settings.train.class_weighting}",
                **rare,
            },
            "history": history,
            "seconds": round(time.monotonic() - started, 2),
        },
        "validation": {
            "hamming_score_per_tag_thresholds": round(hamming_score(probs >= per_tag, tune_tags, tune_mask), 4)
            if len(tags)
            else None,
            "hamming_score_global_threshold": round(hamming_score(probs >= global_t, tune_tags, tune_mask), 4)
            if len(tags)
            else None,
            "best_val_score": history["best_val_score"],
        },
    }
    logger.info(
        "trained %s in %.1fs (best epoch %s of %s)",
        name,
        time.monotonic() - started,
        history["best_epoch"],
        history["epochs_run"],
    )
    return TaggingModel(
        backbone=backbone,
        levels=levels,
        attributes=attributes,
        tags=tags,
        tag_columns=list(settings.tag_columns),
        hierarchy=hierarchy,
        head=head,
        tag_thresholds=per_tag,
        global_threshold=global_t,
        min_confidence=settings.min_confidence,
        validator=validator,
        info=info,
        temperatures=temperatures,
        title_column=settings.title_column or None,
    )


def train_text_image(
    data: EmbeddedCatalog,
    splits: np.ndarray,
    title_column: str,
    image_model_id: str,
    seed: int = 0,
    progress: bool = False,
    label_columns: Sequence[str] = (),
) -> TextImageProjection:
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
        raise ConfigError(f"no training row has a {title_column!r} title: the text->image projection needs titles")
    labels = {col: list(np.asarray(data.column(col), dtype=object)[fit]) for col in label_columns}
    groups = ["|".join(str(labels[c][n]) for c in labels) for n in range(int(fit.sum()))] if labels else None
    return TextImageProjection.fit(
        list(titles[fit]),
        data.x[fit],
        image_model_id=image_model_id,
        labels=labels or None,
        groups=groups,
        val_texts=list(titles[val]) if val.any() else None,
        val_vectors=data.x[val] if val.any() else None,
        seed=seed,
        progress=progress,
    )
