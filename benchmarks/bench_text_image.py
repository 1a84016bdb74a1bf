"""Text -> image projection on held-out products (issue 14 §3), no engine needed.

Trains :class:`vistag.models.text_image.TextImageProjection` on the catalog's
training rows (title -> cached image vector; 5 % of them held out for early
stopping) and evaluates it on test-split products only, whose titles and images
the projection never saw:

* the relevance benchmark's text queries (``vistag.models.text_image.query_like``: brand and
  a random third of the words dropped, same seed and sampling) searched by exact
  cosine kNN over every catalog image (the query product removed): recall@10 and
  nDCG@10 for "same articleType" and "same articleType + baseColour";
* the same with full titles, over all test products;
* for reference, each query product's own image as the query (image alone);
* with ``--labels``, the top-1 / top-3 accuracy of the labels the text learns to read
  (query classification, :meth:`TextImageProjection.query_tags`) on the same queries.

Prints the figures, the time to encode the titles and to train.

    python benchmarks/bench_text_image.py [--backbone efficientnet-lite0] [--queries 300] [--save DIR]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import machine
from bench_relevance import K, scores

from vistag.config import default_data_dir, vistag_home
from vistag.models.cache import EmbeddingCache
from vistag.models.registry import get_config
from vistag.models.text import TagNameEncoder
from vistag.models.text_image import TextImageProjection, query_like


def evaluate(
    name: str,
    qvecs: np.ndarray,
    queries: list[dict],
    vectors: np.ndarray,
    ids: list[str],
    index_of: dict[str, int],
    rows: dict,
    counts: dict,
) -> dict:
    sims = qvecs @ vectors.T
    for n, q in enumerate(queries):
        sims[n, index_of[q["id"]]] = -np.inf
    top = np.argpartition(-sims, K, axis=1)[:, :K]
    results = []
    for n, q in enumerate(queries):
        order = top[n][np.argsort(-sims[n, top[n]])]
        results.append(scores([ids[j] for j in order], q, rows, counts))
    means = {k: 100 * float(np.mean([r[k] for r in results])) for k in results[0]}
    print(f"{name:<44} " + "  ".join(f"{k} {v:5.1f}" for k, v in means.items()), flush=True)
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--train-seed",
        type=int,
        default=0,
        help="the projection's seed (initial weights and batch order; TextImageConfig.seed)",
    )
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--save", type=Path, default=None, help="write the trained projection to this folder")
    parser.add_argument(
        "--groups",
        default="",
        help="comma-separated label columns whose joint value groups the "
        "training rows for the supervised-contrastive term (e.g. articleType,baseColour)",
    )
    parser.add_argument("--group-weight", type=float, default=1.0)
    parser.add_argument("--title-cache", type=Path, default=None, help="an .npy file keeping the title vectors")
    parser.add_argument("--labels", default="", help="comma-separated label columns the text also learns to predict")
    parser.add_argument("--label-weight", type=float, default=1.0)
    parser.add_argument(
        "--query-noise",
        type=float,
        default=1 / 3,
        help="share of words dropped in each title's query-like training copy (0: titles only)",
    )
    parser.add_argument(
        "--query-cache",
        type=Path,
        default=None,
        help="an .npy file keeping the query-like copies' vectors (vistag.models.text_image.query_like)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    data = default_data_dir()
    with open(data / "labels.csv", newline="", encoding="utf-8") as fh:
        all_rows = list(csv.DictReader(fh))
    config = get_config(args.backbone)
    cache = EmbeddingCache(vistag_home() / "cache" / "embeddings", config.model_id, config.embedding_dim)
    vectors, found = cache.get_many([r["sha256"] for r in all_rows])
    if not all(found):
        raise SystemExit(
            f"{sum(not f for f in found)} catalog images are not in the {config.model_id} cache: "
            "run `vistag train` or `vistag index` with that backbone first"
        )
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [r["id"] for r in all_rows]
    index_of = {i: n for n, i in enumerate(ids)}
    rows = {r["id"]: r for r in all_rows}
    counts: dict[str, dict] = {"type": {}, "type+colour": {}}
    for r in all_rows:
        counts["type"][(r["articleType"],)] = counts["type"].get((r["articleType"],), 0) + 1
        key = (r["articleType"], r["baseColour"])
        counts["type+colour"][key] = counts["type+colour"].get(key, 0) + 1

    test = [r for r in all_rows if r["split"] == "test"]
    train = [r for r in all_rows if r["split"] != "test"]
    is_val = [int(hashlib.sha256(f"ti:{r['id']}".encode()).hexdigest()[:8], 16) % 20 == 0 for r in train]
    fit_rows = [r for r, v in zip(train, is_val) if not v]
    val_rows = [r for r, v in zip(train, is_val) if v]
    encoder = TagNameEncoder()
    started = time.monotonic()
    if args.title_cache and args.title_cache.is_file():
        titles = np.load(args.title_cache)
    else:
        titles = encoder([r["productDisplayName"] for r in all_rows])
        if args.title_cache:
            np.save(args.title_cache, titles)
    encode_s = time.monotonic() - started
    t_of = {r["id"]: titles[n] for n, r in enumerate(all_rows)}
    print(
        f"{config.model_id}: {len(all_rows)} products; fit {len(fit_rows)}, val {len(val_rows)}, test {len(test)}; "
        f"titles encoded in {encode_s:.1f} s ({len(all_rows) / encode_s:.0f}/s)",
        flush=True,
    )

    queries_like = None
    if args.query_noise > 0:
        if args.query_cache and args.query_cache.is_file():
            queries_like = np.load(args.query_cache)
        else:
            qrng = random.Random(1)
            queries_like = encoder([query_like(r["productDisplayName"], qrng, args.query_noise) for r in all_rows])
            if args.query_cache:
                np.save(args.query_cache, queries_like)
    label_cols = [c for c in args.labels.split(",") if c]
    started = time.monotonic()
    proj = TextImageProjection.fit(
        np.stack([t_of[r["id"]] for r in fit_rows]),
        vectors[[index_of[r["id"]] for r in fit_rows]],
        image_model_id=config.model_id,
        val_texts=np.stack([t_of[r["id"]] for r in val_rows]),
        val_vectors=vectors[[index_of[r["id"]] for r in val_rows]],
        encoder=encoder,
        groups=["|".join(r[c] for c in args.groups.split(",")) for r in fit_rows] if args.groups else None,
        group_weight=args.group_weight,
        labels={c: [r[c] for r in fit_rows] for c in label_cols} or None,
        label_weight=args.label_weight,
        query_noise=args.query_noise,
        query_texts=None if queries_like is None else queries_like[[index_of[r["id"]] for r in fit_rows]],
        epochs=args.epochs,
        hidden=args.hidden,
        temperature=args.temperature,
        seed=args.train_seed,
    )
    train_s = time.monotonic() - started
    best = max(proj.config.history, key=lambda h: h.get("val_recall@10", 0))
    print(f"trained in {train_s:.1f} s; best epoch {best}", flush=True)
    if args.save:
        print(f"projection written to {proj.save(args.save)}", flush=True)

    rng = random.Random(args.seed)
    queries = rng.sample(test, min(args.queries, len(test)))
    texts = [query_like(q["productDisplayName"], rng) for q in queries]
    print(f"\n{len(queries)} held-out queries (as bench_relevance), exact kNN over {len(all_rows)} images:")
    evaluate(
        "image alone (the product's own photo)",
        vectors[[index_of[q["id"]] for q in queries]],
        queries,
        vectors,
        ids,
        index_of,
        rows,
        counts,
    )
    evaluate("text -> image (noised title)", proj.encode(texts), queries, vectors, ids, index_of, rows, counts)
    for col, p in proj.predict_labels(texts).items():
        names = proj.config.labels[col]
        truth = np.array([names.index(q[col]) if q[col] in names else -1 for q in queries])
        top = np.argsort(-p, axis=1)[:, :3]
        print(
            f"query reads {col:<14} top-1 {100 * np.mean(top[:, 0] == truth):5.1f}%  "
            f"top-3 {100 * np.mean((top == truth[:, None]).any(1)):5.1f}%",
            flush=True,
        )
    print(f"\nall {len(test)} test products, full titles:")
    evaluate(
        "text -> image (full title)",
        proj.encode(np.stack([t_of[r["id"]] for r in test])),
        test,
        vectors,
        ids,
        index_of,
        rows,
        counts,
    )
    own = proj.encode(np.stack([t_of[r["id"]] for r in test]))
    from vistag.models.text_image import recall_at

    print(
        f"title finds its own photo among the {len(test)} test photos: recall@10 "
        f"{100 * recall_at(own, vectors[[index_of[r['id']] for r in test]]):.1f}%"
    )
    print(f"times: encode titles {encode_s:.1f} s, train {train_s:.1f} s (CPU)")


if __name__ == "__main__":
    main()
