"""``vistag mappings show|install``."""

from __future__ import annotations

import argparse

from vistag.cli.commands.common import connect, print_json
from vistag.documents import DocumentSpec, EngineAdapter, index_template, install_index_template, install_search_templates
from vistag.documents.templates import search_templates
from vistag.models import get_config


def cmd_mappings(args: argparse.Namespace) -> int:
    """Render or install the templates."""
    spec = DocumentSpec(name=args.index, vector_dim=args.dim or get_config(args.model).embedding_dim,
                        vector_quantization=args.vector_quantization)
    if args.action == "show":
        if args.offline:
            adapter = EngineAdapter.for_engine(args.engine)
        else:
            adapter = EngineAdapter(connect(args).info())
        print_json({"engine": adapter.engine, "index_template": index_template(adapter, spec),
                    "search_templates": search_templates(adapter, spec), "limitations": adapter.limitations()})
        return 0
    client = connect(args)
    install_index_template(client, spec)
    ids = install_search_templates(client, spec)
    print(f"installed index template vistag-{spec.name} and {len(ids)} search templates {ids} on {client.label}")
    return 0
