"""What colour evidence adds to the image embedding for ``baseColour`` (issue 14, part 1).

The same small classifier (linear, or one hidden layer of 512) is trained on the
catalog's train split with three inputs: the frozen embedding alone, the CIELAB
foreground features of :mod:`vistag.models.colour` alone, and both joined; it is
scored on the test split (top-1, top-3, mean per-class accuracy over the 46 colours,
labels as they are: ``Navy Blue`` vs ``Blue``, ``Off White`` vs ``White``, ``Multi``).

    python benchmarks/bench_colour.py                 # the full catalog (embeds what the cache lacks)
    python benchmarks/bench_colour.py --cached-only   # only rows whose embedding is cached

Prints one line per configuration, and the machine.
"""

from __future__ import annotations

import argparse
import csv
import io
import platform
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

from vistag.config import default_data_dir
from vistag.models import create_embedder
from vistag.models.cache import EmbeddingCache
from vistag.models.colour import ColourConfig, colour_features


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="fashion-product-images folder")
    p.add_argument("--cached-only", action="store_true", help="use only rows whose embedding is already cached")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--hidden", type=int, nargs="+", default=[0, 512], help="hidden widths to try (0 = linear)")
    return p.parse_args(argv)


def load_features(data: Path, rows: list[dict], cached_only: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings, colour features, usable mask) for ``rows``."""
    from vistag.config import embedding_cache_dir

    embedder = create_embedder("efficientnet-lite0")
    cache = EmbeddingCache(embedding_cache_dir(), embedder.model_id, embedder.dim)
    emb, found = cache.get_many([r["sha256"] for r in rows])
    found = np.array(found)
    colour = np.zeros((len(rows), ColourConfig().dim), np.float32)
    by_file = {r["file"]: i for i, r in enumerate(rows)}
    missing_images, missing_index = [], []
    start = time.perf_counter()
    with tarfile.open(data / "images.tar") as tar:
        for member in tar:
            i = by_file.get(member.name)
            if i is None or (cached_only and not found[i]):
                continue
            from PIL import Image

            image = Image.open(io.BytesIO(tar.extractfile(member).read()))
            image.load()
            colour[i] = colour_features(image)
            if not found[i]:
                missing_images.append(image)
                missing_index.append(i)
    print(
        f"colour features: {time.perf_counter() - start:.1f}s for {len(rows) if not cached_only else found.sum()} images"
    )
    if missing_images:
        start = time.perf_counter()
        vectors = embedder.embed_images(missing_images)
        emb[missing_index] = vectors
        cache.put_many([rows[i]["sha256"] for i in missing_index], vectors)
        found[missing_index] = True
        print(f"embedded {len(missing_images)} images in {time.perf_counter() - start:.1f}s")
    return emb.astype(np.float32), colour, found


def evaluate(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, n_classes: int, hidden: int, epochs: int
) -> tuple[float, float, float]:
    """top-1, top-3 and mean per-class accuracy on ``test`` of a classifier trained on ``train``."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    xs, yt = torch.tensor((x - mu) / sd, dtype=torch.float32), torch.tensor(y)
    layers = [torch.nn.Dropout(0.2)]
    layers += (
        [
            torch.nn.Linear(x.shape[1], hidden),
            torch.nn.GELU(),
            torch.nn.Dropout(0.3),
            torch.nn.Linear(hidden, n_classes),
        ]
        if hidden
        else [torch.nn.Linear(x.shape[1], n_classes)]
    )
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=1e-4)
    order = np.where(train)[0]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * (len(order) // 256 + 1))
    for _ in range(epochs):
        model.train()
        rng.shuffle(order)
        for i in range(0, len(order), 256):
            batch = order[i : i + 256]
            loss = torch.nn.functional.cross_entropy(model(xs[batch]), yt[batch], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        top = model(xs[test]).topk(3, 1).indices
    truth = yt[test]
    top1 = (top[:, 0] == truth).float().mean().item()
    top3 = (top == truth[:, None]).any(1).float().mean().item()
    per_class = [
        ((top[:, 0] == truth) & (truth == c)).sum().item() / (truth == c).sum().item()
        for c in range(n_classes)
        if (truth == c).sum() > 0
    ]
    return top1, top3, float(np.mean(per_class))


def main(argv=None) -> int:
    args = parse_args(argv)
    data = Path(args.data) if args.data else default_data_dir()
    if data is None:
        print("no data folder: pass --data", file=sys.stderr)
        return 2
    with open(data / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    emb, colour, usable = load_features(data, rows, args.cached_only)
    classes = sorted({r["baseColour"] for r in rows if r["baseColour"]})
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index.get(r["baseColour"], -1) for r in rows])
    usable &= y >= 0
    is_test = np.array([r["split"] == "test" for r in rows])
    train, test = usable & ~is_test, usable & is_test
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {len(classes)} colours; train {train.sum()}, test {test.sum()}"
    )
    for name, x in (("embedding", emb), ("colour", colour), ("embedding+colour", np.concatenate([emb, colour], 1))):
        for hidden in args.hidden:
            start = time.perf_counter()
            top1, top3, macc = evaluate(x, y, train, test, len(classes), hidden, args.epochs)
            print(
                f"{name:17s} {'linear' if not hidden else f'mlp{hidden}':7s} top-1 {top1 * 100:5.1f}  "
                f"top-3 {top3 * 100:5.1f}  MACC {macc * 100:5.1f}  ({time.perf_counter() - start:.0f}s)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
