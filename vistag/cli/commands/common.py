"""Helpers shared by commands: connecting, creating embedders, loading relations, printing."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from vistag.config import ConnectionSettings, vistag_home
from vistag.engine.client import EngineClient
from vistag.engine.connect import connect as connect_settings
from vistag.local.cluster import LocalCluster
from vistag.local.node import LocalNode
from vistag.engine.retry import RetryPolicy
from vistag.errors import ConfigError


def connection_settings(args: argparse.Namespace) -> ConnectionSettings:
    """The connection flags (and ``VISTAG_*`` variables) as settings."""
    return ConnectionSettings.from_env(
        urls=tuple(u.strip() for arg in (getattr(args, "url", None) or ()) for u in arg.split(",") if u.strip()),
        api_key=getattr(args, "api_key", None),
        username=getattr(args, "user", None), password=getattr(args, "password", None),
        ca_cert=getattr(args, "ca_cert", None), cloud_id=getattr(args, "cloud_id", None),
        bearer_token=getattr(args, "bearer_token", None), client_cert=getattr(args, "client_cert", None),
        client_key=getattr(args, "client_key", None), aws_sigv4=getattr(args, "aws_sigv4", None),
        aws_region=getattr(args, "aws_region", None),
        verify_tls=False if getattr(args, "no_verify_tls", False) else None,
        http_compress=True if getattr(args, "http_compress", False) else None,
    )


def connect(args: argparse.Namespace) -> EngineClient:
    """A client for ``--url``/``--cloud-id``/``VISTAG_URL``, else for the running local node of ``--engine``.

    ``--max-retries``, where the command has it, bounds the retries of every call
    (searches, ``_msearch``, ``_mget``), not only of bulk items.
    """
    settings = connection_settings(args)
    retry = RetryPolicy(max_retries=args.max_retries) if getattr(args, "max_retries", None) is not None else None
    if not settings.urls and not settings.cloud_id:
        cluster = LocalCluster.find(args.engine)
        urls = (cluster.urls if cluster else []) or [u for u in [LocalNode(args.engine).url] if u]
        if not urls:
            raise ConfigError(
                f"no engine URL: pass --url or set VISTAG_URL, or start a local node with `vistag engine start --engine {args.engine}`"
            )
        return connect_settings(replace(settings, urls=tuple(urls), engine=args.engine), retry=retry)
    return connect_settings(settings, retry=retry)


def is_model_dir(name: str | None) -> bool:
    """True when ``name`` is a directory written by ``vistag train``."""
    return bool(name) and (Path(name) / "vistag-model.json").is_file()


def image_only(model, command: str):
    """``model``, or a ConfigError when it is title-aware (``command`` has only images)."""
    if model is not None and model.title_column:
        raise ConfigError(f"this model is title-aware (it reads {model.title_column!r}): {command} has only images; "
                          "use an image-only model (trained without --title-aware)")
    return model


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


def embedding_cache_dir() -> Path:
    """Where the CLI keeps embedding caches (one folder per model below it)."""
    return vistag_home() / "cache" / "embeddings"


def embedding_cache(embedder):
    """The on-disk embedding cache of an embedder's model."""
    from vistag.models.cache import EmbeddingCache

    return EmbeddingCache(embedding_cache_dir(), embedder.model_id, embedder.dim)


def print_json(data: object) -> None:
    """Pretty JSON to stdout."""
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def default_relations_path() -> Path:
    """Where ``relations build`` writes and ``expand-tags`` reads by default."""
    return vistag_home() / "relations" / "tag-relations.npz"


def load_relations(path: str | None):
    """Tag relations saved by ``vistag relations build`` (default path when ``None``)."""
    from vistag.analyzers.relations import TagRelations

    path = Path(path) if path else default_relations_path()
    if not path.with_suffix(".json").is_file():
        raise ConfigError(f"no tag relations at {path}: run `vistag relations build --catalog ...` first")
    return TagRelations.load(path)


def print_hits(hits: list) -> None:
    """One line per :class:`~vistag.search.Hit`: rank, id, score, title, top tags."""
    if not hits:
        print("(no results)")
    for rank, hit in enumerate(hits, 1):
        tags = ", ".join(sorted(hit.source.get("tag_weights", {}), key=lambda t: -hit.source["tag_weights"][t])[:4])
        print(f"{rank:>3}. {hit.id:<8} {hit.score:8.4f}  {hit.title or ''}  [{tags}]")


def print_summary(summary) -> None:
    """Human-readable :class:`~vistag.indexer.pipeline.IndexSummary`."""
    rate = summary.indexed / summary.seconds if summary.seconds else 0.0
    print(f"index {summary.index}: read {summary.read}, indexed {summary.indexed}, skipped (already indexed) "
          f"{summary.skipped_existing}, failed {summary.failed}, dead-lettered {summary.dead_lettered} "
          f"in {summary.seconds:.1f}s ({rate:.1f} docs/s; {summary.embedded} images embedded, "
          f"{summary.cache_hits} from cache; reference set {summary.reference_size}; tagger {summary.tagger})")
    if summary.dead_lettered:
        print(f"bad rows written to {summary.dead_letter_path}" if summary.dead_letter_path else
              "bad rows: " + "; ".join(f"line {d['line']} ({d['stage']}): {d['reason']}" for d in summary.dead_letters[:20]))
    if summary.retries:
        print(f"{summary.retries} bulk items or requests were retried after 429/5xx or a lost connection")
    if summary.aborted:
        print(f"stopped early: {summary.aborted}\nrerun with --resume once the engine is back")
