"""``vistag service``: the inference API (see :mod:`vistag.service.app`)."""

from __future__ import annotations

import argparse
import logging
import os

from vistag.cli.commands.common import (connect, embedding_cache_dir, image_only, is_model_dir, load_tagging_model,
                                       make_embedder)
from vistag.errors import ConfigError

logger = logging.getLogger(__name__)


def build_model(args: argparse.Namespace):
    """The :class:`~vistag.service.model.InferenceModel` the flags describe (loads torch)."""
    from vistag.analyzers.taggers import ModelDocumentTagger
    from vistag.catalog.schema import CatalogSchema
    from vistag.service.model import InferenceModel

    trained = image_only(load_tagging_model(args.model) if is_model_dir(args.model) else None, "the inference service")
    embedder = make_embedder(args, trained)
    sources = [bool(args.reference), bool(args.reference_index), trained is not None]
    if sum(sources) > 1:
        raise ConfigError("give one tag source: --reference FILE, --reference-index INDEX or --model MODEL_DIR")
    tagger, ready = None, None
    schema = CatalogSchema.load(args.schema)
    if trained is not None:
        tagger = ModelDocumentTagger(trained, None, top_d=args.top_d)
    elif args.reference:
        from vistag.indexer.api import Tagger

        tagger = Tagger(args.reference, args.reference_images, schema=schema, model=embedder, k=args.k,
                        top_d=args.top_d, cache_dir=embedding_cache_dir()).document_tagger()
    elif args.reference_index:
        from vistag.cli.commands.index import reference_index_tagger
        from vistag.indexer.options import IndexOptions
        from vistag.engine.client import EngineClient
        from vistag.engine.retry import RetryPolicy
        from vistag.errors import VistagError

        client = connect(args)
        probe = EngineClient(client.raw, retry=RetryPolicy(max_retries=0), label=client.label)
        tagger = reference_index_tagger(client, args.reference_index, schema, embedder.dim,
                                        IndexOptions(k=args.k, top_d=args.top_d))

        def ready() -> str | None:
            try:
                probe.cluster_health(timeout="2s")
            except VistagError as exc:
                return f"the engine holding {args.reference_index!r} does not answer: {exc}"
            return None
    return InferenceModel(embedder, tagger, ready)


def cmd_service(args: argparse.Namespace) -> int:
    """Serve the inference API until interrupted."""
    try:
        import uvicorn

        from vistag.service.app import ServiceConfig, create_app
        from vistag.service.fetch import UrlPolicy
        from vistag.service.inputs import Limits
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(f"the service extra is not installed ({exc}); run `pip install 'vistag[service]'`") from None
    token = args.token or os.environ.get("VISTAG_SERVICE_TOKEN") or None
    if args.allow_private_urls and not args.allow_url_host:
        raise ConfigError("--allow-private-urls only widens --allow-url-host; name the hosts too")
    config = ServiceConfig(
        limits=Limits(max_body_bytes=args.max_body_mb * 1024 * 1024, max_image_bytes=args.max_image_mb * 1024 * 1024,
                      max_pixels=args.max_pixels, max_images=args.max_images),
        urls=UrlPolicy(tuple(args.allow_url_host or ()), allow_private=args.allow_private_urls,
                       timeout=args.url_timeout),
        token=token, max_batch=1 if args.no_batching else args.max_batch, max_wait_ms=args.max_wait_ms,
    )
    model = build_model(args)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        logger.warning("the service listens on %s with no --token: anyone who reaches it can use it", args.host)
    print(f"vistag service on http://{args.host}:{args.port}/ (model {model.info['version']}, "
          f"tagger {model.info.get('tagger', 'none')}, batches of up to {config.max_batch}); OpenAPI at /docs")
    uvicorn.run(create_app(model, config), host=args.host, port=args.port, log_level="warning",
                access_log=False, workers=1)
    return 0
