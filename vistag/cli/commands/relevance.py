"""``vistag relevance queries|run|tune|report``: see :mod:`vistag.relevance`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vistag.cli.options import add_connection, connect
from vistag.cli.output import print_json
from vistag.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag relevance``."""
    rel = sub.add_parser(
        "relevance",
        help="measure relevance on your own queries and judgments: every strategy side by side, with p-values",
        description="queries: draw a query set from a catalog's held-out rows. run: every strategy over the query "
        "set, nDCG/recall/precision/MRR@k, wins/ties/losses and paired significance tests against a baseline, "
        "latency; writes relevance.json, .md and .png. tune: choose a hybrid's weights on part of the queries, "
        "report on the rest. report: render a run's JSON again, or (--against) compare it with an earlier run, "
        "query by query.",
    )
    add_connection(rel)
    rel.add_argument("action", choices=("queries", "run", "tune", "report"))
    rel.add_argument("--queries", help="query set (.csv/.tsv/.json/.jsonl); `queries` writes it")
    judged = rel.add_mutually_exclusive_group()
    judged.add_argument("--judgments", help="judgments: TREC qrels, CSV (query_id,doc_id,grade) or JSON")
    judged.add_argument(
        "--judge-by",
        nargs="+",
        metavar="COLUMN",
        help="judgments from the catalog's labels: relevant = same values of these columns as the query's product "
        "(e.g. articleType, or articleType baseColour); needs --catalog",
    )
    judged.add_argument("--clicks", help="judgments from a click log (query,doc_id,position,clicked): COEC grades")
    rel.add_argument("--catalog", help="the catalog (queries; --judge-by)")
    rel.add_argument("--images", help="the catalog's photo folder (image queries)")
    rel.add_argument("--kind", default="text", choices=("text", "title", "image", "product"), help="queries: kind")
    rel.add_argument("--count", type=int, default=300, help="queries: how many (default %(default)s)")
    rel.add_argument("--split-col", default="split", help="queries: drawn from rows whose column is 'test'")
    rel.add_argument(
        "--strategy",
        action="append",
        default=[],
        metavar="KIND|JSON",
        help="a strategy: a kind (keyword, tags, expand, image, similar, text_image, hybrid) or a JSON object "
        '{"name", "kind", "params"} (e.g. a stored template); repeatable',
    )
    rel.add_argument("--strategies", help="a JSON file with a list of strategies")
    rel.add_argument("--baseline", default=None, help="the strategy compared with (default: the first)")
    rel.add_argument("--k", type=int, default=10, help="metric cutoff (default %(default)s)")
    rel.add_argument("--index", default="products", help="index or alias (default %(default)s)")
    rel.add_argument("--model", default=None, help="the model that embedded the index (image queries)")
    rel.add_argument("--text-image", default=None, help="text->image projection folder (text_image, hybrid)")
    rel.add_argument("--relations", default=None, help="tag relations file (tags, expand, hybrid)")
    rel.add_argument("--metric", default="ndcg", help="tune: the metric maximised (default %(default)s)")
    rel.add_argument("--run", default=None, help="report: a run's relevance.json")
    rel.add_argument(
        "--against",
        default=None,
        help="report: an earlier run's relevance.json (same queries and judgments); compares each strategy of "
        "--run with the same strategy there, query by query (comparison.json, comparison.md)",
    )
    rel.add_argument("--permutations", type=int, default=10_000, help="randomisation test (default %(default)s)")
    rel.add_argument("--seed", type=int, default=0)
    rel.add_argument("--out", default="relevance", help="folder of the report (default %(default)s)")
    rel.set_defaults(handler=run_relevance)


def _strategies(args: argparse.Namespace) -> list[Any]:
    from vistag.relevance.strategies import parse_strategies, read_strategies

    items: list[Any] = [json.loads(s) if s.lstrip().startswith("{") else s for s in args.strategy]
    out = read_strategies(args.strategies) if args.strategies else []
    out += parse_strategies(items)
    if not out:
        raise ConfigError("give --strategy (repeatable) or --strategies FILE")
    return out


def _catalog_rows(path: str) -> list[dict]:
    """The usable rows of a catalog with the bundled schema (malformed rows left out)."""
    from vistag.catalog.rows import MalformedRow, read_catalog
    from vistag.catalog.schema import CatalogSchema

    return [r.fields for r in read_catalog(path, CatalogSchema.bundled()) if not isinstance(r, MalformedRow)]


