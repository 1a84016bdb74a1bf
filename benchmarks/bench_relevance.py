"""Relevance and latency of every query type on the full catalog, both engines, through ``vistag.relevance``.

The whole catalog (44,072 products) is indexed once per engine (embeddings from the cache;
kNN tags never use the product itself). The query set is ``--queries`` held-out products
(test split, ``id % 10 == 0``), drawn by :func:`vistag.relevance.queries.sample_queries`:
each is the product's title with the brand and a random third of the other words dropped
(for text strategies) and the product itself (its stored vector for ``image``; always left
out of its own results). Judgments come from the labels
(:func:`vistag.relevance.judgments.from_labels`): same type, and same type and colour.

Strategies: image (HNSW kNN on the product's vector), BM25, tags (the words that are tags,
IDF-weighted), tags with query-time expansion, hybrid RRF of BM25 and tags client-side (and
engine-side where the engine fuses), hybrid RRF with expansion (``Searcher.text`` without a
projection). With ``--text-image DIR`` the default hybrid with the projection too, and its
fusion weights tuned on half the queries and reported on the other half
(:func:`vistag.relevance.evaluate.tune`).

Everything is computed by :func:`vistag.relevance.evaluate.evaluate`: nDCG@10, recall@10
(capped: relevant in the top 10 / min(10, relevant)), precision, MRR, wins/ties/losses and
paired randomisation tests against BM25 (Holm-corrected), latency p50/p95. Reports (Markdown,
JSON, PNG) go to ``--out``; ``rank_eval`` checks BM25's nDCG against the engine's ``_rank_eval``
where the engine has the module.

    python benchmarks/bench_relevance.py [--queries 300] [--engines opensearch elasticsearch] [--model DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import machine

from vistag.analyzers.relations import TagRelations
from vistag.catalog.schema import CatalogSchema
from vistag.catalog.vocabulary import tags_from_labels
from vistag.config import ConnectionSettings, default_data_dir, vistag_home
from vistag.engine.connect import connect
from vistag.images import ImageStore
from vistag.indexer.pipeline import IndexOptions, run_index
from vistag.local.node import LocalNode
from vistag.models.cache import EmbeddingCache
from vistag.models.embedding import BatchEmbedder
from vistag.models.loading import load_model
from vistag.relevance.evaluate import evaluate, tune
from vistag.relevance.judgments import from_labels
from vistag.relevance.queries import sample_queries
from vistag.relevance.rank_eval import has_rank_eval, rank_eval
from vistag.relevance.report import markdown, write_report
from vistag.relevance.strategies import Context, parse_strategies
from vistag.search import Searcher

K = 10
JUDGMENTS = {"type": ["articleType"], "type+colour": ["articleType", "baseColour"]}


def strategies(engine_fusion: bool, projection: bool) -> list:
    """The strategies compared, BM25 first (the baseline)."""
    items: list = [
        {"name": "text: BM25", "kind": "keyword"},
        {"name": "image: HNSW", "kind": "image"},
        {"name": "text: tags", "kind": "tags"},
        {"name": "text: tags + query expansion", "kind": "expand"},
        {"name": "text: hybrid RRF", "kind": "hybrid", "params": {"expand": False, "where": "client"}},
    ]
    if engine_fusion:
        items.append(
            {"name": "text: hybrid RRF, engine-side", "kind": "hybrid", "params": {"expand": False, "where": "engine"}}
        )
    items.append({"name": "text: hybrid RRF + query expansion", "kind": "hybrid", "params": {"where": "client"}})
    if projection:
        items[-1]["name"] = "default hybrid: Searcher.text (BM25 + query tags + text->image)"
        items.append({"name": "text->image kNN", "kind": "text_image"})
    return parse_strategies(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--engines", nargs="+", default=["opensearch", "elasticsearch"])
    parser.add_argument("--limit", type=int, default=None, help="index only the first N rows (quick runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model",
        default="efficientnet-lite0",
        help="backbone name or model directory (a fine-tuned network's vectors); its cache must be full",
    )
    parser.add_argument("--text-image", type=Path, default=None, help="a text->image projection folder")
    parser.add_argument("--permutations", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results-relevance"), help="reports go here")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="vistag-relevance-"))
    try:
        measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> None:
    """Index the catalog into each engine, run every strategy and write the reports; scratch files in ``work``."""
    data = default_data_dir()
    with open(data / "labels.csv", newline="", encoding="utf-8") as fh:
        all_rows = list(csv.DictReader(fh))[: args.limit]
    catalog = work / "catalog.csv"
    with open(catalog, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(all_rows[0]))
        writer.writeheader()
        writer.writerows(all_rows)
    queries = sample_queries(all_rows, args.queries, kind="text", seed=args.seed)
    judgments = {
        name: from_labels(all_rows, {q.id: q.product for q in queries}, cols) for name, cols in JUDGMENTS.items()
    }
    schema = CatalogSchema.bundled()
    embedder = load_model(args.model, device="auto").embedder
    projection = None
    if args.text_image:
        from vistag.models.text_image import TextImageProjection

        projection = TextImageProjection.load(args.text_image)
        if projection.config.image_model_id != embedder.model_id:
            sys.exit(f"{args.text_image} aims at {projection.config.image_model_id}, not {embedder.model_id}")
    cache = EmbeddingCache(vistag_home() / "cache" / "embeddings", embedder.model_id, embedder.dim)
    store = ImageStore(data / "images.tar")
    _, found = cache.get_many([r["sha256"] for r in all_rows])
    if not all(found):
        sys.exit(f"embed the catalog with {embedder.model_id} first ({len(found) - sum(found)} rows missing)")
    relations = TagRelations.fit([tags_from_labels(r, schema.tags) for r in all_rows])
    context = Context(relations, projection, relations.document_frequency(), len(all_rows))
    print(f"catalog {len(all_rows)} products, {len(queries)} held-out queries, {embedder.model_id}", flush=True)
    summary: dict = {"machine": machine(), "docs": len(all_rows), "queries": len(queries), "model": embedder.model_id}
    for engine in args.engines:
        node = LocalNode(engine, name="bench", heap="1g")
        try:
            client = connect(ConnectionSettings(urls=(node.start(),)))
            index = "bench-products"
            client.delete_index(index)
            batch = BatchEmbedder(embedder, store, cache, workers=2)
            options = IndexOptions(index=index, progress=False, dead_letter=work / f"{engine}.jsonl", chunk_size=1000)
            indexed = run_index(client, catalog, schema, batch, options)
            batch.close()
            assert indexed.ok, indexed.to_dict()
            print(f"{engine}: indexed {indexed.indexed} into {index} in {indexed.seconds:.0f}s", flush=True)
            searcher = Searcher(client, index, embedder=embedder)
            chosen = strategies(searcher.fusion_site("rrf") == "engine", projection is not None)
            summary[engine] = {}
            for name, judged in judgments.items():
                result = evaluate(
                    searcher, index, queries, judged, chosen, k=K, context=context, permutations=args.permutations
                )
                run = result.to_dict()
                run["info"]["judgments_from"] = f"labels: same {name}"
                paths = write_report(run, args.out, f"{engine}-{name.replace('+', '-')}")
                print(f"\n{engine}, relevant = same {name} ({paths['markdown']}):\n{markdown(run)}", flush=True)
                summary[engine][name] = {"summary": run["summary"], "comparisons": run["comparisons"]}
            if has_rank_eval(searcher):
                keyword = chosen[0]
                theirs = rank_eval(searcher, queries, judgments["type+colour"], keyword, "ndcg", K)
                mine = evaluate(searcher, index, queries, judgments["type+colour"], [keyword], k=K, permutations=1)
                diff = max(abs(theirs[q] - v[f"ndcg@{K}"]) for q, v in mine.strategies[0].per_query.items())
                print(f"_rank_eval nDCG@{K} of BM25 against vistag's, largest per-query difference: {diff:.2e}")
                summary[engine]["rank_eval_max_difference"] = diff
            else:
                print(f"_rank_eval: {engine} has no rank-eval module (skipped)")
            if projection is not None:
                tuned = tune(searcher, index, queries, judgments["type+colour"], chosen[-2], k=K, context=context)
                print(
                    f"\nweights tuned on {len(tuned.tuned_on)} queries: {tuned.weights} (nDCG@{K} {tuned.tuning_score:.3f}); "
                    f"on the other queries:\n{markdown(tuned.held_out.to_dict())}"
                )
                summary[engine]["tuned"] = {"weights": tuned.weights, "held_out": tuned.held_out.to_dict()["summary"]}
        finally:
            node.stop()
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
