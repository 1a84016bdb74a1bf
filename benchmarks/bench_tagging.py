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

``--fine-tune`` trains every model twice, on the published network's features and with
``vistag train --fine-tune`` (the network's last stages trained with the heads), and adds a
side-by-side table from the photo alone: top-1 per task on all test rows and on the test
rows whose labels agree with their twins' (byte-identical photos and near twins, see
:mod:`vistag.evaluation.ceiling`), and image search over the whole catalog with each
network's vectors (exact kNN for the relevance benchmark's 300 query photos: recall@10 same
type, nDCG@10 same type and colour). ``--check-split`` repeats it on a second split (test
rows by id hash, seed 1) kept apart from the first; ``--no-paper`` skips the paper-setting
models (about a third of the time). With ``--backbone efficientnet-lite0-colour`` both are
the colour backbone's; ``--baseline DIR`` (repeatable) adds other models (the default frozen one,
say) to the photo-only table, first, for the catalog split.

    python benchmarks/bench_tagging.py [--cold] [--fine-tune [--check-split]] [--no-paper] [--out benchmarks/out]
    python benchmarks/bench_tagging.py --fine-tune --no-paper --backbone efficientnet-lite0-colour \
        --out benchmarks/out/colour --baseline benchmarks/out/catalog-frozen/model-full \
        --baseline benchmarks/out/catalog-fine-tuned/model-full

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


def run(args: list[str], env: dict, reuse: bool = False) -> float:
    """Run ``vistag ARGS``; return its wall time (with ``reuse``, a ``train`` whose model directory exists is
    skipped and the training time it recorded is returned).
    """
    if reuse and args[0] == "train":
        out = Path(args[args.index("--out") + 1])
        if (out / "vistag-model.json").is_file():
            info = json.loads((out / "vistag-model.json").read_text())["info"]["training"]
            print(f"reusing {out} (trained by the same command line earlier)", flush=True)
            return float(info.get("total_seconds") or info.get("seconds") or 0.0)
    started = time.monotonic()
    print("$ vistag " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "vistag", "-q", *args], check=True, env=env)
    return time.monotonic() - started


