"""One module per command (or family): ``register(subparsers)`` adds its flags, its handler parses nothing more, calls
one public function and prints.

The order of :data:`COMMANDS` is the order of ``vistag --help``.
"""

from vistag.cli.commands import (
    demo,
    engine,
    index,
    mappings,
    models,
    pipelines,
    relations,
    relevance,
    search,
    security,
    serve,
    service,
)

COMMANDS = (engine, security, mappings, index, search, models, relations, relevance, serve, service, pipelines, demo)

__all__ = ["COMMANDS"]
