"""``vistag pipelines install``: see :mod:`vistag.pipelines`."""

from __future__ import annotations

import argparse
import os

from vistag.cli.commands.common import connect, print_json


def cmd_pipelines(args: argparse.Namespace) -> int:
    """Wire ``--index`` to a running ``vistag service``; prints what was created."""
    from vistag.pipelines import image_query, install_inference

    token = args.service_token or os.environ.get("VISTAG_SERVICE_TOKEN") or None
    setup = install_inference(connect(args), args.index, args.service, token)
    print_json({**setup.to_dict(), "example_image_search": {
        "path": f"POST {args.index}/_search?search_pipeline={setup.search_pipeline}",
        "body": image_query("<image URL or base64>", k=10)}})
    return 0
