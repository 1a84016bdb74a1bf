"""The ceiling the labels allow: the same photo under several product ids, and how often their labels differ.

Prints, per task, the twin pairs with both labels present, the share that disagree, and the
rows with a label that differs from a twin's (set them aside to score a model on the rows whose
labels agree with their twins'), for two kinds of twins:

* byte-identical photos (the same SHA-256 of the image bytes; pure Python, seconds);
* near twins: default-model embeddings with a cosine >= ``--near`` (0.99), from the embedding
  cache (run ``vistag index`` or ``bench_index.py`` on the catalog once to fill it). Some are
  colour variants of one design photographed alike, which is not label noise: ``--sheet``
  writes a contact sheet of pairs whose labels differ, to look at before trusting the rates.

    python benchmarks/bench_ceiling.py [--near 0.99] [--sheet near-twins.png]
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import machine

from vistag.config import default_data_dir, vistag_home
from vistag.evaluation.ceiling import conflicting_ids, label_disagreement, near_twin_groups, twin_groups

TASKS = ("gender", "masterCategory", "subCategory", "articleType", "baseColour", "season", "usage")


def table(title: str, groups: list, rows_total: int) -> None:
    print(
        f"{title}: {len(groups):,} groups under different ids ({sum(len(g) for g in groups):,} of {rows_total:,} rows)"
    )
    print(f"  {'task':<15} {'pairs':>6} {'disagree':>9} {'rate':>7} {'rows with a conflicting twin':>29}")
    for task, d in label_disagreement(groups, TASKS).items():
        conflicting = len(conflicting_ids(groups, task))
        print(f"  {task:<15} {d.pairs:>6} {d.disagreeing:>9} {100 * d.rate:>6.1f}% {conflicting:>29}")


def contact_sheet(groups: list, path: Path, pairs: int = 16) -> None:
    """Side by side: the first two rows of groups whose baseColour or articleType differ."""
    from PIL import Image, ImageDraw

    from vistag.images import ImageStore

    picked = [g for g in groups if len({r["baseColour"] for r in g}) > 1 or len({r["articleType"] for r in g}) > 1]
    picked = picked[:: max(1, len(picked) // pairs)][:pairs]
    cell_w, cell_h = 150, 230
    sheet = Image.new("RGB", (cell_w * 4, cell_h * ((len(picked) + 1) // 2)), "white")
    draw = ImageDraw.Draw(sheet)
    with ImageStore(default_data_dir() / "images.tar") as store:
        for n, group in enumerate(picked):
            for m, row in enumerate(group[:2]):
                x, y = (n % 2) * 2 * cell_w + m * cell_w, (n // 2) * cell_h
                with Image.open(io.BytesIO(store.read(row["file"]))) as im:
                    im.thumbnail((cell_w - 10, cell_h - 50))
                    sheet.paste(im.convert("RGB"), (x + 5, y + 5))
                draw.text((x + 5, y + cell_h - 42), f"{row['id']} {row['baseColour']}", fill="black")
                draw.text((x + 5, y + cell_h - 28), row["articleType"], fill="black")
    sheet.save(path)
    print(f"contact sheet of {len(picked)} pairs: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--near", type=float, default=0.99, help="cosine for near twins (0: skip them)")
    parser.add_argument("--sheet", type=Path, default=None, help="write a contact sheet of near twins that disagree")
    args = parser.parse_args()
    with open(default_data_dir() / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    print(f"machine: {machine()}")
    table("byte-identical photos", twin_groups(rows), len(rows))
    if not args.near:
        return
    from vistag.models.cache import EmbeddingCache
    from vistag.models.registry import get_config

    config = get_config("efficientnet-lite0")
    cache = EmbeddingCache(vistag_home() / "cache" / "embeddings", config.model_id, config.embedding_dim)
    vectors, found = cache.get_many([r["sha256"] for r in rows])
    keep = np.nonzero(found)[0]
    if len(keep) < len(rows) * 0.9:
        sys.exit(f"only {len(keep)} of {len(rows)} embeddings are cached: index the catalog once first")
    kept = [rows[i] for i in keep]
    groups = near_twin_groups(kept, np.ascontiguousarray(vectors[keep]), threshold=args.near)
    table(f"near twins (cosine >= {args.near}, {config.model_id})", groups, len(kept))
    if args.sheet:
        contact_sheet(groups, args.sheet)


if __name__ == "__main__":
    main()
