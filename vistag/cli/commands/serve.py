"""``vistag serve``: the demo storefront (see :mod:`vistag.service.storefront`)."""

from __future__ import annotations

import argparse
import os

from vistag.cli.options import add_connection, add_model, connect


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag serve``."""
    serve = sub.add_parser(
        "serve",
        help="a demo storefront page over a running engine",
        description="Serve a search page (search box, tag chips, image upload, thumbnails, "
        "similar products, expanded tags) and its JSON API (FastAPI; OpenAPI at /docs).",
    )
    add_connection(serve)
    add_model(serve)
    serve.add_argument("--index", default="products", help="index or alias (default %(default)s)")
    serve.add_argument(
        "--images",
        default=None,
        help="catalog images (folder or .tar) for thumbnails (default: the sample data's images.tar)",
    )
    serve.add_argument(
        "--relations",
        default=None,
        help="tag relations file (default: $VISTAG_HOME/relations/tag-relations.npz if present)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port, 0 for any free one (default %(default)s)")
    serve.add_argument(
        "--service",
        default=None,
        metavar="URL",
        help="embed image queries with a running `vistag service` instead of loading the model here",
    )
    serve.add_argument("--service-token", default=None, help="the service's bearer token (env VISTAG_SERVICE_TOKEN)")
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve the storefront until interrupted."""
    import uvicorn

    from vistag.config import default_data_dir, default_relations_path
    from vistag.service.storefront import create_storefront_app, open_storefront

    images = args.images
    sample = default_data_dir()
    if images is None and sample is not None and (sample / "images.tar").is_file():
        images = sample / "images.tar"
    relations = args.relations or (
        default_relations_path() if default_relations_path().with_suffix(".json").is_file() else None
    )
    app = open_storefront(
        connect(args),
        args.index,
        images=images,
        relations=relations,
        model=args.model,
        device=args.device,
        service_url=args.service,
        service_token=args.service_token or os.environ.get("VISTAG_SERVICE_TOKEN") or None,
    )
    print(
        f"vistag storefront on http://{args.host}:{args.port}/ (index '{args.index}'; thumbnails "
        f"{'on' if app.images else 'off'}; tag relations {'on' if app.relations else 'off'}); Ctrl-C stops"
    )
    uvicorn.run(create_storefront_app(app), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
