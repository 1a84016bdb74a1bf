"""``vistag relations build`` and ``vistag expand-tags``.

References:
    A. Sahay, A. Bagree, K. Susanto, N. Padiyara, U. Chaturvedi, "Image Tagging for Search and Recommendation".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vistag.catalog.vocabulary import tags_from_labels
from vistag.cli.commands.common import connect, default_relations_path, load_relations, print_json
from vistag.errors import ConfigError
from vistag.catalog.rows import CatalogRow, read_catalog
from vistag.catalog.schema import CatalogSchema


def cmd_relations(args: argparse.Namespace) -> int:
    """Learn tag relations from a catalog's tags; save them and optionally store them in the engine."""
    from vistag.analyzers.relations import TagRelations

    schema = CatalogSchema.load(args.schema)
    columns = args.tag_columns or list(schema.tags)
    if not columns:
        raise ConfigError("the schema names no tag columns: pass --tag-columns")
    tag_sets = [tags_from_labels(r.fields, columns) for r in read_catalog(args.catalog, schema) if isinstance(r, CatalogRow)]
    encoder = None
    if not args.no_semantic:
        from vistag.models.text import TagNameEncoder

        encoder = TagNameEncoder(device=args.device)
    relations = TagRelations.fit(tag_sets, encoder, weight=args.weight, top_n=args.top_n, min_count=args.min_count)
    out = relations.save(Path(args.out) if args.out else default_relations_path())
    print(f"{len(relations.vocabulary)} tags from {len(tag_sets)} items "
          f"({'co-occurrence + semantic' if encoder else 'co-occurrence only'}), written to {out}")
    if args.install:
        from vistag.indexer.relations_index import write_relations

        client = connect(args)
        count = write_relations(client, relations, args.index)
        print(f"stored {count} tags in index '{args.index}' on {client.label}")
    return 0


def cmd_expand_tags(args: argparse.Namespace) -> int:
    """Related tags for the given tags (Sahay et al. recommendations)."""
    relations = load_relations(args.relations)
    unknown = [t for t in args.tags if t not in relations]
    if unknown and not args.json:
        print(f"unknown tags (no relations): {', '.join(unknown)}", file=sys.stderr)
    recs = relations.recommend(args.tags, cutoff=args.cutoff, limit=args.limit)
    rows = []
    for tag, score in recs:
        row = {"tag": tag, "score": score}
        if args.explain:
            row["because"] = {src: relations.explain(src, tag) for src in args.tags if src in relations}
        rows.append(row)
    if args.json:
        print_json({"tags": args.tags, "unknown": unknown, "cutoff": args.cutoff, "recommended": rows})
        return 0
    if not rows:
        print(f"no related tags above {args.cutoff}")
    for row in rows:
        line = f"{row['score']:7.3f}  {row['tag']}"
        if args.explain:
            parts = [f"{src}: cooc {e['cooccurrence']:.2f}, sem {e['semantic'] if e['semantic'] is not None else '-'}, "
                     f"blend {e['blended']:.2f}" for src, e in row["because"].items() if e["blended"] > 0]
            line += "   <- " + "; ".join(parts)
        print(line)
    return 0