def _judgments(args: argparse.Namespace, queries: list[Any]) -> dict:
    from vistag.relevance.judgments import from_labels, read_click_log, read_judgments

    if args.judgments:
        return read_judgments(args.judgments)
    if args.clicks:
        return read_click_log(args.clicks, {q.text: q.id for q in queries if q.text})
    if args.judge_by:
        if not args.catalog:
            raise ConfigError("--judge-by needs --catalog")
        rows = _catalog_rows(args.catalog)
        missing = [q.id for q in queries if not q.product]
        if missing:
            raise ConfigError(f"--judge-by needs each query's product; {missing[:5]} have none")
        return from_labels(rows, {q.id: q.product for q in queries}, args.judge_by)
    raise ConfigError("give --judgments, --judge-by or --clicks")


def _context(args: argparse.Namespace, strategies: list[Any]) -> Any:
    from vistag.config import default_relations_path
    from vistag.relevance.strategies import Context

    kinds = {s.kind for s in strategies}
    context = Context()
    path = Path(args.relations) if args.relations else default_relations_path()
    if kinds & {"tags", "expand", "hybrid"} and path.with_suffix(".json").is_file():
        from vistag.analyzers.relations import TagRelations

        context.relations = TagRelations.load(path)
        context.document_frequency = context.relations.document_frequency()
    if args.text_image:
        from vistag.models.text_image import TextImageProjection

        context.projection = TextImageProjection.load(args.text_image)
    return context


def _write_comparison(args: argparse.Namespace) -> dict[str, Path]:
    """``report --run AFTER --against BEFORE``: the paired comparison of two runs, as JSON and Markdown."""
    from vistag.relevance.evaluate import compare_runs
    from vistag.relevance.report import comparison_markdown, read_run

    comparison = compare_runs(
        read_run(args.run), read_run(args.against), permutations=args.permutations, seed=args.seed
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "comparison.json", "markdown": out / "comparison.md"}
    info = {"after": str(args.run), "before": str(args.against), "permutations": args.permutations}
    paths["json"].write_text(json.dumps({"info": info, "comparisons": comparison}, indent=1))
    paths["markdown"].write_text(
        f"{args.run} against {args.against}\n\n" + comparison_markdown(comparison, args.permutations)
    )
    return paths


def run_relevance(args: argparse.Namespace) -> int:
    """Draw a query set, run or tune strategies, or render a report."""
    from vistag.relevance.report import read_run, write_report

    if args.action == "report":
        if not args.run:
            raise ConfigError("report needs --run RELEVANCE_JSON")
        if args.against:
            print_json({k: str(v) for k, v in _write_comparison(args).items()})
            return 0
        print_json({k: str(v) for k, v in write_report(read_run(args.run), args.out).items()})
        return 0
    if not args.queries:
        raise ConfigError(f"{args.action} needs --queries")
    if args.action == "queries":
        from vistag.relevance.queries import sample_queries, write_queries

        if not args.catalog:
            raise ConfigError("queries needs --catalog")
        rows = _catalog_rows(args.catalog)
        queries = sample_queries(
            rows, args.count, kind=args.kind, seed=args.seed, split_column=args.split_col, images=args.images
        )
        print(write_queries(queries, args.queries))
        return 0
    from vistag.relevance.evaluate import evaluate, tune
    from vistag.relevance.queries import read_queries

    queries = read_queries(args.queries)
    strategies = _strategies(args)
    judgments = _judgments(args, queries)
    context = _context(args, strategies)
    client = connect(args)
    context.documents = context.documents or client.count(args.index)
    embedder = None
    if args.model:
        from vistag.models.loading import load_model

        embedder = load_model(args.model).embedder
    if args.action == "tune":
        hybrid = next((s for s in strategies if s.kind == "hybrid"), None)
        if hybrid is None:
            raise ConfigError("tune needs a hybrid strategy")
        from vistag.search.queries import Searcher

        tuned = tune(
            Searcher(client, args.index, embedder=embedder),
            args.index,
            queries,
            judgments,
            hybrid,
            metric=args.metric,
            k=args.k,
            context=context,
            seed=args.seed,
        )
        run = tuned.held_out.to_dict()
        run["tuning"] = {"weights": tuned.weights, "tuned_on": tuned.tuned_on, "score": tuned.tuning_score}
        run["tuning"]["grid"] = tuned.grid
    else:
        result = evaluate(
            client,
            args.index,
            queries,
            judgments,
            strategies,
            k=args.k,
            baseline=args.baseline,
            context=context,
            embedder=embedder,
            permutations=args.permutations,
            seed=args.seed,
        )
        run = result.to_dict()
    paths = write_report(run, args.out)
    print((paths["markdown"]).read_text())
    print_json({k: str(v) for k, v in paths.items()})
    return 0
