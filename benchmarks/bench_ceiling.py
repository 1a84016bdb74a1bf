"""The ceiling the labels allow: byte-identical photos under several product ids, and how often their labels differ.

Prints, per task, the twin pairs with both labels present, the share that disagree, and the
rows left once every row whose label differs from a twin's is set aside (the rows a model can
be scored on with labels that agree with their twins'). Pure Python over ``labels.csv``; seconds.

    python benchmarks/bench_ceiling.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import machine

from vistag.config import default_data_dir
from vistag.evaluation.ceiling import conflicting_ids, label_disagreement, twin_groups

TASKS = ("gender", "masterCategory", "subCategory", "articleType", "baseColour", "season", "usage")


def main() -> None:
    with open(default_data_dir() / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    groups = twin_groups(rows)
    print(f"machine: {machine()}")
    print(
        f"{len(rows):,} rows; {len(groups):,} groups of byte-identical photos under different ids "
        f"({sum(len(g) for g in groups):,} rows)"
    )
    print(f"{'task':<15} {'pairs':>6} {'disagree':>9} {'rate':>7} {'rows with a conflicting twin':>29}")
    for task, d in label_disagreement(groups, TASKS).items():
        print(
            f"{task:<15} {d.pairs:>6} {d.disagreeing:>9} {100 * d.rate:>6.1f}% {len(conflicting_ids(groups, task)):>29}"
        )


if __name__ == "__main__":
    main()
