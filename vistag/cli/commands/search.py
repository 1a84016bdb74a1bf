"""``vistag search``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vistag.cli.commands.common import connect, make_embedder, print_hits, print_json
from vistag.errors import ConfigError
from vistag.images import ImageLoadError, ImageStore
from vistag.search import Searcher


def parse_tags(items: list[str]) -> dict[str, float]:
    """``["tshirts", "casual:0.5"]`` -> ``{"tshirts": 1.0, "casual": 0.5}``."""
    out: dict[str, float] = {}
    for item in items:
        tag, _, weight = item.partition(":")
        try:
            out[tag.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError(f"bad tag weight in {item!r}; use TAG or TAG:WEIGHT") from None
    return out


def parse_filters(items: list[str]) -> dict[str, str]:
    """``["gender=Men"]`` -> ``{"gender": "Men"}``."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"bad filter {item!r}; use NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``"text=1,image=0.5"`` -> ``{"text": 1.0, "image": 0.5}``."""
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


def image_vector(args: argparse.Namespace):
    """The embedding of ``--image`` (a file or an http(s) URL) with the ``--model`` flags."""
    try:
        loaded = ImageStore().load(args.image)
    except ImageLoadError as exc:
        raise ConfigError(str(exc)) from None
    return make_embedder(args).embed_images([loaded.image])[0]


def load_text_image(args: argparse.Namespace, index_dim: int):
    """The ``--text-image`` projection, checked against the index's vector size (imports torch)."""
    from vistag.models.text_image import CONFIG_FILE, TextImageProjection

    path = Path(args.text_image)
    if not (path / CONFIG_FILE).is_file() and (path / "text-image" / CONFIG_FILE).is_file():
        path = path / "text-image"  # a model directory trained with --text-image
    try:
        projection = TextImageProjection.load(path)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    if projection.config.image_dim != index_dim:
        raise ConfigError(f"{path} projects into {projection.config.image_dim}-d {projection.config.image_model_id} "
                          f"vectors, the index holds {index_dim}-d vectors: train it on the index's backbone")
    return projection


def cmd_search(args: argparse.Namespace) -> int:
    """Run one query and print the hits."""
    kinds = [k for k in ("query", "tags", "image") if getattr(args, k)]
    if args.similar and kinds:
        raise ConfigError("--similar cannot be combined with --query, --tags or --image")
    if not args.similar and not kinds:
        raise ConfigError("give --query, --tags, --image (any combination: hybrid) or --similar ID")
    client = connect(args)
    searcher = Searcher(client, args.index)
    filters = parse_filters(args.filter)
    where = {"category": args.category, "attributes": filters}
    relations = None
    if args.expand or (args.expand is None and (args.tags or args.text_image)):
        from vistag.cli.commands.common import default_relations_path, load_relations

        path = args.relations or default_relations_path()
        if args.expand or Path(path).with_suffix(".json").is_file():
            relations = load_relations(str(path))
    tags = parse_tags(args.tags) if args.tags else None
    vector = image_vector(args) if args.image else None
    if args.text_image:
        if not args.query or args.image or args.similar:
            raise ConfigError("--text-image adds a text->image list to --query (and cannot be combined with --image)")
        if args.tags:
            raise ConfigError("--text-image reads the query's tags itself: leave out --tags")
        projection = load_text_image(args, searcher.spec.vector_dim)
        weights = parse_weights(args.fusion_weights)
        site = searcher.fusion_site(args.fusion, weights) if args.fusion_site == "auto" else args.fusion_site
        hits = searcher.text(args.query, projection, relations, size=args.k, offset=args.offset, fusion=args.fusion,
                             weights=weights, where=site, **where)
        print(f"fusion: {args.fusion} of BM25, query tags and text->image kNN, "
              + ("inside the engine" if site == "engine" else "client-side"), file=sys.stderr)
    elif args.similar:
        try:
            hits = searcher.similar(args.similar, k=args.k, num_candidates=args.num_candidates, **where)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from None
    elif len(kinds) > 1:
        weights = parse_weights(args.fusion_weights)
        site = searcher.fusion_site(args.fusion, weights) if args.fusion_site == "auto" else args.fusion_site
        hits = searcher.hybrid(args.query, tags, vector, size=args.k, offset=args.offset, fusion=args.fusion,
                               weights=weights, relations=relations, where=site, **where)
        print(f"fusion: {args.fusion}, " + ("inside the engine (neural-search search pipeline)" if site == "engine"
                                            else "client-side (this cluster cannot fuse it)" if args.fusion_site == "auto"
                                            else "client-side"), file=sys.stderr)
    elif args.query:
        hits = searcher.keyword(args.query, size=args.k, offset=args.offset, **where)
    elif tags:
        hits = searcher.tags(tags, size=args.k, offset=args.offset, relations=relations, **where)
    else:
        hits = searcher.image(vector, k=args.k, num_candidates=args.num_candidates, **where)
    if args.json:
        print_json([h.to_dict() for h in hits])
    else:
        print_hits(hits)
    return 0


def cmd_check_tags(args: argparse.Namespace) -> int:
    """Seller tag check; prints JSON."""
    from vistag.search.seller_check import check_seller_tags

    result = check_seller_tags(Searcher(connect(args), args.index), image_vector(args), args.tags, k=args.k)
    print_json(result.to_dict())
    return 0
