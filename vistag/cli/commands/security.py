"""``vistag security roles``."""

from __future__ import annotations

import argparse

from vistag.cli.commands.common import print_json
from vistag.engine.roles import console_text, role_definitions


def cmd_security(args: argparse.Namespace) -> int:
    """Print the indexer and storefront roles of ``--engine``."""
    if args.json:
        print_json(role_definitions(args.engine, args.index, args.alias))
    else:
        print(console_text(args.engine, args.index, args.alias), end="")
    return 0
