"""``vistag mappings show|install``: see :mod:`vistag.documents.templates`."""

from __future__ import annotations

import argparse
import os

from vistag.cli.options import add_connection, connect
from vistag.cli.output import print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag mappings``."""
    mappings = sub.add_parser(
        "mappings",
        help="show or install the index template and search templates",
        description="Render the index template and stored search templates, or install them.",
    )
    actions = mappings.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("show", "print the index template and search templates as JSON"),
        ("install", "install the index template and search templates on the cluster"),
    ):
        p = actions.add_parser(action, help=text, description=text)
        add_connection(p)
        p.add_argument("--index", default="products", help="index/alias name (default %(default)s)")
        p.add_argument("--dim", type=int, default=None, help="vector dimension (default: the model's)")
        p.add_argument(
            "--vector-quantization",
            choices=("none", "int8"),
            default="none",
            help="float HNSW (none) or int8 scalar-quantized HNSW (default %(default)s)",
        )
        p.add_argument(
            "--model",
            default=os.environ.get("VISTAG_MODEL", "efficientnet-lite0"),
            help="backbone whose dimension to use (env VISTAG_MODEL, default %(default)s)",
        )
        if action == "show":
            p.add_argument(
                "--offline", action="store_true", help="render for --engine with all modules, without a cluster"
            )
        p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Render or install the templates."""
    from vistag.documents.templates import install_templates, render_templates, spec_for

    spec = spec_for(args.index, vector_dim=args.dim, model=args.model, vector_quantization=args.vector_quantization)
    if args.action == "show":
        print_json(render_templates(args.engine if args.offline else connect(args), spec))
        return 0
    client = connect(args)
    ids = install_templates(client, args.index, spec.vector_dim, vector_quantization=args.vector_quantization)
    print(f"installed index template vistag-{spec.name} and {len(ids)} search templates {ids} on {client.label}")
    return 0
