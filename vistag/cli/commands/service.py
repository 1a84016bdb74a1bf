"""``vistag service``: the inference API (see :mod:`vistag.service.app`)."""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING

from vistag.cli.options import add_connection, add_model, connect, model_kwargs
from vistag.errors import ConfigError
from vistag.images.store import limits_from_env

if TYPE_CHECKING:  # pragma: no cover
    from vistag.service.app import ServiceConfig

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag service``."""
    service = sub.add_parser(
        "service",
        help="the inference API (embed, tag, analyze) a storefront or an engine calls",
        description="Serve POST /v1/embed, /v1/tag and /v1/analyze (one image or a batch; raw "
        "bytes, base64 or allowed URLs), /healthz, /readyz and /metrics, with "
        "concurrent requests micro-batched into one forward pass. OpenAPI at /docs.",
    )
    add_connection(service)
    add_model(service)
    tags = service.add_argument_group("tags (one source, optional)")
    tags.add_argument("--reference", default=None, help="labelled catalog whose kNN tags /v1/tag gives")
    tags.add_argument("--reference-images", default=None, help="images of --reference (folder or .tar)")
    tags.add_argument(
        "--reference-index", default=None, metavar="INDEX", help="labelled index the engine searches for the kNN"
    )
    tags.add_argument(
        "--schema", default="fashion-product-images", help="schema of the reference (default %(default)s)"
    )
    tags.add_argument("--k", type=int, default=10, help="neighbours for kNN tags (default %(default)s)")
    tags.add_argument("--top-d", type=int, default=10, help="tags kept per image (default %(default)s)")
    net = service.add_argument_group("network and limits")
    net.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s)")
    net.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    net.add_argument("--token", default=None, help="bearer token clients must send (env VISTAG_SERVICE_TOKEN)")
    net.add_argument(
        "--allow-url-host",
        action="append",
        metavar="HOST",
        help="host whose image URLs may be fetched (repeatable; *.example.com for subdomains); none by default",
    )
    net.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="let allowed hosts resolve to loopback/private/link-local addresses (refused by default)",
    )
    net.add_argument("--url-timeout", type=float, default=5.0, help="seconds per image URL fetch (default %(default)s)")
    net.add_argument("--max-body-mb", type=int, default=24, help="largest request body in MiB (default %(default)s)")
    net.add_argument("--max-image-mb", type=int, default=16, help="largest encoded image in MiB (default %(default)s)")
    net.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="largest decoded image in pixels (env VISTAG_MAX_IMAGE_PIXELS, default 40,000,000)",
    )
    net.add_argument("--max-images", type=int, default=32, help="most images per request (default %(default)s)")
    batch = service.add_argument_group("micro-batching")
    batch.add_argument("--max-batch", type=int, default=32, help="images per forward pass (default %(default)s)")
    batch.add_argument(
        "--max-wait-ms", type=float, default=5.0, help="how long a batch waits to fill (default %(default)s)"
    )
    batch.add_argument("--no-batching", action="store_true", help="one forward per image")
    service.set_defaults(handler=run)


def service_config(args: argparse.Namespace) -> ServiceConfig:
    """The :class:`~vistag.service.app.ServiceConfig` the flags (and ``VISTAG_*`` variables) describe.

    Raises:
        ConfigError: ``--allow-private-urls`` without hosts.
    """
    from vistag.service.app import ServiceConfig
    from vistag.service.fetch import UrlPolicy
    from vistag.service.inputs import Limits

    if args.allow_private_urls and not args.allow_url_host:
        raise ConfigError("--allow-private-urls only widens --allow-url-host; name the hosts too")
    max_pixels = args.max_pixels
    if max_pixels is None:  # the service's own default is lower than the indexer's
        max_pixels = limits_from_env()[0] if os.environ.get("VISTAG_MAX_IMAGE_PIXELS") else Limits.max_pixels
    return ServiceConfig(
        limits=Limits(
            max_body_bytes=args.max_body_mb * 1024 * 1024,
            max_image_bytes=args.max_image_mb * 1024 * 1024,
            max_pixels=max_pixels,
            max_images=args.max_images,
        ),
        urls=UrlPolicy(
            tuple(args.allow_url_host or ()), allow_private=args.allow_private_urls, timeout=args.url_timeout
        ),
        token=args.token or os.environ.get("VISTAG_SERVICE_TOKEN") or None,
        max_batch=1 if args.no_batching else args.max_batch,
        max_wait_ms=args.max_wait_ms,
    )


def run(args: argparse.Namespace) -> int:
    """Serve the inference API until interrupted."""
    try:
        import uvicorn

        from vistag.service.app import create_app
        from vistag.service.model import build_inference_model
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(f"the service extra is not installed ({exc}); run `pip install 'vistag[service]'`") from None
    from vistag.config import embedding_cache_dir

    config = service_config(args)
    kwargs = model_kwargs(args)
    kwargs.pop("weights", None)
    kwargs.pop("input_size", None)
    model = build_inference_model(
        args.model,
        reference=args.reference,
        reference_images=args.reference_images,
        reference_index=args.reference_index,
        client=connect(args) if args.reference_index else None,
        schema=args.schema,
        k=args.k,
        top_d=args.top_d,
        cache_dir=embedding_cache_dir(),
        **kwargs,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and not config.token:
        logger.warning("the service listens on %s with no --token: anyone who reaches it can use it", args.host)
    print(
        f"vistag service on http://{args.host}:{args.port}/ (model {model.info['version']}, "
        f"tagger {model.info.get('tagger', 'none')}, batches of up to {config.max_batch}); OpenAPI at /docs"
    )
    uvicorn.run(
        create_app(model, config), host=args.host, port=args.port, log_level="warning", access_log=False, workers=1
    )
    return 0
