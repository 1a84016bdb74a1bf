"""Helpers shared by commands: connecting, creating embedders, printing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vistag.config import ConnectionSettings, vistag_home
from vistag.engine.client import EngineClient
from vistag.engine.local import LocalNode
from vistag.errors import ConfigError


def connect(args: argparse.Namespace) -> EngineClient:
    """A client for ``--url``/``VISTAG_URL``, else for the running local node of ``--engine``."""
    settings = ConnectionSettings.from_env(
        url=getattr(args, "url", None), api_key=getattr(args, "api_key", None), username=getattr(args, "user", None),
        password=getattr(args, "password", None), ca_cert=getattr(args, "ca_cert", None),
    )
    if not settings.url:
        url = LocalNode(args.engine).url
        if not url:
            raise ConfigError(
                f"no engine URL: pass --url or set VISTAG_URL, or start a local node with `vistag engine start --engine {args.engine}`"
            )
        settings = ConnectionSettings(**{**settings.__dict__, "url": url})
    return EngineClient(settings)


def is_model_dir(name: str | None) -> bool:
    """True when ``name`` is a directory written by ``vistag train``."""
    return bool(name) and (Path(name) / "vistag-model.json").is_file()


def load_tagging_model(path: str):
    """Load a trained model directory (imports torch)."""
    from vistag.models.tagging_model import TaggingModel

    return TaggingModel.load(path)


def make_embedder(args: argparse.Namespace, model=None):
    """The image embedder the model flags describe (imports torch).

    ``--model`` is a backbone name, or a trained model directory whose backbone
    and resolution are then used (``model``, when already loaded, is that model).
    """
    try:
        from vistag.models import create_embedder
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(f"the models extra is not installed ({exc}); run `pip install 'vistag[torch]'`") from None
    if model is None and is_model_dir(args.model):
        model = load_tagging_model(args.model)
    if model is not None:
        embedder = create_embedder(model.backbone.name, device=args.device, batch_size=args.batch_size,
                                   input_size=model.backbone.input_size, weights=args.weights,
                                   compile=getattr(args, "compile", False))
        if embedder.model_id != model.backbone.model_id:
            raise ConfigError(f"{args.model} was trained on {model.backbone.model_id} embeddings, this vistag builds "
                              f"{embedder.model_id}: retrain the model")
        return embedder
    return create_embedder(args.model, device=args.device, batch_size=args.batch_size,
                           input_size=args.input_size, weights=args.weights, compile=getattr(args, "compile", False))


def embedding_cache(embedder):
    """The on-disk embedding cache of an embedder's model."""
    from vistag.models.cache import EmbeddingCache

    return EmbeddingCache(vistag_home() / "cache" / "embeddings", embedder.model_id, embedder.dim)


def print_json(data: object) -> None:
    """Pretty JSON to stdout."""
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
