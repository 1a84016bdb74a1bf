"""A trained tagging model: a directory of data, loaded without the training code.

Layout::

    model_dir/
      vistag-model.json   config: backbone, label vocabularies, hierarchy, thresholds,
                          training data hash, training settings, metrics
      heads.pt            the multi-task head's state dict (torch.save, weights only)
      backbone.pt         a fine-tuned network's state dict (``vistag train --fine-tune``; its
                          sha256 is part of the backbone's model id)
      centroids.npy       product-type validator: class centroids ...
      radii.npy           ... and their radii

:class:`TaggingModel` maps embeddings to predictions; pair it with the
:class:`~vistag.models.embedder.ImageEmbedder` its ``backbone`` names.

References:
    P. Gutierrez, P.-A. Sondag, P. Butkovic, M. Lacy, J. Berges, F. Bertrand, A. Knudson,
    "Deep Learning for Automated Tagging of Fashion Images".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vistag.errors import ConfigError, NotFoundError
from vistag.models.config import BackboneConfig
from vistag.models.heads import HeadConfig, MultiTaskHead
from vistag.models.labels import OTHER, Hierarchy, Vocabulary
from vistag.models.text import TagNameEncoder
from vistag.models.training import TAGS, predict_logits
from vistag.models.validator import TypeValidator

CONFIG_FILE = "vistag-model.json"
BACKBONE_FILE = "backbone.pt"
FORMAT = 1


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Element-wise logistic function."""
    return np.exp(-np.logaddexp(0.0, -x))  # no overflow for large |x|


@dataclass
class Predictions:
    """Head outputs for a batch of images (arrays, one row per image).

    Attributes:
        levels: per hierarchy level, ``(N, C)`` probabilities.
        path_ranked: ``(N, k, L)`` best consistent paths, best first.
        level_ranked: per level, ``(N, k)`` classes ranked consistently with the paths.
        path_confidence: ``(N,)`` confidence of the best path: geometric mean of its
            levels' probabilities.
        attributes: per attribute column, ``(N, C)`` probabilities.
        tag_probs: ``(N, T)`` sigmoid outputs.
        outlier: ``(N,)`` True where the image is far from its predicted leaf type.
        type_distance: ``(N,)`` cosine distance to the predicted leaf centroid.
    """

    levels: list[np.ndarray]
    path_ranked: np.ndarray
    level_ranked: list[np.ndarray]
    path_confidence: np.ndarray
    attributes: dict[str, np.ndarray]
    tag_probs: np.ndarray
    outlier: np.ndarray
    type_distance: np.ndarray


