"""Tagging accuracy against the papers vistag builds on, on ../shared/data/fashion-product-images.

Runs the real CLI (``vistag train`` then ``vistag eval``) twice on the catalog's own
split (``split`` column: ``test`` when ``id % 10 == 0``, i.e. 10 %):

1. *paper setting* (Li et al. Table 2): three label sets -- gender+masterCategory,
   subCategory, articleType -- each keeping only classes with at least 500 images
   in the catalog (other rows are masked for that task, not dropped);
2. *full problem*: the bundled schema -- the masterCategory > subCategory >
   articleType hierarchy (all 141 articleTypes; classes with fewer than
   ``--min-count`` training rows fold into ``other`` and count as errors),
   attributes, multi-label tags; with the IDW kNN tagger side by side.

Prints the comparison table and the wall time of each step. ``--cold`` uses an
empty embedding cache, so the embedding pass is timed too.

    python benchmarks/bench_tagging.py [--cold] [--out benchmarks/out]

References:
    F. Li, S. Kant, S. Araki, S. Bangera, S. S. Shukla, "Neural Networks for Fashion Image Classification and Visual Search".
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from vistag.config import default_data_dir

PAPER = {"gender_master": 88.4, "sub_500": 96.6, "article_500": 87.3}
TARGET = {"gender_master": 90.0, "sub_500": 98.0, "article_500": 92.0}
MARGIN = {k: v + 1.0 for k, v in TARGET.items()}  # issue 14: the targets with a point of margin
LABEL = {"gender_master": "gender + masterCategory", "sub_500": "subCategory", "article_500": "articleType"}


def write_paper_catalog(labels: Path, out_dir: Path, min_images: int) -> tuple[Path, Path, dict]:
    """The catalog with the three paper label columns, rare classes blanked (masked)."""
    with open(labels, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    columns = {
        "gender_master": lambda r: f"{r['gender']} {r['masterCategory']}",
        "sub_500": lambda r: r["subCategory"],
        "article_500": lambda r: r["articleType"],
    }
    kept = {}
    for name, fn in columns.items():
        counts = Counter(fn(r) for r in rows)
        kept[name] = {c for c, n in counts.items() if n >= min_images}
    out = out_dir / "paper-catalog.csv"
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "file", "split", "productDisplayName", *columns])
        for r in rows:
            values = [fn(r) if fn(r) in kept[name] else "" for name, fn in columns.items()]
            writer.writerow([r["id"], r["file"], r["split"], r["productDisplayName"], *values])
    schema = out_dir / "paper.schema.json"  # the title is read only by a --title-aware model
    schema.write_text(
        json.dumps(
            {
                "id": "id",
                "title": "productDisplayName",
                "image": "file",
                "attributes": list(columns),
                "extra": ["split"],
            }
        )
    )
    return out, schema, {k: sorted(v) for k, v in kept.items()}


def run(args: list[str], env: dict) -> float:
    """Run ``vistag ARGS``; return its wall time."""
    started = time.monotonic()
    print("$ vistag " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "vistag", "-q", *args], check=True, env=env)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--cold", action="store_true", help="start from an empty embedding cache")
    parser.add_argument("--min-images", type=int, default=500, help="paper class filter (default %(default)s)")
    parser.add_argument("--robustness", type=int, default=500, help="images for the robustness check")
    parser.add_argument(
        "--backbone", default=None, help="backbone name for both models (default: vistag train's default)"
    )
    parser.add_argument("--train-args", default="", help="extra `vistag train` flags for both models, one string")
    parser.add_argument(
        "--title-aware",
        action="store_true",
        help="the models also read the titles (`vistag train --title-aware`; opt-in); the paper "
        "setting is then run image-only too and both are printed (Li et al. read images only)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_index import machine

    print(f"machine: {machine()}", flush=True)
    data = args.data
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.cold:
        env["VISTAG_HOME"] = tempfile.mkdtemp(prefix="vistag-cold-")
    images = str(data / "images.tar")
    catalog, schema, kept = write_paper_catalog(data / "labels.csv", args.out, args.min_images)
    times = {}
    extra = (["--backbone", args.backbone] if args.backbone else []) + args.train_args.split()
    full = args.out / "model-full"
    times["train_full (embedding pass included when --cold)"] = run(
        [
            "train",
            "--catalog",
            str(data / "labels.csv"),
            "--images",
            images,
            "--split-col",
            "split",
            "--out",
            str(full),
            *extra,
            *(["--title-aware"] if args.title_aware else []),
        ],
        env,
    )
    times["eval_full"] = run(
        [
            "eval",
            "--model",
            str(full),
            "--catalog",
            str(data / "labels.csv"),
            "--images",
            images,
            "--json",
            str(args.out / "eval-full.json"),
            "--report",
            str(args.out / "eval-full.md"),
            "--confusion-png",
            str(args.out / "confusion-articleType.png"),
            "--robustness",
            str(args.robustness),
            "--attribute-confusion-png",
            "baseColour",
            str(args.out / "confusion-baseColour.png"),
        ],
        env,
    )
    paper_runs = {"image only": ("model-paper", [])}
    if args.title_aware:
        paper_runs["title-aware"] = ("model-paper-title-aware", ["--title-aware"])
    paper_ev = {}
    for name, (directory, flags) in paper_runs.items():
        paper = args.out / directory
        times[f"train_paper {name} (embeddings from the cache)"] = run(
            [
                "train",
                "--catalog",
                str(catalog),
                "--images",
                images,
                "--schema",
                str(schema),
                "--split-col",
                "split",
                "--levels",
                "--tag-columns",
                "--out",
                str(paper),
                *extra,
                *flags,
            ],
            env,
        )
        times[f"eval_paper {name}"] = run(
            [
                "eval",
                "--model",
                str(paper),
                "--catalog",
                str(catalog),
                "--images",
                images,
                "--schema",
                str(schema),
                "--json",
                str(args.out / f"{directory}.json"),
                "--report",
                str(args.out / f"{directory}.md"),
            ],
            env,
        )
        paper_ev[name] = json.loads((args.out / f"{directory}.json").read_text())

    full_ev = json.loads((args.out / "eval-full.json").read_text())
    for name, ev in paper_ev.items():
        print(
            f"\nPaper setting, {name}. Split: the catalog's `split` column (test = id % 10 == 0): "
            f"{ev['split']['test_rows']} test rows, classes with >= {args.min_images} images"
        )
        print(
            f"{'task':<26} {'classes':>7} {'Li et al. VGG-19':>16} {'target':>7} {'+1':>6} {'vistag top-1':>13} "
            f"{'top-5':>6} {'MACC':>6}"
        )
        for col, paper_acc in PAPER.items():
            b = ev["attributes"][col]
            print(
                f"{LABEL[col]:<26} {len(kept[col]):>7} {paper_acc:>15.1f}% {TARGET[col]:>6.1f}% {MARGIN[col]:>5.1f}% "
                f"{100 * b['top1']:>12.1f}% {100 * b['top5']:>5.1f}% {100 * b['macc']:>5.1f}%"
            )
    print("\nFull problem (hierarchy decoded consistently):")
    for col, b in full_ev["levels"].items():
        print(
            f"  {col:<16} {b['classes']:>4} classes  top-1 {100 * b['top1']:.1f}%  top-5 {100 * b['top5']:.1f}%  "
            f"MACC {100 * b['macc']:.1f}%  (independent argmax top-1 {100 * b['top1_independent']:.1f}%)"
        )
    print("\nAttributes (independent heads):")
    for col, b in full_ev["attributes"].items():
        print(
            f"  {col:<16} {b['classes']:>4} classes  top-1 {100 * b['top1']:.1f}%  top-3 {100 * b.get('top3', 0):.1f}%  "
            f"top-5 {100 * b['top5']:.1f}%  MACC {100 * b['macc']:.1f}%"
        )
    print("\nTags F1@K (%):")
    for tagger, block in full_ev["tags"].items():
        print(f"  {tagger:<9} " + "  ".join(f"F1@{k} {100 * block['at_k'][k]['f1']:.1f}" for k in ("1", "3", "5", "7")))
    print("\nWall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    (args.out / "times.json").write_text(json.dumps(times, indent=1))


if __name__ == "__main__":
    main()
