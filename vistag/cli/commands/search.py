"""``vistag search`` and ``vistag check-tags``: see :class:`vistag.search.queries.Searcher`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vistag.cli.options import add_connection, add_model, connect, model_kwargs
from vistag.cli.output import print_hits, print_json
from vistag.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag search`` and ``vistag check-tags``."""
    search = sub.add_parser(
        "search",
        help="keyword, tag, image, hybrid or similar-product search",
        description="Search the index by keywords, weighted tags or an image; give more than one "
        "of --query/--tags/--image for a hybrid query fused with --fusion; or "
        "--similar ID for products like a given one.",
    )
    add_connection(search)
    add_model(search)
    search.add_argument("--query", help="keyword query (BM25 on title and text)")
    search.add_argument("--tags", nargs="+", metavar="TAG[:WEIGHT]", help="tags, e.g. tshirts casual:0.5")
    search.add_argument("--image", help="query image: a file path or an http(s) URL")
    search.add_argument(
        "--text-image",
        metavar="DIR",
        default=None,
        help="a text->image projection (a model directory trained with --text-image, or its "
        "text-image folder): --query runs the default hybrid, BM25 + query tags (the words that "
        "are tags and the tags the projection reads) + text->image kNN",
    )
    search.add_argument("--similar", metavar="ID", help="products similar to this product id (image + shared tags)")
    search.add_argument(
        "--fusion",
        choices=("rrf", "weighted"),
        default="rrf",
        help="how a hybrid query's lists are fused (default %(default)s)",
    )
    search.add_argument(
        "--fusion-weights", default=None, metavar="text=W,tags=W,image=W", help="per-list fusion weights"
    )
    search.add_argument(
        "--fusion-site",
        choices=("auto", "engine", "client"),
        default="auto",
        help="fuse inside the engine (OpenSearch + neural-search) or here; auto: the engine when it can",
    )
    search.add_argument(
        "--expand",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="query-time tag expansion with the tag relations (default: on when a relations file exists)",
    )
    search.add_argument(
        "--relations",
        default=None,
        help="relations file for --expand (default: $VISTAG_HOME/relations/tag-relations.npz)",
    )
    search.add_argument("--index", default="products", help="index or alias (default %(default)s)")
    search.add_argument("--k", type=int, default=10, help="results (kNN k for --image) (default %(default)s)")
    search.add_argument("--from", dest="offset", type=int, default=0, help="offset for paging (keyword/tags)")
    search.add_argument(
        "--num-candidates", type=int, default=None, help="HNSW candidates for --image (default max(100, 2k))"
    )
    search.add_argument("--category", default=None, help='category path prefix filter, e.g. "Apparel > Topwear"')
    search.add_argument(
        "--filter", action="append", default=[], metavar="NAME=VALUE", help="attribute filter, repeatable"
    )
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(handler=run_search)

    check = sub.add_parser(
        "check-tags",
        help="which of a seller's tags does the product photo support?",
        description="Compare a seller's tags with the tags of the photo's nearest catalog products: "
        "supported, weak, contradicted, unknown, and tags to add (JSON).",
    )
    add_connection(check)
    add_model(check)
    check.add_argument("--image", required=True, help="the product photo (file or http(s) URL)")
    check.add_argument("--tags", nargs="+", required=True, metavar="TAG", help="the seller's tags")
    check.add_argument("--index", default="products", help="index or alias (default %(default)s)")
    check.add_argument("--k", type=int, default=20, help="neighbours that vote (default %(default)s)")
    check.set_defaults(handler=run_check_tags)


