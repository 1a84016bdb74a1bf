"""Relevance and latency of every query type on the full catalog, both engines (issue 5 §5).

The whole catalog (44,072 products) is indexed once per engine (embeddings from the
cache; kNN tags never use the product itself). Queries come from held-out products:
``--queries`` test-split rows (``id % 10 == 0``); the query product itself is always
removed from its results.

* **query by image**: the product's image vector, HNSW kNN (k=10, num_candidates=100)
  against exact kNN (brute force over the same vectors); relevant = same articleType,
  and same articleType + baseColour. recall@10 = relevant in the top 10 /
  min(10, relevant in the catalog); nDCG@10 binary; HNSW overlap@10 with exact.
* **text**: ``productDisplayName`` with the brand (first word) dropped and a third
  of the other words dropped at random (seeded); relevant as above. Configurations:
  BM25 only; tags only (the query's words that are catalog tags, IDF-weighted:
  :mod:`vistag.search.text_tags`);
  tags with query-time expansion; tags on an index-time-expanded index (OpenSearch
  only); hybrid BM25 + tags fused by RRF and by weighted sum, client-side; the same
  fused inside the engine in one ``hybrid`` request (OpenSearch with neural-search);
  hybrid RRF with query-time expansion.
* **latency**: p50 / p95 wall time of each query type as the Python client sees it
  (client-side hybrid = its 2 requests plus fusion; engine-side = one request).

    python benchmarks/bench_relevance.py [--queries 300] [--engines opensearch elasticsearch]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import machine

from vistag.analyzers.relations import TagRelations
from vistag.catalog.schema import CatalogSchema
from vistag.catalog.vocabulary import tags_from_labels
from vistag.config import ConnectionSettings, default_data_dir, vistag_home
from vistag.engine.connect import connect
from vistag.evaluation.ranking import capped_recall_at_k, ndcg_at_k
from vistag.images import ImageStore
from vistag.indexer.pipeline import IndexOptions, run_index
from vistag.local.node import LocalNode
from vistag.models import create_embedder
from vistag.models.cache import EmbeddingCache
from vistag.models.embedding import BatchEmbedder
from vistag.models.text_image import TextImageProjection, query_like
from vistag.search import Searcher
from vistag.search.fusion import rrf
from vistag.search.text_tags import tags_from_text

K = 10


def scores(ids: list[str], query: dict, rows: dict, counts: dict) -> dict:
    """recall@10 and nDCG@10 for both relevance definitions."""
    out = {}
    for name, key in (("type", ("articleType",)), ("type+colour", ("articleType", "baseColour"))):
        want = tuple(query[k] for k in key)
        flags = [tuple(rows[i][k] for k in key) == want for i in ids[:K]]
        n_rel = counts[name].get(want, 0) - 1  # the query product itself is excluded
        out[f"recall@10 {name}"] = capped_recall_at_k(flags, n_rel, K)
        out[f"nDCG@10 {name}"] = ndcg_at_k(flags, max(n_rel, 0), K)
    return out


def timed(fn, latencies: list[float]):
    start = time.perf_counter()
    result = fn()
    latencies.append(time.perf_counter() - start)
    return result


#: Weight grid tried for the client-side RRF of BM25 (always 1), tags and text->image lists.
WEIGHT_GRID = [
    {"text": 1.0, "tags": t, "image": i} for t in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0) for i in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
]


def text_image_fusions(searcher, projection, queries, tuning, rng, df, n_docs, relations, rows, counts, lat) -> dict:
    """text->image kNN alone and fused with BM25 and tags by weighted RRF, the weights chosen on ``tuning`` queries.

    Each query's lists are fetched once (100 candidates each: BM25; tags: the words that
    are tags, expanded; query tags: those plus the tags the projection reads from the
    text (when it learned labels); text->image HNSW) and fused here, so every weighting
    sees the same lists.
    """
    reads_labels = bool(projection.config.labels)

    def lists_for(q: dict, timing: bool) -> dict:
        text = query_like(q["productDisplayName"], rng)
        qtags = tags_from_text(text, df, n_docs)
        vec = (
            timed(lambda: projection.encode([text])[0], lat.setdefault("text->image encode", []))
            if timing
            else projection.encode([text])[0]
        )
        out = {
            "text": [(h.id, h.score) for h in searcher.keyword(text, size=100)],
            "image": [
                (h.id, h.score)
                for h in (
                    timed(lambda: searcher.image(vec, k=100), lat.setdefault("text->image kNN", []))
                    if timing
                    else searcher.image(vec, k=100)
                )
            ],
        }
        if qtags:
            out["tags"] = [(h.id, h.score) for h in searcher.tags(qtags, size=100, relations=relations)]
        if timing:  # the default hybrid itself, as a storefront calls it: one method, its own requests
            out["default"] = [
                (h.id, h.score)
                for h in timed(
                    lambda: searcher.text(text, projection, relations, size=K + 1), lat.setdefault("default hybrid", [])
                )
            ]
        if reads_labels:  # the words that are tags merged with the tags the projection reads, as Searcher.text does
            merged = (
                timed(
                    lambda: searcher.read_query(text, projection, relations)[0], lat.setdefault("query tags read", [])
                )
                if timing
                else searcher.read_query(text, projection, relations)[0]
            )
            if merged:  # nothing read with probability >= 0.2 and no word that is a tag: no list
                out["query tags"] = [(h.id, h.score) for h in searcher.tags(merged, size=100, relations=relations)]
        return out

    def measure(all_lists, qs, weights) -> list[dict]:
        results = []
        for lists, q in zip(all_lists, qs):
            fused = [d for d, _ in rrf({k: v for k, v in lists.items() if weights.get(k, 0) > 0}, weights=weights)]
            results.append(scores([d for d in fused if d != q["id"]], q, rows, counts))
        return results

    tune_lists = [lists_for(q, False) for q in tuning]

    def objective(w):
        r = measure(tune_lists, tuning, w)
        return np.mean([x["recall@10 type"] for x in r]) + np.mean([x["nDCG@10 type+colour"] for x in r])

    tag_list = "query tags" if reads_labels else "tags"
    grid = [{"text": w["text"], tag_list: w["tags"], "image": w["image"]} for w in WEIGHT_GRID]
    best = max(grid, key=objective)
    print(
        f"weighted RRF tuned on {len(tuning)} other held-out queries: text {best['text']}, {tag_list} "
        f"{best[tag_list]}, text->image {best['image']}",
        flush=True,
    )
    test_lists = [lists_for(q, True) for q in queries]
    out = {
        "text: BM25 (the texts of the rows below)": measure(test_lists, queries, {"text": 1.0}),
        "text->image kNN (HNSW)": measure(test_lists, queries, {"image": 1.0}),
        "text: RRF BM25 + text->image": measure(test_lists, queries, {"text": 1.0, "image": 1.0}),
        "text: RRF BM25 + tags + text->image": measure(test_lists, queries, {"text": 1.0, "tags": 1.0, "image": 1.0}),
    }
    if reads_labels:
        out["query tags (words + read) alone"] = measure(test_lists, queries, {"query tags": 1.0})
        out["text: RRF BM25 + query tags + text->image"] = measure(
            test_lists, queries, {"text": 1.0, "query tags": 1.0, "image": 1.0}
        )
    known = {"BM25": [], "default hybrid": []}
    for q in queries:  # known-item: the product's own full title, as a shopper who copied it types it
        for name, hits in (
            ("BM25", searcher.keyword(q["productDisplayName"], size=K)),
            ("default hybrid", searcher.text(q["productDisplayName"], projection, relations, size=K)),
        ):
            ids = [h.id for h in hits]
            known[name].append(1.0 / (1 + ids.index(q["id"])) if q["id"] in ids else 0.0)
    print(
        "known-item (full title -> the product itself): "
        + ", ".join(
            f"{name} first {100 * np.mean([r == 1.0 for r in rr]):.1f}%, MRR@10 {np.mean(rr):.3f}"
            for name, rr in known.items()
        ),
        flush=True,
    )
    out["default hybrid: Searcher.text (RRF BM25 + query tags + text->image)"] = measure(
        test_lists, queries, {"default": 1.0}
    )
    out[f"text: weighted RRF {best['text']:g}/{best[tag_list]:g}/{best['image']:g} (tuned)"] = measure(
        test_lists, queries, best
    )
    return out


def per_query_wins(metrics: dict[str, list[dict]]) -> dict:
    """Per-query wins / ties / losses of each tuned fusion against each of its single lists (same queries)."""
    singles = [n for n in ("text: BM25 (the texts of the rows below)", "text->image kNN (HNSW)") if n in metrics]
    lines, counts = [], {}
    for name in (n for n in metrics if "(tuned)" in n or n.startswith("default hybrid")):
        for single in singles:
            for m in ("recall@10 type", "nDCG@10 type+colour"):
                d = np.array([a[m] - b[m] for a, b in zip(metrics[name], metrics[single])])
                c = {
                    "wins": int((d > 1e-9).sum()),
                    "ties": int((abs(d) <= 1e-9).sum()),
                    "losses": int((d < -1e-9).sum()),
                }
                counts[f"{name} vs {single}: {m}"] = c
                lines.append(
                    f"per query, {name} vs {single.split(' (')[0]}, {m}: {c['wins']} wins, {c['ties']} ties, "
                    f"{c['losses']} losses (mean {100 * d.mean():+.1f})"
                )
    return {"lines": lines, "counts": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--engines", nargs="+", default=["opensearch", "elasticsearch"])
    parser.add_argument("--limit", type=int, default=None, help="index only the first N rows (quick runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backbone", default="efficientnet-lite0", help="image embedding (its cache must be full)")
    parser.add_argument(
        "--text-image",
        type=Path,
        default=None,
        help="a text->image projection folder (MODEL/text-image from `vistag train --text-image`): "
        "adds text->image kNN and its fusions, with weights tuned on other held-out queries",
    )
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results-relevance.json"), help="figures as JSON")
    args = parser.parse_args()
    data = default_data_dir()
    print(f"machine: {machine()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="vistag-relevance-"))
    with open(data / "labels.csv", newline="", encoding="utf-8") as fh:
        all_rows = list(csv.DictReader(fh))[: args.limit]
    catalog = work / "catalog.csv"
    with open(catalog, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(all_rows[0]))
        writer.writeheader()
        writer.writerows(all_rows)
    rows = {r["id"]: r for r in all_rows}
    counts = {"type": {}, "type+colour": {}}
    for r in all_rows:
        counts["type"][(r["articleType"],)] = counts["type"].get((r["articleType"],), 0) + 1
        key = (r["articleType"], r["baseColour"])
        counts["type+colour"][key] = counts["type+colour"].get(key, 0) + 1
    rng = random.Random(args.seed)
    test = [r for r in all_rows if r["split"] == "test"]
    queries = rng.sample(test, min(args.queries, len(test)))
    schema = CatalogSchema.bundled()
    embedder = create_embedder(args.backbone, device="auto")
    projection = TextImageProjection.load(args.text_image) if args.text_image else None
    if projection is not None and projection.config.image_model_id != embedder.model_id:
        raise SystemExit(f"{args.text_image} aims at {projection.config.image_model_id}, not {embedder.model_id}")
    picked = {q["id"] for q in queries}
    tuning = random.Random(args.seed + 1).sample(
        [r for r in test if r["id"] not in picked], min(args.queries, len(test) - len(picked))
    )
    cache = EmbeddingCache(vistag_home() / "cache" / "embeddings", embedder.model_id, embedder.dim)
    store = ImageStore(data / "images.tar")
    shas = [r.get("sha256") or store.load(r["file"]).sha256 for r in all_rows]  # labels.csv lists the file hashes
    assert store.load(all_rows[0]["file"]).sha256 == shas[0]
    vectors, found = cache.get_many(shas)
    assert all(found), "embed the catalog first (vistag train/index fill the cache)"
    ids = [r["id"] for r in all_rows]
    index_of = {i: n for n, i in enumerate(ids)}
    tag_sets = [tags_from_labels(r, schema.tags) for r in all_rows]
    relations = TagRelations.fit(tag_sets)
    rel_path = relations.save(work / "relations")
    df = relations.document_frequency()
    print(f"catalog {len(all_rows)} products, {len(queries)} held-out queries, {embedder.model_id}", flush=True)

    # Exact kNN once (engine independent).
    qv = vectors[[index_of[q["id"]] for q in queries]]
    sims = qv @ vectors.T
    for n, q in enumerate(queries):
        sims[n, index_of[q["id"]]] = -np.inf
    exact = [[ids[j] for j in np.argsort(-row)[:K]] for row in sims]
    report: dict[str, dict] = {}
    for engine in args.engines:
        node = LocalNode(engine, name="bench", heap="1g")
        client = connect(ConnectionSettings(urls=(node.start(),)))
        variants = [("bench-products", None)]
        if engine == "opensearch":
            variants.append(("bench-products-exp", rel_path))
        for index, relations_file in variants:
            client.delete_index(index)
            batch = BatchEmbedder(embedder, store, cache, workers=2)
            options = IndexOptions(
                index=index,
                progress=False,
                dead_letter=work / f"{engine}-{index}.jsonl",
                relations=relations_file,
                chunk_size=1000,
            )
            summary = run_index(client, catalog, schema, batch, options)
            batch.close()
            assert summary.ok, summary.to_dict()
            print(f"{engine}: indexed {summary.indexed} into {index} in {summary.seconds:.0f}s", flush=True)
        searcher = Searcher(client, "bench-products")
        expanded_index = Searcher(client, "bench-products-exp") if engine == "opensearch" else None
        lat: dict[str, list[float]] = {
            k: [] for k in ("keyword", "tags", "image", "similar", "hybrid", "hybrid-engine")
        }
        engine_fusion = searcher.fusion_site("rrf") == "engine"
        metrics: dict[str, list[dict]] = {}
        overlap = []

        def add(name: str, hit_ids: list[str], q: dict) -> None:
            metrics.setdefault(name, []).append(scores([i for i in hit_ids if i != q["id"]], q, rows, counts))

        for n, q in enumerate(queries):
            vec = qv[n]
            hnsw = timed(lambda: searcher.image(vec, k=K + 1), lat["image"])
            hnsw_ids = [h.id for h in hnsw if h.id != q["id"]][:K]
            add("image: HNSW", hnsw_ids, q)
            add("image: exact", exact[n], q)
            overlap.append(len(set(hnsw_ids) & set(exact[n])) / K)
            timed(lambda: searcher.similar(q["id"], k=K), lat["similar"])
            text = query_like(q["productDisplayName"], rng)
            qtags = tags_from_text(text, df, len(all_rows))
            add("text: BM25", [h.id for h in timed(lambda: searcher.keyword(text, size=K + 1), lat["keyword"])], q)
            if qtags:
                add("text: tags", [h.id for h in timed(lambda: searcher.tags(qtags, size=K + 1), lat["tags"])], q)
                add(
                    "text: tags + query expansion",
                    [h.id for h in searcher.tags(qtags, size=K + 1, relations=relations)],
                    q,
                )
                if expanded_index:
                    add("text: tags, index-time expansion", [h.id for h in expanded_index.tags(qtags, size=K + 1)], q)
            else:
                for name in ("text: tags", "text: tags + query expansion") + (
                    ("text: tags, index-time expansion",) if expanded_index else ()
                ):
                    add(name, [], q)
            hybrid = timed(
                lambda: searcher.hybrid(text, qtags or None, None, size=K + 1, fusion="rrf", where="client"),
                lat["hybrid"],
            )
            add("text: hybrid RRF", [h.id for h in hybrid], q)
            add(
                "text: hybrid weighted",
                [
                    h.id
                    for h in searcher.hybrid(text, qtags or None, None, size=K + 1, fusion="weighted", where="client")
                ],
                q,
            )
            if engine_fusion:
                inside = timed(
                    lambda: searcher.hybrid(text, qtags or None, None, size=K + 1, fusion="rrf", where="engine"),
                    lat["hybrid-engine"],
                )
                add("text: hybrid RRF, engine-side", [h.id for h in inside], q)
                add(
                    "text: hybrid weighted, engine-side",
                    [
                        h.id
                        for h in searcher.hybrid(
                            text, qtags or None, None, size=K + 1, fusion="weighted", where="engine"
                        )
                    ],
                    q,
                )
            add(
                "text: hybrid RRF + query expansion",
                [
                    h.id
                    for h in searcher.hybrid(
                        text, qtags or None, None, size=K + 1, fusion="rrf", relations=relations, where="client"
                    )
                ],
                q,
            )
        if projection is not None:
            fused_report = text_image_fusions(
                searcher, projection, queries, tuning, rng, df, len(all_rows), relations, rows, counts, lat
            )
            for name, results in fused_report.items():
                metrics[name] = results
        print(f"\n{engine} ({len(all_rows)} docs, {len(queries)} queries)")
        keys = list(next(iter(metrics.values()))[0])
        print(f"{'configuration':<36} " + " ".join(f"{k:>24}" for k in keys))
        for name, rows_ in metrics.items():
            print(f"{name:<36} " + " ".join(f"{100 * np.mean([r[k] for r in rows_]):>23.1f}%" for k in keys))
        print(f"HNSW overlap@10 with exact kNN: {100 * np.mean(overlap):.1f}%")
        wins = per_query_wins(metrics)
        for line in wins["lines"]:
            print(line)
        print(
            "latency ms (p50 / p95): "
            + ", ".join(
                f"{k} {1000 * np.percentile(v, 50):.1f} / {1000 * np.percentile(v, 95):.1f}"
                for k, v in lat.items()
                if v
            )
        )
        report[engine] = {
            "metrics": {k: {m: float(np.mean([r[m] for r in v])) for m in keys} for k, v in metrics.items()},
            "hnsw_overlap": float(np.mean(overlap)),
            "per_query": wins["counts"],
            "latency_ms": {
                k: [1000 * float(np.percentile(v, 50)), 1000 * float(np.percentile(v, 95))] for k, v in lat.items() if v
            },
        }
        node.stop()
    out = args.json
    import json

    out.write_text(
        json.dumps({"machine": machine(), "docs": len(all_rows), "queries": len(queries), **report}, indent=1)
    )
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