@dataclass
class TaggingModel:
    """Heads, vocabularies and thresholds of a trained model (see the module docstring).

    Attributes:
        backbone: the embedding model the heads were trained on.
        levels: vocabularies of the hierarchy levels, root first.
        attributes: vocabularies of the attribute columns.
        tags: the tag vocabulary (slugs) and the columns tags come from.
        tag_columns: the catalog columns tags were read from.
        hierarchy: observed root -> leaf paths.
        head: the trained head.
        tag_thresholds: ``(T,)`` per-tag decision thresholds.
        global_threshold: the single threshold tuned by Hamming score.
        min_confidence: predictions below this are not written (see :meth:`to_records`).
        temperatures: per softmax task, the calibration temperature its logits are divided by.
        validator: product-type validator over the leaf level (or ``None``).
        info: training data hash, settings and metrics (free-form JSON).
        title_column: set on a title-aware model (opt-in, ``vistag train --title-aware``): its
            inputs are the image embedding joined to the sentence vector of this column's
            text (:meth:`with_titles`); ``None`` for an image-only model.
        backbone_weights: a fine-tuned network's saved state (``backbone.pt``), ``None`` for the
            published weights; ``backbone.tuned`` is the start of its sha256.
    """

    backbone: BackboneConfig
    levels: list[Vocabulary]
    attributes: list[Vocabulary]
    tags: Vocabulary
    tag_columns: list[str]
    hierarchy: Hierarchy
    head: MultiTaskHead
    tag_thresholds: np.ndarray
    global_threshold: float = 0.5
    min_confidence: float = 0.0
    validator: TypeValidator | None = None
    info: dict = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)
    title_column: str | None = None
    backbone_weights: bytes | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """``<directory name>`` recorded as the tagger of indexed documents."""
        return self.info.get("name", "model")

    @property
    def tagger_id(self) -> str:
        """Identifies this model in documents: name plus a short hash of its training data (``+title``: title-aware)."""
        base = f"{self.name}@{str(self.info.get('training', {}).get('data_sha256', ''))[:12]}"
        return f"{base}+title" if self.title_column else base

    # ------------------------------------------------------------------ inference
    def with_titles(self, x: np.ndarray, titles: Sequence[object], encoder: TagNameEncoder | None = None) -> np.ndarray:
        """The inputs of a title-aware model: ``x`` joined to the titles' sentence vectors (an empty title: zeros).

        Image-only models get ``x`` back unchanged.

        Examples:
            >>> model.predict(model.with_titles(vectors, ["Nike Men Navy Blue T-shirt"]))  # doctest: +SKIP
        """
        if self.title_column is None:
            return x
        if encoder is None:  # loaded once per model object
            if "_title_encoder" not in self.__dict__:
                from vistag.models.text import TagNameEncoder

                self.__dict__["_title_encoder"] = TagNameEncoder()
            encoder = self.__dict__["_title_encoder"]
        return join_titles(x, titles, encoder)

    def predict(self, x: np.ndarray, top_k: int = 5) -> Predictions:
        """Run the heads on ``(N, D)`` embeddings."""
        logits = predict_logits(self.head, x)
        for name, t in self.temperatures.items():
            logits[name] = logits[name] / t
        levels = [softmax(logits[f"level:{v.column}"]) for v in self.levels]
        if levels:
            log_probs = [np.log(np.clip(p, 1e-12, None)) for p in levels]
            path_ranked, level_ranked = self.hierarchy.decode(log_probs, top_k)
            best = path_ranked[:, 0]
            # Geometric mean of the path's level probabilities: in [0, 1] like one softmax.
            confidence = np.exp(
                sum(lp[np.arange(len(x)), best[:, i]] for i, lp in enumerate(log_probs)) / len(log_probs)
            )
        else:
            path_ranked = np.zeros((len(x), 0, 0), np.int64)
            level_ranked, confidence = [], np.ones(len(x))
        attributes = {v.column: softmax(logits[f"attr:{v.column}"]) for v in self.attributes}
        tag_probs = sigmoid(logits[TAGS]) if TAGS in logits else np.zeros((len(x), 0), np.float32)
        if self.validator is not None and levels:
            leaf = path_ranked[:, 0, -1]
            distance = self.validator.distance(x, leaf)
            outlier = self.validator.is_outlier(x, leaf)
        else:
            distance = np.full(len(x), np.nan, np.float32)
            outlier = np.zeros(len(x), bool)
        return Predictions(levels, path_ranked, level_ranked, confidence, attributes, tag_probs, outlier, distance)

    def tag_sets(self, tag_probs: np.ndarray, per_tag: bool = True) -> list[list[tuple[str, float]]]:
        """Tags above their thresholds (per tag, or the global one), best first."""
        thresholds = self.tag_thresholds if per_tag else np.full(tag_probs.shape[1], self.global_threshold)
        out = []
        for row in tag_probs:
            keep = np.nonzero(row >= thresholds)[0]
            keep = keep[np.argsort(-row[keep])]
            out.append([(self.tags.classes[j], float(row[j])) for j in keep])
        return out

    def claimed_type_outliers(self, x: np.ndarray, claimed: Sequence[object]) -> np.ndarray:
        """True where an image is far from the leaf type its catalog row claims (Gutierrez et al.)."""
        if self.validator is None or not self.levels:
            return np.zeros(len(x), bool)
        return self.validator.is_outlier(x, self.levels[-1].encode(claimed))

    def to_records(self, x: np.ndarray, top_k: int = 5, pred: Predictions | None = None) -> list[dict]:
        """JSON-friendly predictions: category path, attributes and tags with scores.

        Predictions below ``min_confidence`` are marked ``"accepted": false``; their
        tags and attributes are not to be written.
        """
        pred = pred if pred is not None else self.predict(x, top_k)
        tag_sets = self.tag_sets(pred.tag_probs)
        records = []
        for i in range(len(x)):
            record: dict = {}
            if self.levels:
                path = pred.path_ranked[i, 0]
                record["category"] = {
                    "path": [self.levels[level].classes[c] for level, c in enumerate(path)],
                    "confidence": round(float(pred.path_confidence[i]), 4),
                    "levels": {
                        v.column: [
                            {"label": v.classes[c], "score": round(float(pred.levels[level][i, c]), 4)}
                            for c in pred.level_ranked[level][i]
                        ]
                        for level, v in enumerate(self.levels)
                    },
                }
                record["type_check"] = {
                    "distance": round(float(pred.type_distance[i]), 4),
                    "outlier": bool(pred.outlier[i]),
                }
            record["attributes"] = {}
            for v in self.attributes:
                p = pred.attributes[v.column][i]
                best = int(np.argmax(p))
                record["attributes"][v.column] = {"label": v.classes[best], "score": round(float(p[best]), 4)}
            record["tags"] = [{"tag": t, "score": round(s, 4)} for t, s in tag_sets[i]]
            record["accepted"] = bool(pred.path_confidence[i] >= self.min_confidence and not pred.outlier[i])
            records.append(record)
        return records

    def document_fields(self, x: np.ndarray, pred: Predictions | None = None) -> list[dict[str, Any]]:
        """What ``vistag index --model`` writes for each image: predicted category,
        attributes and tag weights, omitted where the prediction was rejected.
        """
        out: list[dict[str, Any]] = []
        for rec in self.to_records(x, top_k=1, pred=pred):
            if not rec["accepted"]:
                out.append({"accepted": False})
                continue
            attrs = {
                k: v["label"]
                for k, v in rec["attributes"].items()
                if v["label"] != OTHER and v["score"] >= self.min_confidence
            }
            out.append(
                {
                    "accepted": True,
                    "path": [p for p in rec.get("category", {}).get("path", []) if p != OTHER],
                    "attributes": attrs,
                    "tags": [(t["tag"], t["score"]) for t in rec["tags"]],
                    "confidence": rec.get("category", {}).get("confidence"),
                }
            )
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the model directory (see the module docstring)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.head.state_dict(), directory / "heads.pt")
        if self.backbone.tuned:
            if self.backbone_weights is None:
                raise ConfigError(f"{self.backbone.model_id}: the fine-tuned network's weights are missing")
            (directory / BACKBONE_FILE).write_bytes(self.backbone_weights)
        if self.validator is not None:
            self.validator.save(directory)
        config = {
            "format": FORMAT,
            "backbone": self.backbone.to_dict(),
            "model_id": self.backbone.model_id,
            "head": self.head.config.to_dict(),
            "levels": [v.to_dict() for v in self.levels],
            "attributes": [v.to_dict() for v in self.attributes],
            "tags": self.tags.to_dict(),
            "tag_columns": self.tag_columns,
            "hierarchy": self.hierarchy.to_dict(),
            "thresholds": {
                "per_tag": [round(float(t), 4) for t in self.tag_thresholds],
                "global": self.global_threshold,
                "min_confidence": self.min_confidence,
            },
            "validator": {"quantile": self.validator.quantile} if self.validator is not None else None,
            "temperatures": self.temperatures,
            "title_column": self.title_column,
            "info": self.info,
        }
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=1, default=_json_default))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TaggingModel:
        """Load a model directory written by :meth:`save`.

        Raises:
            NotFoundError: not a model directory.
            ValueError: a format this version cannot read.
        """
        directory = Path(directory)
        path = directory / CONFIG_FILE
        if not path.is_file():
            raise NotFoundError(f"{directory} is not a vistag model directory (no {CONFIG_FILE})")
        config = json.loads(path.read_text())
        if config.get("format") != FORMAT:
            raise ConfigError(f"{path}: model format {config.get('format')} is not supported (expected {FORMAT})")
        backbone = config["backbone"]
        backbone = BackboneConfig(
            **{
                **backbone,
                "mean": tuple(backbone["mean"]),
                "std": tuple(backbone["std"]),
                "fill": tuple(backbone["fill"]),
            }
        )
        head = MultiTaskHead(HeadConfig(**config["head"]))
        head.load_state_dict(torch.load(directory / "heads.pt", map_location="cpu", weights_only=True))
        head.eval()
        weights = None
        if backbone.tuned:
            weights_path = directory / BACKBONE_FILE
            if not weights_path.is_file():
                raise NotFoundError(f"{directory}: {backbone.model_id} is fine-tuned but {BACKBONE_FILE} is missing")
            weights = weights_path.read_bytes()
        validator = None
        if config.get("validator"):
            validator = TypeValidator.load(directory, config["validator"]["quantile"])
        thresholds = config["thresholds"]
        info = dict(config.get("info", {}))
        info.setdefault("name", directory.name)
        return cls(
            backbone=backbone,
            levels=[Vocabulary.from_dict(v) for v in config["levels"]],
            attributes=[Vocabulary.from_dict(v) for v in config["attributes"]],
            tags=Vocabulary.from_dict(config["tags"]),
            tag_columns=list(config["tag_columns"]),
            hierarchy=Hierarchy.from_dict(config["hierarchy"]),
            head=head,
            tag_thresholds=np.asarray(thresholds["per_tag"], dtype=np.float32),
            global_threshold=float(thresholds["global"]),
            min_confidence=float(thresholds.get("min_confidence", 0.0)),
            validator=validator,
            info=info,
            temperatures={k: float(v) for k, v in config.get("temperatures", {}).items()},
            title_column=config.get("title_column"),
            backbone_weights=weights,
        )


def join_titles(x: np.ndarray, titles: Sequence[object], encoder: TagNameEncoder | None = None) -> np.ndarray:
    """``x`` joined column-wise to the unit sentence vectors of ``titles`` (the bundled MiniLM; empty: zeros)."""
    if len(titles) != len(x):
        raise ValueError(f"{len(titles)} titles for {len(x)} embeddings")
    texts = [str(t or "").strip() for t in titles]
    if encoder is None:
        from vistag.models.text import TagNameEncoder

        encoder = TagNameEncoder()
    has = [i for i, text in enumerate(texts) if text]
    v = np.asarray(encoder([texts[i] for i in has]), np.float32) if has else np.zeros((0, 384), np.float32)
    t = np.zeros((len(texts), v.shape[1]), np.float32)
    t[has] = v
    return np.hstack([np.asarray(x, np.float32), t])


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
