"""``vistag serve``: the demo storefront."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from vistag.cli.commands.common import connect, default_relations_path, make_embedder
from vistag.config import default_data_dir
from vistag.images import ImageStore
from vistag.search import Searcher

logger = logging.getLogger(__name__)


def build_storefront(args: argparse.Namespace):
    """The :class:`~vistag.service.storefront.Storefront` the flags describe."""
    from vistag.service.storefront import Storefront

    client = connect(args)
    searcher = Searcher(client, args.index)
    images = args.images
    if images is None and default_data_dir() is not None:
        images = default_data_dir() / "images.tar"
    store = ImageStore(images) if images and Path(images).exists() else None
    relations = None
    path = Path(args.relations) if args.relations else default_relations_path()
    if path.with_suffix(".json").is_file():
        from vistag.analyzers.relations import TagRelations

        relations = TagRelations.load(path)
    if args.service:
        from vistag.service.remote import service_embedder

        token = args.service_token or os.environ.get("VISTAG_SERVICE_TOKEN") or None
        return Storefront(searcher, store, service_embedder(args.service, token), relations)
    embedder = {}

    def embed(image):
        if "model" not in embedder:  # loads torch on the first image query only
            embedder["model"] = make_embedder(args)
        return embedder["model"].embed_images([image])[0].tolist()

    return Storefront(searcher, store, embed, relations)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the storefront until interrupted."""
    from vistag.service.storefront import serve

    app = build_storefront(args)
    server = serve(app, args.host, args.port)
    print(f"vistag storefront on http://{args.host}:{server.server_address[1]}/ (index '{args.index}'; "
          f"thumbnails {'on' if app.images else 'off'}; tag relations {'on' if app.relations else 'off'}); Ctrl-C stops")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
