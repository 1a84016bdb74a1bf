"""The ``vistag`` argument parser, apart from ``main`` so it can be tested and documented.

Each command module of :mod:`vistag.cli.commands` adds its own subparser
(``register``) and handler; this module only holds the global flags.
"""

from __future__ import annotations

import argparse

from vistag.version import __version__


def build_parser() -> argparse.ArgumentParser:
    """The full ``vistag`` parser (every command's handler is ``args.handler``).

    Examples:
        >>> build_parser().parse_args(["security", "roles", "--engine", "opensearch"]).action
        'roles'
    """
    from vistag.cli.commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog="vistag",
        description="Tag product images with a CNN and index them into Elasticsearch 8/9 or OpenSearch 2/3, "
        "through their official clients.",
    )
    parser.add_argument("--version", action="version", version=f"vistag {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors; no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser
