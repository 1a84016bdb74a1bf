"""``vistag relations build`` and ``vistag expand-tags``: see :mod:`vistag.analyzers.relations`.

References:
    A. Sahay, A. Bagree, K. Susanto, N. Padiyara, U. Chaturvedi, "Image Tagging for Search and Recommendation".
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vistag.cli.options import add_connection, connect
from vistag.cli.output import print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag relations build`` and ``vistag expand-tags``."""
    rel = sub.add_parser(
        "relations",
        help="learn tag relations (co-occurrence + tag-name semantics) from a catalog",
        description="Build the sparse tag co-occurrence cosine matrix of a catalog's tags, blend it with the "
        "semantic similarity of the tag names (sentence-transformers, offline), save it, and with "
        "--install store it in the engine's tag_relations index.",
    )
    add_connection(rel)
    rel.add_argument("action", choices=("build",), help="build (and optionally --install) the relations")
    rel.add_argument("--catalog", required=True, help="labelled catalog (.csv, .tsv, .jsonl)")
    rel.add_argument(
        "--schema", default="fashion-product-images", help="schema file or bundled name (default %(default)s)"
    )
    rel.add_argument("--tag-columns", nargs="*", default=None, help="tag columns (default: the schema's tags)")
    rel.add_argument("--out", default=None, help="relations file (default $VISTAG_HOME/relations/tag-relations.npz)")
    rel.add_argument("--no-semantic", action="store_true", help="co-occurrence only (no sentence-transformers)")
    rel.add_argument(
        "--weight", type=float, default=0.7, help="co-occurrence weight in the blend (default %(default)s)"
    )
    rel.add_argument("--top-n", type=int, default=50, help="relations kept per tag (default %(default)s)")
    rel.add_argument("--min-count", type=int, default=1, help="leave out tags on fewer items (default %(default)s)")
    rel.add_argument("--install", action="store_true", help="also store the relations in the engine")
    rel.add_argument("--index", default="tag_relations", help="relations index (default %(default)s)")
    rel.add_argument(
        "--device", default=os.environ.get("VISTAG_DEVICE", "cpu"), help="text encoder device (default %(default)s)"
    )
    rel.set_defaults(handler=run_relations)

    exp = sub.add_parser(
        "expand-tags",
        help="related tags for some tags (recommendations)",
        description="Accumulate each related tag's similarity over the given tags, leave out the "
        "given tags, keep those above --cutoff, best first (Sahay et al.).",
    )
    exp.add_argument("tags", nargs="+", metavar="TAG", help="tag slugs, e.g. sneakers men")
    exp.add_argument(
        "--relations", default=None, help="relations file (default $VISTAG_HOME/relations/tag-relations.npz)"
    )
    exp.add_argument("--cutoff", type=float, default=0.2, help="minimum accumulated similarity (default %(default)s)")
    exp.add_argument("--limit", type=int, default=20, help="most tags shown (default %(default)s)")
    exp.add_argument(
        "--explain", action="store_true", help="show co-occurrence / semantic / blended similarity per source tag"
    )
    exp.add_argument("--json", action="store_true", help="print JSON")
    exp.set_defaults(handler=run_expand_tags)


def run_relations(args: argparse.Namespace) -> int:
    """Learn tag relations from a catalog's tags; save them and optionally store them in the engine."""
    from vistag.analyzers.relations import build_relations
    from vistag.config import default_relations_path

    relations = build_relations(
        args.catalog,
        schema=args.schema,
        tag_columns=args.tag_columns,
        semantic=not args.no_semantic,
        weight=args.weight,
        top_n=args.top_n,
        min_count=args.min_count,
        device=args.device,
    )
    out = relations.save(Path(args.out) if args.out else default_relations_path())
    print(
        f"{len(relations.vocabulary)} tags from the catalog's items "
        f"({'co-occurrence + semantic' if relations.semantic is not None else 'co-occurrence only'}), "
        f"written to {out}"
    )
    if args.install:
        from vistag.indexer.relations_index import write_relations

        client = connect(args)
        count = write_relations(client, relations, args.index)
        print(f"stored {count} tags in index '{args.index}' on {client.label}")
    return 0


def run_expand_tags(args: argparse.Namespace) -> int:
    """Related tags for the given tags (Sahay et al. recommendations)."""
    from vistag.analyzers.relations import TagRelations
    from vistag.config import default_relations_path
    from vistag.errors import ConfigError

    path = Path(args.relations) if args.relations else default_relations_path()
    if not path.with_suffix(".json").is_file():
        raise ConfigError(f"no tag relations at {path}: run `vistag relations build --catalog ...` first")
    relations = TagRelations.load(path)
    unknown = [t for t in args.tags if t not in relations]
    if unknown and not args.json:
        print(f"unknown tags (no relations): {', '.join(unknown)}", file=sys.stderr)
    rows = []
    for tag, score in relations.recommend(args.tags, cutoff=args.cutoff, limit=args.limit):
        row: dict[str, object] = {"tag": tag, "score": score}
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
            because: dict[str, dict[str, float]] = row["because"]  # type: ignore[assignment]
            parts = [
                f"{src}: cooc {e['cooccurrence']:.2f}, sem {e['semantic'] if e['semantic'] is not None else '-'}, "
                f"blend {e['blended']:.2f}"
                for src, e in because.items()
                if e["blended"] > 0
            ]
            line += "   <- " + "; ".join(parts)
        print(line)
    return 0