def run_variant(args: argparse.Namespace, out: Path, flags: list[str], split: list[str], env: dict) -> dict:
    """Train and evaluate the full-problem and paper-setting models into ``out``; print their tables."""
    data = args.data
    out.mkdir(parents=True, exist_ok=True)
    images = str(data / "images.tar")
    catalog, schema, kept = write_paper_catalog(data / "labels.csv", out, args.min_images)
    times = {}
    extra = (["--backbone", args.backbone] if args.backbone else []) + args.train_args.split() + flags
    full = out / "model-full"
    times["train_full (embedding pass included when --cold)"] = run(
        [
            "train",
            "--catalog",
            str(data / "labels.csv"),
            "--images",
            images,
            *split,
            "--out",
            str(full),
            *extra,
            *(["--title-aware"] if args.title_aware else []),
        ],
        env,
        args.reuse,
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
            str(out / "eval-full.json"),
            "--report",
            str(out / "eval-full.md"),
            "--confusion-png",
            str(out / "confusion-articleType.png"),
            "--robustness",
            str(args.robustness),
            "--attribute-confusion-png",
            "baseColour",
            str(out / "confusion-baseColour.png"),
        ],
        env,
    )
    paper_runs = {} if args.no_paper else {"image only": ("model-paper", [])}
    if args.title_aware:
        paper_runs["title-aware"] = ("model-paper-title-aware", ["--title-aware"])
    paper_ev = {}
    for name, (directory, title_flags) in paper_runs.items():
        paper = out / directory
        times[f"train_paper {name} (embeddings from the cache)"] = run(
            [
                "train",
                "--catalog",
                str(catalog),
                "--images",
                images,
                "--schema",
                str(schema),
                *split,
                "--levels",
                "--tag-columns",
                "--out",
                str(paper),
                *extra,
                *title_flags,
            ],
            env,
            args.reuse,
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
                str(out / f"{directory}.json"),
                "--report",
                str(out / f"{directory}.md"),
            ],
            env,
        )
        paper_ev[name] = json.loads((out / f"{directory}.json").read_text())

    full_ev = json.loads((out / "eval-full.json").read_text())
    for name, ev in paper_ev.items():
        print(
            f"\nPaper setting, {name}. Split: {ev['split']}: "
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
    if "robustness" in full_ev:
        print("\nRobustness (share of predictions unchanged): " + json.dumps(full_ev["robustness"])[:600])
    print("\nWall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()), flush=True)
    (out / "times.json").write_text(json.dumps(times, indent=1))
    return {"full": full_ev, "paper": paper_ev, "times": times, "model": full}


TASKS = ("masterCategory", "subCategory", "articleType", "gender", "baseColour", "season", "usage")


def photo_only(models: dict[str, Path], data: Path, split_of: dict[str, str], queries: int, seed: int = 0) -> dict:
    """Top-1 per task on all test rows and on those whose labels agree with their twins', and exact image
    search with each model's network, from the embedding cache (training fills it for a fine-tuned network).
    """
    import random

    import numpy as np

    from vistag.config import vistag_home
    from vistag.evaluation.ceiling import conflicting_ids, near_twin_groups, twin_groups
    from vistag.evaluation.ranking import capped_recall_at_k, ndcg_at_k
    from vistag.models.cache import EmbeddingCache
    from vistag.models.loading import load_model

    with open(data / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    root = vistag_home() / "cache" / "embeddings"
    counts = {"type": Counter(r["articleType"] for r in rows)}
    counts["type+colour"] = Counter((r["articleType"], r["baseColour"]) for r in rows)
    test = [n for n, r in enumerate(rows) if split_of[r["id"]] == "test"]
    picked = random.Random(seed).sample([rows[n] for n in test], min(queries, len(test)))
    index_of = {r["id"]: n for n, r in enumerate(rows)}
    out: dict = {}
    groups = None
    for name, directory in models.items():
        loaded = load_model(directory, device="cpu")
        assert loaded.tagging is not None
        embedder = loaded.embedder
        cache = EmbeddingCache(root, embedder.model_id, embedder.dim)
        vectors, found = cache.get_many([r["sha256"] for r in rows])
        if not all(found):
            sys.exit(f"{directory}: {len(found) - sum(found)} rows are not in the {embedder.model_id} cache")
        if groups is None:  # twins by the first (published) network's vectors
            groups = twin_groups(rows) + near_twin_groups(rows, vectors, threshold=0.99)
        model = loaded.tagging
        pred = model.predict(vectors[test], top_k=1)
        block: dict = {"model_id": embedder.model_id}
        for task in TASKS:
            levels = [v.column for v in model.levels]
            if task in levels:
                vocab = model.levels[levels.index(task)]
                guess = pred.path_ranked[:, 0, levels.index(task)]
            elif task in pred.attributes:
                vocab = next(v for v in model.attributes if v.column == task)
                guess = pred.attributes[task].argmax(1)
            else:
                continue
            truth = [rows[n][task] for n in test]
            ok = np.array([vocab.classes[g] == t for g, t in zip(guess, truth)])
            known = np.array([bool(t) for t in truth])
            conflicts = conflicting_ids(groups, task)
            agree = known & np.array([rows[n]["id"] not in conflicts for n in test])
            block[task] = {
                "all": float(ok[known].mean()),
                "agreeing": float(ok[agree].mean()),
                "rows": int(known.sum()),
                "rows_agreeing": int(agree.sum()),
            }
        qn = [index_of[q["id"]] for q in picked]
        sims = vectors[qn] @ vectors.T
        sims[np.arange(len(qn)), qn] = -np.inf
        metrics = {"recall@10 type": [], "nDCG@10 type+colour": [], "recall@10 type+colour": [], "nDCG@10 type": []}
        for q, row in zip(picked, sims):
            top = np.argpartition(-row, 10)[:10]
            top = top[np.argsort(-row[top])]
            for kind, key in (("type", ("articleType",)), ("type+colour", ("articleType", "baseColour"))):
                want = tuple(q[k] for k in key)
                flags = [tuple(rows[j][k] for k in key) == want for j in top]
                n_rel = counts[kind][want if len(want) > 1 else want[0]] - 1
                metrics[f"recall@10 {kind}"].append(capped_recall_at_k(flags, n_rel, 10))
                metrics[f"nDCG@10 {kind}"].append(ndcg_at_k(flags, max(n_rel, 0), 10))
        block["image search"] = {k: float(np.mean(v)) for k, v in metrics.items()}
        out[name] = block
    names = list(out)
    print(f"\nFrom the photo alone, {len(test)} test rows (agreeing: without rows whose label differs from a twin's):")
    print(f"  {'task':<15} " + " ".join(f"{n + ' all':>18} {n + ' agreeing':>22}" for n in names))
    for task in TASKS:
        if all(task in out[n] for n in names):
            cells = " ".join(
                f"{100 * out[n][task]['all']:>17.1f}% {100 * out[n][task]['agreeing']:>21.1f}%" for n in names
            )
            print(f"  {task:<15} {cells}")
    print(f"Image search, exact kNN over the {len(rows):,} products, {len(picked)} held-out query photos:")
    for metric in out[names[0]]["image search"]:
        print(f"  {metric:<22} " + "  ".join(f"{n} {100 * out[n]['image search'][metric]:.1f}" for n in names))
    return out


def splits_of(model: Path) -> dict[str, str]:
    """Each catalog row's split as the model directory recorded it (by column or id hash)."""
    from vistag.models.dataset import EmbeddedCatalog, assign_splits
    from vistag.models.tagging_model import TaggingModel

    info = TaggingModel.load(model).info["training"]["split"]
    with open(default_data_dir() / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    import numpy as np

    data = EmbeddedCatalog([r["id"] for r in rows], rows, np.zeros((len(rows), 1), np.float32), [""] * len(rows))
    splits = assign_splits(
        data, info.get("split_column"), info.get("test_fraction") or 0.1, info["val_fraction"], info["seed"]
    )
    return {r["id"]: str(s) for r, s in zip(rows, splits)}


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
    parser.add_argument(
        "--fine-tune",
        action="store_true",
        help="also train every model with `vistag train --fine-tune` and compare them from the photo alone",
    )
    parser.add_argument("--fine-tune-args", default="", help="extra flags of the fine-tuned models, one string")
    parser.add_argument(
        "--check-split", action="store_true", help="with --fine-tune: repeat on a second split (id hash, seed 1)"
    )
    parser.add_argument("--queries", type=int, default=300, help="image search query photos (default %(default)s)")
    parser.add_argument("--no-paper", action="store_true", help="skip the paper-setting models (Li et al.'s filter)")
    parser.add_argument("--reuse", action="store_true", help="keep model directories a previous run left in --out")
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="with --fine-tune: a model directory compared first in the catalog split's photo-only table "
        "(named by its folder; repeatable)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_index import machine

    print(f"machine: {machine()}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.cold:
        env["VISTAG_HOME"] = tempfile.mkdtemp(prefix="vistag-cold-")
    if not args.fine_tune:
        run_variant(args, args.out, [], ["--split-col", "split"], env)
        return
    if args.title_aware:
        sys.exit("--fine-tune trains on the photo alone: leave out --title-aware")
    splits = {"catalog split": ["--split-col", "split"]}
    if args.check_split:
        splits["second split (id hash, seed 1)"] = ["--test-fraction", "0.1", "--seed", "1"]
    summary = {}
    for split_name, split in splits.items():
        variants = {}
        for name, flags in (("frozen", []), ("fine-tuned", ["--fine-tune", *args.fine_tune_args.split()])):
            print(f"\n=== {split_name}: {name} ===", flush=True)
            slug = f"{split_name.split()[0]}-{name}"
            variants[name] = run_variant(args, args.out / slug, flags, split, env)
        models = {name: v["model"] for name, v in variants.items()}
        if split_name == "catalog split" and args.baseline:
            baselines = {}
            for directory in args.baseline:
                if splits_of(directory) != splits_of(models["frozen"]):
                    sys.exit(f"--baseline {directory}: trained on another split than the catalog's")
                baselines[directory.parent.name if directory.name == "model-full" else directory.name] = directory
            models = {**baselines, **models}
        print(f"\n=== {split_name}: frozen vs fine-tuned ===")
        compared = photo_only(models, args.data, splits_of(models["frozen"]), args.queries)
        summary[split_name] = {
            "photo_only": compared,
            "paper": {
                n: {c: v["paper"]["image only"]["attributes"][c] for c in PAPER}
                for n, v in variants.items()
                if v["paper"]
            },
            "full": {
                n: {"levels": v["full"]["levels"], "attributes": v["full"]["attributes"]} for n, v in variants.items()
            },
            "robustness": {n: v["full"].get("robustness") for n, v in variants.items()},
            "times": {n: v["times"] for n, v in variants.items()},
        }
        for name, v in variants.items():
            if not v["paper"]:
                continue
            ev = v["paper"]["image only"]["attributes"]
            print(
                f"  paper setting {name}: "
                + ", ".join(f"{LABEL[c]} {100 * ev[c]['top1']:.1f}% (target {MARGIN[c]:.0f})" for c in PAPER)
            )
    (args.out / "fine-tune-summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\nsummary: {args.out / 'fine-tune-summary.json'}")


if __name__ == "__main__":
    main()
