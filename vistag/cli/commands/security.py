"""``vistag security roles``: see :mod:`vistag.engine.roles`."""

from __future__ import annotations

import argparse

from vistag.cli.options import add_engine
from vistag.cli.output import print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag security roles``."""
    security = sub.add_parser(
        "security",
        help="least-privilege roles for vistag's indexer and a storefront",
        description="Print the role definitions a cluster admin installs: an indexer role "
        "(write and manage <index>*) and a storefront role (search and search "
        "templates on the alias only).",
    )
    actions = security.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("roles", help="print the indexer and storefront roles for --engine")
    add_engine(p, "engine")
    p.add_argument("--index", default="products", help="index name or prefix the indexer writes (default %(default)s)")
    p.add_argument("--alias", default=None, help="the name the storefront reads (default: --index)")
    p.add_argument("--json", action="store_true", help="print {role: body} as JSON instead of console requests")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the indexer and storefront roles of ``--engine``."""
    from vistag.engine.roles import console_text, role_definitions

    if args.json:
        print_json(role_definitions(args.engine, args.index, args.alias))
    else:
        print(console_text(args.engine, args.index, args.alias), end="")
    return 0