def parse_tags(items: list[str]) -> dict[str, float]:
    """``["tshirts", "casual:0.5"]`` -> ``{"tshirts": 1.0, "casual": 0.5}``.

    Raises:
        ConfigError: a weight that is not a number.
    """
    out: dict[str, float] = {}
    for item in items:
        tag, _, weight = item.partition(":")
        try:
            out[tag.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError(f"bad tag weight in {item!r}; use TAG or TAG:WEIGHT") from None
    return out


def parse_filters(items: list[str]) -> dict[str, str]:
    """``["gender=Men"]`` -> ``{"gender": "Men"}``.

    Raises:
        ConfigError: an item without ``=``.
    """
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"bad filter {item!r}; use NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``"text=1,image=0.5"`` -> ``{"text": 1.0, "image": 0.5}``.

    Raises:
        ConfigError: an unknown list or a bad weight.
    """
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in ("text", "tags", "image"):
            raise ConfigError(f"bad --fusion-weights item {part!r}; use text=W,tags=W,image=W")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"bad weight in {part!r}") from None
    return out


def _embedder(args: argparse.Namespace) -> Any:
    from vistag.models.loading import load_model

    return load_model(args.model, **model_kwargs(args)).embedder


def run_search(args: argparse.Namespace) -> int:
    """Run one query and print the hits."""
    from vistag.config import default_relations_path
    from vistag.search.queries import Searcher

    kinds = [k for k in ("query", "tags", "image") if getattr(args, k)]
    if args.similar and kinds:
        raise ConfigError("--similar cannot be combined with --query, --tags or --image")
    if not args.similar and not kinds:
        raise ConfigError("give --query, --tags, --image (any combination: hybrid) or --similar ID")
    if args.text_image and (not args.query or args.image or args.tags):
        raise ConfigError(
            "--text-image reads the query's tags and adds a text->image list to --query alone "
            "(leave out --tags and --image)"
        )
    searcher = Searcher(connect(args), args.index, embedder=_embedder(args) if args.image else None)
    where = {"category": args.category, "attributes": parse_filters(args.filter)}
    relations = None
    path = Path(args.relations) if args.relations else default_relations_path()
    if args.expand or (args.expand is None and (args.tags or args.text_image) and path.with_suffix(".json").is_file()):
        from vistag.analyzers.relations import TagRelations

        if not path.with_suffix(".json").is_file():
            raise ConfigError(f"no tag relations at {path}: run `vistag relations build --catalog ...` first")
        relations = TagRelations.load(path)
    tags = parse_tags(args.tags) if args.tags else None
    weights = parse_weights(args.fusion_weights)
    site = searcher.fusion_site(args.fusion, weights) if args.fusion_site == "auto" else args.fusion_site
    if args.text_image:
        from vistag.models.text_image import load_projection

        projection = load_projection(args.text_image, searcher.spec.vector_dim)
        hits = searcher.text(
            args.query,
            projection,
            relations,
            size=args.k,
            offset=args.offset,
            fusion=args.fusion,
            weights=weights,
            where=site,
            **where,
        )
        print(
            f"fusion: {args.fusion} of BM25, query tags and text->image kNN, "
            + ("inside the engine" if site == "engine" else "client-side"),
            file=sys.stderr,
        )
    elif args.similar:
        hits = searcher.similar(args.similar, k=args.k, num_candidates=args.num_candidates, **where)
    elif len(kinds) > 1:
        hits = searcher.hybrid(
            args.query,
            tags,
            args.image,
            size=args.k,
            offset=args.offset,
            fusion=args.fusion,
            weights=weights,
            relations=relations,
            where=site,
            **where,
        )
        print(
            f"fusion: {args.fusion}, "
            + (
                "inside the engine (neural-search search pipeline)"
                if site == "engine"
                else "client-side (this cluster cannot fuse it)"
                if args.fusion_site == "auto"
                else "client-side"
            ),
            file=sys.stderr,
        )
    elif args.query:
        hits = searcher.keyword(args.query, size=args.k, offset=args.offset, **where)
    elif tags:
        hits = searcher.tags(tags, size=args.k, offset=args.offset, relations=relations, **where)
    else:
        hits = searcher.image(args.image, k=args.k, num_candidates=args.num_candidates, **where)
    if args.json:
        print_json([h.to_dict() for h in hits])
    else:
        print_hits(hits)
    return 0


def run_check_tags(args: argparse.Namespace) -> int:
    """Seller tag check; prints JSON."""
    from vistag.search.queries import Searcher
    from vistag.search.seller_check import check_seller_tags

    searcher = Searcher(connect(args), args.index, embedder=_embedder(args))
    print_json(check_seller_tags(searcher, args.image, args.tags, k=args.k).to_dict())
    return 0
