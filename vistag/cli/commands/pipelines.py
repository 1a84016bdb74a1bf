"""``vistag pipelines install``: see :mod:`vistag.pipelines`."""

from __future__ import annotations

import argparse
import os

from vistag.cli.options import add_connection, connect
from vistag.cli.output import print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag pipelines install``."""
    pipelines = sub.add_parser(
        "pipelines",
        help="engine-side pipelines that call `vistag service` (OpenSearch + ml-commons)",
        description="Register the service as an ml-commons remote model and install an ingest "
        "pipeline (the index's default: raw rows written with a plain _bulk get "
        "vectors and tags) and a search pipeline (query by an image in the "
        "request).",
    )
    actions = pipelines.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("install", help="register the service and install the pipelines of --index")
    add_connection(p)
    p.add_argument("--index", default="products", help="index to wire (default %(default)s)")
    p.add_argument("--service", required=True, metavar="URL", help="where the engine reaches `vistag service`")
    p.add_argument("--service-token", default=None, help="the service's bearer token (env VISTAG_SERVICE_TOKEN)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Wire ``--index`` to a running ``vistag service``; prints what was created."""
    from vistag.pipelines import image_query, install_inference

    token = args.service_token or os.environ.get("VISTAG_SERVICE_TOKEN") or None
    setup = install_inference(connect(args), args.index, args.service, token)
    print_json(
        {
            **setup.to_dict(),
            "example_image_search": {
                "path": f"POST {args.index}/_search?search_pipeline={setup.search_pipeline}",
                "body": image_query("<image URL or base64>", k=10),
            },
        }
    )
    return 0
