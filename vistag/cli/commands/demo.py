"""``vistag demo``: see :func:`vistag.demo.run_demo`."""

from __future__ import annotations

import argparse
import os

from vistag.cli.options import add_engine, add_runtime, progress
from vistag.cli.output import print_hits, print_summary


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag demo``."""
    demo = sub.add_parser(
        "demo",
        help="end to end: local engine, sample catalog, example queries",
        description="Start a local node, index a sample of the fashion catalog and run example queries.",
    )
    group = demo.add_argument_group("model")
    group.add_argument(
        "--model",
        default=os.environ.get("VISTAG_MODEL", "efficientnet-lite0"),
        help="backbone name (env VISTAG_MODEL, default %(default)s)",
    )
    add_runtime(group)
    add_engine(demo, "local engine")
    demo.add_argument(
        "--data", default=None, help="fashion-product-images folder (default $VISTAG_DATA or ../shared/data/...)"
    )
    demo.add_argument("--size", type=int, default=600, help="sample rows to index (default %(default)s)")
    demo.add_argument("--index", default="demo-products", help="index name (default %(default)s)")
    demo.add_argument("--stop", action="store_true", help="stop the engine at the end")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Start the local engine, index a sample, print example queries."""
    from vistag.demo import run_demo

    print(f"== starting a local {args.engine} node and indexing {args.size} products into '{args.index}'")
    result = run_demo(
        args.engine,
        data=args.data,
        size=args.size,
        index=args.index,
        model=args.model,
        device=args.device,
        batch_size=args.batch_size,
        stop=args.stop,
        progress=progress(args),
    )
    print(f"   {result.url} ({result.engine})")
    print_summary(result.summary)
    if not result.summary.ok:
        return 1
    for section in result.sections:
        print(f"\n== {section.title}")
        if section.note:
            print(f"   {section.note}")
        else:
            print_hits(section.hits)
    print(
        f"\n== done in {result.seconds:.1f}s; "
        + ("the node was stopped" if args.stop else f"the node keeps running at {result.url}")
    )
    print(f"   try: vistag search --engine {args.engine} --index {args.index} --query 'red shirt'")
    return 0
