"""Resolution and pooling study for the default backbone (issue 4 §1).

Embeds a stratified sample of the catalog at several input resolutions and, from
one forward pass each, several pooled features; fits the same linear probe on each
and prints test accuracy (articleType, classes with >= 500 images, and baseColour)
next to images/s. The default resolution and embedding are chosen from this table.

    python benchmarks/bench_resolution.py --train 4000 --test 1000 --sizes 96 128 160 192
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from vistag.config import default_data_dir
from vistag.images import ImageStore
from vistag.models.backbones import build_efficientnet_lite
from vistag.models.preprocess import preprocess
from vistag.models.registry import get_config


def sample_rows(labels: Path, n_train: int, n_test: int, seed: int) -> list[dict]:
    with open(labels, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rng = np.random.default_rng(seed)
    train = [r for r in rows if r["split"] != "test"]
    test = [r for r in rows if r["split"] == "test"]

    def pick(rs: list, n: int) -> list:
        return [rs[i] for i in rng.choice(len(rs), size=min(n, len(rs)), replace=False)]

    return pick(train, n_train) + pick(test, n_test), rows


def features(net, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    lite = net.features.net
    x = lite._swish(lite._bn0(lite._conv_stem(batch)))
    mid = None
    for idx, block in enumerate(lite._blocks):
        x = block(x)
        if idx == 10:
            mid = x
    head = lite._swish(lite._bn1(lite._conv_head(x)))
    mean = head.mean(dim=(2, 3))
    return {
        "mean": mean,
        "mean+max": torch.cat([mean, head.amax(dim=(2, 3))], 1),
        "mean+mid": torch.cat([mean, mid.mean(dim=(2, 3))], 1),
        "gem3": head.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3),
    }


def probe(xtr, ytr, xte, yte, epochs: int = 300) -> float:
    torch.manual_seed(0)
    xtr, xte = torch.from_numpy(xtr), torch.from_numpy(xte)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    classes = sorted(set(ytr))
    index = {c: i for i, c in enumerate(classes)}
    keep = [i for i, y in enumerate(yte) if y in index]
    yt = torch.tensor([index[y] for y in ytr])
    lin = torch.nn.Linear(xtr.shape[1], len(classes))
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-3, weight_decay=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(xtr), yt).backward()
        opt.step()
    pred = lin(xte[keep]).argmax(1).numpy()
    return float(np.mean([classes[p] == yte[k] for p, k in zip(pred, keep)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128, 160, 192])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows, all_rows = sample_rows(args.data / "labels.csv", args.train, args.test, args.seed)
    big = {c for c, n in Counter(r["articleType"] for r in all_rows).items() if n >= 500}
    store = ImageStore(args.data / "images.tar")
    images = [store.load(r["file"]).image for r in rows]
    is_test = np.array([r["split"] == "test" for r in rows])
    print(
        f"sample: {len(rows)} images ({(~is_test).sum()} train, {is_test.sum()} test), {torch.get_num_threads()} threads"
    )
    print(f"{'px':>4} {'img/s':>7} {'feature':>9} {'dim':>5} {'articleType>=500':>17} {'baseColour':>11}")
    for size in args.sizes:
        config = get_config("efficientnet-lite0").with_input_size(size)
        net = build_efficientnet_lite(config).eval()
        arrays = [preprocess(im, config) for im in images]
        outs: dict[str, list] = {}
        start = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(arrays), 64):
                for name, f in features(net, torch.from_numpy(np.stack(arrays[i : i + 64]))).items():
                    outs.setdefault(name, []).append(torch.nn.functional.normalize(f, dim=1).numpy())
        rate = len(arrays) / (time.perf_counter() - start)
        for name, parts in outs.items():
            x = np.concatenate(parts)
            accs = []
            for col, subset in (("articleType", big), ("baseColour", None)):
                y = [r[col] for r in rows]
                tr = [i for i in range(len(rows)) if not is_test[i] and (subset is None or y[i] in subset)]
                te = [i for i in range(len(rows)) if is_test[i] and (subset is None or y[i] in subset)]
                accs.append(probe(x[tr], [y[i] for i in tr], x[te], [y[i] for i in te]))
            print(f"{size:>4} {rate:>7.1f} {name:>9} {x.shape[1]:>5} {accs[0]:>17.3f} {accs[1]:>11.3f}", flush=True)


if __name__ == "__main__":
    main()
