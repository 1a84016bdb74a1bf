"""Open a model by what the user names: a registered backbone, or a model directory written by ``vistag train``.

Every command and function that takes a ``model`` goes through :func:`load_model`,
so a trained model always comes with the embedder of the backbone it was trained on,
and a model trained on other embeddings is refused by name.

Examples:
    >>> loaded = load_model("tiny-random", device="cpu")  # doctest: +SKIP
    >>> loaded.embedder.dim, loaded.tagging is None       # doctest: +SKIP
    (64, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from vistag.errors import ConfigError, ImageLoadError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover - torch only when a model is built
    from vistag.models.config import BackboneConfig
    from vistag.models.embedder import ImageEmbedder
    from vistag.models.tagging_model import TaggingModel

#: What a user names a model by: a registered backbone, a model directory, an embedder, or one already loaded.
ModelSpec: TypeAlias = "str | Path | ImageEmbedder | LoadedModel"

#: The file that marks a directory written by ``vistag train``.
MODEL_FILE = "vistag-model.json"


def is_model_dir(path: object) -> bool:
    """Whether ``path`` is a model directory written by ``vistag train``.

    Examples:
        >>> is_model_dir("efficientnet-lite0")
        False
    """
    return bool(path) and (Path(str(path)) / MODEL_FILE).is_file()


@dataclass
class LoadedModel:
    """An embedder, and the trained heads when the model named was a model directory.

    Attributes:
        embedder: turns images into vectors (:class:`~vistag.models.embedder.ImageEmbedder`).
        tagging: the trained :class:`~vistag.models.tagging_model.TaggingModel`, or ``None``.
    """

    embedder: ImageEmbedder
    tagging: TaggingModel | None = None


def create_embedder(name: str | BackboneConfig = "efficientnet-lite0", **kwargs: Any) -> ImageEmbedder:
    """Create an :class:`~vistag.models.embedder.ImageEmbedder` (imports torch; weights load now).

    Args:
        name: a registered backbone name (:func:`~vistag.models.registry.available_backbones`), or
            a backbone config (a fine-tuned network's, with ``weights`` its file).
        **kwargs: ``device``, ``batch_size``, ``input_size``, ``weights``, ``compile``.

    Raises:
        ConfigError: an unknown backbone, or torch is not installed.
    """
    try:
        from vistag.models.embedder import ImageEmbedder
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(f"the models extra is not installed ({exc}); run `pip install 'vistag[torch]'`") from None
    return ImageEmbedder(name, **kwargs)


def load_model(
    model: ModelSpec = "efficientnet-lite0",
    *,
    device: str = "auto",
    batch_size: int = 64,
    input_size: int | None = None,
    weights: str | None = None,
    compile: bool = False,
) -> LoadedModel:
    """The embedder (and trained heads) ``model`` names.

    Args:
        model: a backbone name, a model directory from ``vistag train`` (its backbone and
            resolution are then used), an embedder the caller built, or a :class:`LoadedModel`
            (returned as is).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: images per forward pass.
        input_size: another input resolution (a backbone name only).
        weights: a local weights file (torchvision backbones).
        compile: run the backbone through ``torch.compile``.

    Raises:
        ConfigError: an unknown backbone, or a model trained on embeddings this vistag no longer makes.
    """
    if isinstance(model, LoadedModel):
        return model
    if not isinstance(model, (str, Path)):
        return LoadedModel(model)
    if is_model_dir(model):
        from vistag.models.tagging_model import TaggingModel

        tagging = TaggingModel.load(model)
        tuned = bool(tagging.backbone.tuned)  # a fine-tuned network: built from the directory's backbone.pt
        embedder = create_embedder(
            tagging.backbone if tuned else tagging.backbone.name,
            device=device,
            batch_size=batch_size,
            input_size=tagging.backbone.input_size,
            weights=str(Path(model) / "backbone.pt") if tuned else weights,
            compile=compile,
        )
        if embedder.model_id != tagging.backbone.model_id:
            raise ConfigError(
                f"{model} was trained on {tagging.backbone.model_id} embeddings, this vistag builds "
                f"{embedder.model_id}: retrain the model"
            )
        return LoadedModel(embedder, tagging)
    if isinstance(model, Path) or "/" in str(model):
        raise NotFoundError(f"{model} is not a model directory (no {MODEL_FILE}) and not a backbone name")
    return LoadedModel(
        create_embedder(
            str(model), device=device, batch_size=batch_size, input_size=input_size, weights=weights, compile=compile
        )
    )


def image_only(model: TaggingModel | None, where: str) -> TaggingModel | None:
    """``model``, refused when it is title-aware: ``where`` has only images to go by.

    Raises:
        ConfigError: a title-aware model.
    """
    if model is not None and model.title_column:
        raise ConfigError(
            f"this model is title-aware (it reads {model.title_column!r}): {where} has only images; "
            "use an image-only model (trained without --title-aware)"
        )
    return model


def tag_images(
    model: str | Path | LoadedModel,
    images: Sequence[Any],
    *,
    top_k: int = 3,
    device: str = "auto",
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """Categories, attributes and tags with scores for each image, from a trained model.

    Args:
        model: a model directory from ``vistag train`` (or one already loaded).
        images: paths, http(s) URLs, encoded bytes or PIL images.
        top_k: ranked classes kept per level.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: images per forward pass.

    Returns:
        One record per image, in order: ``{"image", "tagger", ...}`` with the model's
        predictions, or ``{"image", "error"}`` for an image that could not be read.

    Raises:
        ConfigError: ``model`` is not an image-only trained model.

    Examples:
        >>> tag_images("models/fashion", ["photo.jpg"])[0]["tags"]  # doctest: +SKIP
        [['tshirts', 0.97], ['casual', 0.88]]
    """
    from vistag.images import ImageStore

    loaded = model if isinstance(model, LoadedModel) else load_model(model, device=device, batch_size=batch_size)
    trained = image_only(loaded.tagging, "tagging images")
    if trained is None:
        raise ConfigError(f"{model} is a backbone, not a trained model: pass a directory written by `vistag train`")
    names: list[str] = []
    decoded = []
    out: list[dict[str, Any] | None] = []
    with ImageStore() as store:
        for ref in images:
            name = str(ref) if isinstance(ref, (str, Path)) else f"<{type(ref).__name__} image>"
            try:
                source = str(Path(ref).resolve()) if isinstance(ref, (str, Path)) and "://" not in str(ref) else ref
                decoded.append(store.load(source).image)
                names.append(name)
                out.append(None)
            except ImageLoadError as exc:
                out.append({"image": name, "error": str(exc)})
    records = iter(trained.to_records(loaded.embedder.embed_images(decoded), top_k=top_k) if decoded else [])
    names_iter = iter(names)
    return [
        item if item is not None else {"image": next(names_iter), "tagger": trained.tagger_id, **next(records)}
        for item in out
    ]


def set_cpu_threads(threads: int) -> None:
    """Set torch's CPU threads for this process (``torch.set_num_threads``).

    Process-wide: vistag calls it only in a process it owns (a Ray actor of
    :mod:`vistag.ray`), never from a library call in the user's process.
    """
    import torch

    torch.set_num_threads(max(1, int(threads)))
