"""Argument parser of the ``vistag`` command (kept apart from ``main`` so it can be tested and documented).

References:
    A. Sahay, A. Bagree, K. Susanto, N. Padiyara, U. Chaturvedi, "Image Tagging for Search and Recommendation".
"""

from __future__ import annotations

import argparse
import os

from vistag.version import __version__
from vistag.config import ENGINES, default_engine


def _connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (defaults from VISTAG_* environment variables)")
    group.add_argument("--engine", choices=ENGINES, default=default_engine(),
                       help="local engine to use when no --url is given (env VISTAG_ENGINE, default %(default)s)")
    group.add_argument("--url", action="append", default=None, metavar="URL",
                       help="a node URL; repeat, or separate with commas, for several nodes (env VISTAG_URL, "
                            "comma-separated); default: the local cluster or node of --engine")
    group.add_argument("--cloud-id", default=None, help="Elastic Cloud deployment id (env VISTAG_CLOUD_ID)")
    group.add_argument("--api-key", default=None, help="API key, base64 id:key form (env VISTAG_API_KEY)")
    group.add_argument("--bearer-token", default=None, help="bearer token (env VISTAG_BEARER_TOKEN)")
    group.add_argument("--user", default=None, help="basic-auth user (env VISTAG_USER)")
    group.add_argument("--password", default=None, help="basic-auth password (env VISTAG_PASSWORD); write --password=VALUE when it starts with '-'")
    group.add_argument("--ca-cert", default=None, help="CA bundle to verify TLS (env VISTAG_CA_CERT)")
    group.add_argument("--client-cert", default=None, help="client certificate (PEM) for mutual TLS")
    group.add_argument("--client-key", default=None, help="private key (PEM) of --client-cert")
    group.add_argument("--no-verify-tls", action="store_true",
                       help="do NOT verify the server certificate (throwaway test clusters only; logged as a warning)")
    group.add_argument("--aws-sigv4", choices=("es", "aoss"), default=None,
                       help="sign requests with AWS SigV4 for Amazon OpenSearch Service (es) or Serverless (aoss); "
                            "credentials from the AWS environment")
    group.add_argument("--aws-region", default=None, help="AWS region for --aws-sigv4 (env AWS_REGION)")
    group.add_argument("--http-compress", action="store_true", help="gzip request bodies (bulk requests shrink ~3x)")


def _model(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=os.environ.get("VISTAG_MODEL", "efficientnet-lite0"),
                       help="backbone name, or a model directory from `vistag train` (env VISTAG_MODEL, default %(default)s)")
    group.add_argument("--weights", default=None, help="local weights file (needed for resnet50/vgg16/vgg19)")
    group.add_argument("--input-size", type=int, default=None, help="input resolution in pixels (default: the model's)")
    group.add_argument("--device", default=os.environ.get("VISTAG_DEVICE", "auto"), help="auto, cpu or cuda (default %(default)s)")
    group.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default %(default)s)")
    _compile_flag(group)


def _compile_flag(group) -> None:
    group.add_argument("--compile", action="store_true",
                       help="run the backbone through torch.compile (a one-off 10-40 s; about 2.7x the CPU forward)")


def _image_loading(group) -> None:
    """``--workers`` and ``--decode-processes`` (the embedding pipeline's loading stages)."""
    group.add_argument("--workers", type=int, default=4, help="image loading threads (default %(default)s)")
    group.add_argument("--decode-processes", type=int, default=None,
                       help="image decode processes (default: a quarter of the cores on CPU, none below 4 cores; all but two "
                            "with CUDA; 0: decode in the loading threads)")


def build_parser() -> argparse.ArgumentParser:
    """Return the full ``vistag`` parser."""
    parser = argparse.ArgumentParser(
        prog="vistag",
        description="Tag product images with a CNN and index them into Elasticsearch 8 / OpenSearch 2.",
    )
    parser.add_argument("--version", action="version", version=f"vistag {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors; no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # engine ---------------------------------------------------------------
    engine = sub.add_parser("engine", help="download, start, stop and inspect a local engine node",
                            description="Manage a local engine node, or a cluster of several (--nodes), bound to 127.0.0.1 "
                                        "(data under $VISTAG_HOME).")
    engine_sub = engine.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("start", "start the node (reuses a running one) and wait for yellow health"),
                         ("stop", "stop the node cleanly"), ("status", "print the node's state"),
                         ("url", "print the node's URL (empty and exit 1 when not running)"),
                         ("install", "download and lay out the distribution without starting it")):
        p = engine_sub.add_parser(action, help=text, description=text)
        p.add_argument("--engine", choices=ENGINES, default=default_engine(), help="engine (env VISTAG_ENGINE, default %(default)s)")
        p.add_argument("--version", dest="engine_version", default=None, metavar="V",
                       help="another pinned line: OpenSearch 3 (3.6.0) or Elasticsearch 9 (9.5.0), a major or the full "
                            "version; they need Java 21+ (default: OpenSearch 2.19.1 / Elasticsearch 8.19.21)")
        p.add_argument("--with", dest="with_", action="append", choices=["ml", "security"], metavar="EXTRA",
                       help="optional plugin set (OpenSearch): `ml` = ml-commons + job-scheduler (~360 MB; ingest and "
                            "search pipelines that call `vistag service`), `security` = the security plugin (--secure "
                            "adds it); such a node is separate from the plain one")
        if action == "start":
            p.add_argument("--port", type=int, default=None, help="HTTP port (default: a free one)")
            p.add_argument("--heap", default=None, help="JVM heap per node, at most 1g recommended (default 1g; 768m "
                                                         "per node of a cluster)")
            p.add_argument("--nodes", type=int, default=1, metavar="N",
                           help="start an N-node cluster on loopback (seed hosts, one data folder and port pair per node; "
                                "indices get one replica from 2 nodes on); status, url and stop then cover every node")
        if action != "install":
            p.add_argument("--secure", action="store_true",
                           help="a secured node (or cluster): TLS on HTTP and transport from a private CA made with "
                                "openssl, internal users vistag-admin, vistag-indexer and vistag-storefront with the "
                                "roles of `vistag security roles` (passwords in $VISTAG_HOME/security/<engine>/"
                                "credentials.json, mode 600); separate from the plain node")
        if action == "status":
            p.add_argument("--json", action="store_true", help="print JSON")

    # security -------------------------------------------------------------
    security = sub.add_parser("security", help="least-privilege roles for vistag's indexer and a storefront",
                              description="Print the role definitions a cluster admin installs: an indexer role "
                                          "(write and manage <index>*) and a storefront role (search and search "
                                          "templates on the alias only).")
    security_sub = security.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = security_sub.add_parser("roles", help="print the indexer and storefront roles for --engine")
    p.add_argument("--engine", choices=ENGINES, default=default_engine(), help="engine (default %(default)s)")
    p.add_argument("--index", default="products", help="index name or prefix the indexer writes (default %(default)s)")
    p.add_argument("--alias", default=None, help="the name the storefront reads (default: --index)")
    p.add_argument("--json", action="store_true", help="print {role: body} as JSON instead of console requests")

    # mappings -------------------------------------------------------------
    mappings = sub.add_parser("mappings", help="show or install the index template and search templates",
                              description="Render the index template and stored search templates, or install them.")
    mappings_sub = mappings.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("show", "print the index template and search templates as JSON"),
                         ("install", "install the index template and search templates on the cluster")):
        p = mappings_sub.add_parser(action, help=text, description=text)
        _connection(p)
        p.add_argument("--index", default="products", help="index/alias name (default %(default)s)")
        p.add_argument("--dim", type=int, default=None, help="vector dimension (default: the model's)")
        p.add_argument("--vector-quantization", choices=("none", "int8"), default="none",
                       help="float HNSW (none) or int8 scalar-quantized HNSW (default %(default)s)")
        p.add_argument("--model", default=os.environ.get("VISTAG_MODEL", "efficientnet-lite0"), help="backbone whose dimension to use")
        if action == "show":
            p.add_argument("--offline", action="store_true", help="render for --engine with all modules, without a cluster")

    # index ----------------------------------------------------------------
    index = sub.add_parser("index", help="embed, tag and bulk-index a catalog",
                           description="Read a catalog (CSV/JSONL) and its images, embed them, tag them by kNN over a "
                                       "labelled reference set and stream them into the index.")
    _connection(index)
    _model(index)
    index.add_argument("--catalog", required=True, help="catalog file (.csv, .tsv, .jsonl)")
    index.add_argument("--index", default="products", help="index name (default %(default)s)")
    index.add_argument("--resume", action="store_true", help="skip rows whose id is already in the index")
    index.add_argument("--partition", default=None, metavar="I/N",
                       help="index only the I-th of N disjoint slices of the catalog (a stable hash of the id), so N "
                            "jobs or machines can share one catalog into one index; the kNN reference set is the "
                            "slice itself unless --reference or --reference-index names a shared one")
    _indexing(index)

    sync = sub.add_parser("sync", help="make an index equal to today's catalog, doing only what changed",
                          description="Index new rows, re-embed and re-tag rows whose image changed, rewrite rows that "
                                      "changed otherwise (no embedding), delete documents that left the catalog, leave "
                                      "unchanged rows alone. Idempotent; run it again after an interruption.")
    _connection(sync)
    _model(sync)
    sync.add_argument("--catalog", required=True, help="today's catalog file (.csv, .tsv, .jsonl)")
    sync.add_argument("--index", default="products", help="index or alias to sync (default %(default)s)")
    sync.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    _indexing(sync)

    reindex = sub.add_parser(
        "reindex", help="build a new versioned index and swap the alias to it with no downtime",
        description="Build <alias>-<timestamp> from a catalog (or from the current index with --from-index, "
                    "re-tagging stored vectors when --model is a trained model), check it is complete, then point "
                    "the alias at it in one atomic _aliases call and delete the old index (unless --keep-old).")
    _connection(reindex)
    _model(reindex)
    reindex.add_argument("--alias", default="products", help="the alias readers use (default %(default)s)")
    reindex.add_argument("--catalog", default=None, help="catalog file to build from")
    reindex.add_argument("--from-index", action="store_true", help="build from the documents the alias serves now")
    reindex.add_argument("--keep-old", action="store_true", help="keep the old index after the swap")
    reindex.add_argument("--dry-run", action="store_true", help="print what would happen; change nothing")
    reindex.add_argument("--resume", action="store_true", help="continue the newest unfinished <alias>-* index")
    _indexing(reindex)

    # search ---------------------------------------------------------------
    search = sub.add_parser("search", help="keyword, tag, image, hybrid or similar-product search",
                            description="Search the index by keywords, weighted tags or an image; give more than one "
                                        "of --query/--tags/--image for a hybrid query fused with --fusion; or "
                                        "--similar ID for products like a given one.")
    _connection(search)
    _model(search)
    search.add_argument("--query", help="keyword query (BM25 on title and text)")
    search.add_argument("--tags", nargs="+", metavar="TAG[:WEIGHT]", help="tags, e.g. tshirts casual:0.5")
    search.add_argument("--image", help="query image: a file path or an http(s) URL")
    search.add_argument("--text-image", metavar="DIR", default=None,
                        help="a text->image projection (a model directory trained with --text-image, or its text-image "
                             "folder): --query runs the default hybrid, BM25 + query tags (the words that are tags "
                             "and the tags the projection reads) + text->image kNN")
    search.add_argument("--similar", metavar="ID", help="products similar to this product id (image + shared tags)")
    search.add_argument("--fusion", choices=("rrf", "weighted"), default="rrf",
                        help="how a hybrid query's lists are fused, client-side (default %(default)s)")
    search.add_argument("--fusion-weights", default=None, metavar="text=W,tags=W,image=W", help="per-list fusion weights")
    search.add_argument("--fusion-site", choices=("auto", "engine", "client"), default="auto",
                        help="fuse inside the engine (OpenSearch + neural-search) or here; auto: the engine when it can")
    search.add_argument("--expand", action=argparse.BooleanOptionalAction, default=None,
                        help="query-time tag expansion with the tag relations (default: on when a relations file "
                             "exists: it measured +1.2 points recall@10 over none, +0.9 over index-time expansion)")
    search.add_argument("--relations", default=None, help="relations file for --expand (default: $VISTAG_HOME/relations/tag-relations.npz)")
    search.add_argument("--index", default="products", help="index or alias (default %(default)s)")
    search.add_argument("--k", type=int, default=10, help="results (kNN k for --image) (default %(default)s)")
    search.add_argument("--from", dest="offset", type=int, default=0, help="offset for paging (keyword/tags)")
    search.add_argument("--num-candidates", type=int, default=None, help="HNSW candidates for --image (default max(100, 2k))")
    search.add_argument("--category", default=None, help='category path prefix filter, e.g. "Apparel > Topwear"')
    search.add_argument("--filter", action="append", default=[], metavar="NAME=VALUE", help="attribute filter, repeatable")
    search.add_argument("--json", action="store_true", help="print JSON")

    _models(sub)
    _relations(sub)

    check = sub.add_parser("check-tags", help="which of a seller's tags does the product photo support?",
                           description="Compare a seller's tags with the tags of the photo's nearest catalog products: "
                                       "supported, weak, contradicted, unknown, and tags to add (JSON).")
    _connection(check)
    _model(check)
    check.add_argument("--image", required=True, help="the product photo (file or http(s) URL)")
    check.add_argument("--tags", nargs="+", required=True, metavar="TAG", help="the seller's tags")
    check.add_argument("--index", default="products", help="index or alias (default %(default)s)")
    check.add_argument("--k", type=int, default=20, help="neighbours that vote (default %(default)s)")

    serve = sub.add_parser("serve", help="a demo storefront page over a running engine",
                           description="Serve a search page (search box, tag chips, image upload, thumbnails, "
                                       "similar products, expanded tags) and its JSON API.")
    _connection(serve)
    _model(serve)
    serve.add_argument("--index", default="products", help="index or alias (default %(default)s)")
    serve.add_argument("--images", default=None, help="catalog images (folder or .tar) for thumbnails "
                                                      "(default: the sample data's images.tar)")
    serve.add_argument("--relations", default=None, help="tag relations file (default: $VISTAG_HOME/relations/tag-relations.npz if present)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port, 0 for any free one (default %(default)s)")
    serve.add_argument("--service", default=None, metavar="URL",
                       help="embed image queries with a running `vistag service` instead of loading the model here")
    serve.add_argument("--service-token", default=None, help="the service's bearer token (env VISTAG_SERVICE_TOKEN)")

    service = sub.add_parser("service", help="the inference API (embed, tag, analyze) a storefront or an engine calls",
                             description="Serve POST /v1/embed, /v1/tag and /v1/analyze (one image or a batch; raw bytes, "
                                         "base64 or allowed URLs), /healthz, /readyz and /metrics, with concurrent "
                                         "requests micro-batched into one forward pass. OpenAPI at /docs.")
    _connection(service)
    _model(service)
    tags = service.add_argument_group("tags (one source, optional)")
    tags.add_argument("--reference", default=None, help="labelled catalog whose kNN tags /v1/tag gives")
    tags.add_argument("--reference-images", default=None, help="images of --reference (folder or .tar)")
    tags.add_argument("--reference-index", default=None, metavar="INDEX", help="labelled index the engine searches for the kNN")
    tags.add_argument("--schema", default="fashion-product-images", help="schema of the reference (default %(default)s)")
    tags.add_argument("--k", type=int, default=10, help="neighbours for kNN tags (default %(default)s)")
    tags.add_argument("--top-d", type=int, default=10, help="tags kept per image (default %(default)s)")
    net = service.add_argument_group("network and limits")
    net.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s)")
    net.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    net.add_argument("--token", default=None, help="bearer token clients must send (env VISTAG_SERVICE_TOKEN)")
    net.add_argument("--allow-url-host", action="append", metavar="HOST",
                     help="host whose image URLs may be fetched (repeatable; *.example.com for subdomains); none by default")
    net.add_argument("--allow-private-urls", action="store_true",
                     help="let allowed hosts resolve to loopback/private/link-local addresses (refused by default)")
    net.add_argument("--url-timeout", type=float, default=5.0, help="seconds per image URL fetch (default %(default)s)")
    net.add_argument("--max-body-mb", type=int, default=24, help="largest request body in MiB (default %(default)s)")
    net.add_argument("--max-image-mb", type=int, default=16, help="largest encoded image in MiB (default %(default)s)")
    net.add_argument("--max-pixels", type=int, default=40_000_000, help="largest decoded image (default %(default)s)")
    net.add_argument("--max-images", type=int, default=32, help="most images per request (default %(default)s)")
    batch = service.add_argument_group("micro-batching")
    batch.add_argument("--max-batch", type=int, default=32, help="images per forward pass (default %(default)s)")
    batch.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits to fill (default %(default)s)")
    batch.add_argument("--no-batching", action="store_true", help="one forward per image")

    pipelines = sub.add_parser("pipelines", help="engine-side pipelines that call `vistag service` (OpenSearch + ml-commons)",
                               description="Register the service as an ml-commons remote model and install an ingest "
                                           "pipeline (the index's default: raw rows written with a plain _bulk get "
                                           "vectors and tags) and a search pipeline (query by an image in the request).")
    pipelines_sub = pipelines.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = pipelines_sub.add_parser("install", help="register the service and install the pipelines of --index")
    _connection(p)
    p.add_argument("--index", default="products", help="index to wire (default %(default)s)")
    p.add_argument("--service", required=True, metavar="URL", help="where the engine reaches `vistag service`")
    p.add_argument("--service-token", default=None, help="the service's bearer token (env VISTAG_SERVICE_TOKEN)")

    # demo -----------------------------------------------------------------
    demo = sub.add_parser("demo", help="end to end: local engine, sample catalog, example queries",
                          description="Start a local node, index a sample of the fashion catalog and run example queries.")
    _model(demo)
    demo.add_argument("--engine", choices=ENGINES, default=default_engine(), help="local engine (default %(default)s)")
    demo.add_argument("--data", default=None, help="fashion-product-images folder (default $VISTAG_DATA or ../shared/data/...)")
    demo.add_argument("--size", type=int, default=600, help="sample rows to index (default %(default)s)")
    demo.add_argument("--index", default="demo-products", help="index name (default %(default)s)")
    demo.add_argument("--stop", action="store_true", help="stop the engine at the end")
    return parser


def _runtime(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("runtime")
    group.add_argument("--weights", default=None, help="local backbone weights file (resnet50/vgg16/vgg19)")
    group.add_argument("--device", default=os.environ.get("VISTAG_DEVICE", "auto"), help="auto, cpu or cuda (default %(default)s)")
    group.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default %(default)s)")
    _image_loading(group)
    _compile_flag(group)


def _catalog(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True, help="labelled catalog (.csv, .tsv, .jsonl)")
    parser.add_argument("--images", default=None, help="image directory or .tar")
    parser.add_argument("--schema", default="fashion-product-images",
                        help="schema JSON file, or the name of a bundled one (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="read only the first N rows")


def _models(sub) -> None:
    train = sub.add_parser(
        "train", help="train category, attribute and tag heads on a labelled catalog",
        description="Embed a labelled catalog (through the embedding cache), train a multi-task head (consistent "
                    "category hierarchy, masked attribute heads, multi-label tags with per-tag thresholds) and "
                    "write a model directory that `vistag index --model`, `eval` and `tag` read.")
    _catalog(train)
    train.add_argument("--out", required=True, help="model directory to write")
    split = train.add_mutually_exclusive_group()
    split.add_argument("--split-col", default=None, help="column whose value 'test' marks test rows (and 'val' validation rows)")
    split.add_argument("--test-fraction", type=float, default=0.1, help="test share by id hash when no --split-col (default %(default)s)")
    train.add_argument("--val-fraction", type=float, default=0.1, help="validation share of the training rows (default %(default)s)")
    train.add_argument("--backbone", default=os.environ.get("VISTAG_MODEL", "efficientnet-lite0"),
                       help="backbone name (env VISTAG_MODEL, default %(default)s)")
    train.add_argument("--input-size", type=int, default=None, help="input resolution (default: the backbone's)")
    train.add_argument("--levels", nargs="*", default=None, help="hierarchy columns root first (default: the schema's category)")
    train.add_argument("--attributes", nargs="*", default=None, help="attribute columns (default: the schema's attributes)")
    train.add_argument("--tag-columns", nargs="*", default=None, help="tag columns (default: the schema's tags)")
    train.add_argument("--min-count", type=int, default=10, help="rarer classes fold into 'other', rarer tags are dropped (default %(default)s)")
    train.add_argument("--class-weighting", choices=("none", "sqrt", "balanced"), default="sqrt",
                       help="loss weights against class imbalance (default %(default)s)")
    train.add_argument("--epochs", type=int, default=40, help="maximum epochs (default %(default)s)")
    train.add_argument("--hidden", type=int, default=1024, help="hidden layer width, 0 for linear heads (default %(default)s)")
    train.add_argument("--min-confidence", type=float, default=0.0,
                       help="best-path probability below which predictions are not written (default %(default)s)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    train.add_argument("--text-image", action="store_true",
                       help="also train the text->image projection on the rows' titles (saved in MODEL/text-image; "
                            "hybrid search then adds a text->image kNN list)")
    train.add_argument("--title-aware", action="store_true",
                       help="opt-in: the heads also read the product title (its sentence vector joined to the image "
                            "embedding); such a model tags in `vistag index` only, and `vistag check-tags` stays image-only")
    train.add_argument("--read-labels", nargs="*", default=None, metavar="COLUMN",
                       help="with --text-image: label columns the query text learns to read as query tags (default: the "
                            "deepest category level and any colour attribute; none: nothing read)")
    train.add_argument("--json", action="store_true", help="print the summary as JSON")
    _runtime(train)

    ev = sub.add_parser(
        "eval", help="measure a model and the kNN tagger on the test rows",
        description="Top-1/top-5/MACC per level and attribute, P/R/F1@K of heads, kNN and their ensemble, Hamming "
                    "score and exact match, coverage vs error, type-validator rates, confusion matrix PNG.")
    ev.add_argument("--model", required=True, help="model directory from `vistag train`")
    _catalog(ev)
    ev.add_argument("--split-col", default=None, help="override the model's split column")
    ev.add_argument("--test-fraction", type=float, default=None, help="override the model's test fraction")
    ev.add_argument("--k", type=int, default=10, help="neighbours of the kNN tagger (default %(default)s)")
    ev.add_argument("--json", default=None, help="write the report as JSON here")
    ev.add_argument("--report", default=None, help="write the report as Markdown here")
    ev.add_argument("--confusion-png", default=None, help="write the finest level's confusion matrix here")
    ev.add_argument("--attribute-confusion-png", nargs=2, action="append", default=[], metavar=("COLUMN", "PNG"),
                    help="write an attribute's confusion matrix (e.g. baseColour colours.png); repeatable")
    ev.add_argument("--robustness", type=int, default=0, metavar="N",
                    help="also re-encode and re-resize N test images and report prediction agreement")
    _runtime(ev)

    tag = sub.add_parser("tag", help="tag image files with a trained model (JSON)",
                         description="Print categories, attributes and tags with scores for each image as JSON.")
    tag.add_argument("images", nargs="+", metavar="IMAGE", help="image files or http(s) URLs")
    tag.add_argument("--model", required=True, help="model directory from `vistag train`")
    tag.add_argument("--top-k", type=int, default=3, help="ranked classes shown per level (default %(default)s)")
    _runtime(tag)


def _relations(sub) -> None:
    rel = sub.add_parser(
        "relations", help="learn tag relations (co-occurrence + tag-name semantics) from a catalog",
        description="Build the sparse tag co-occurrence cosine matrix of a catalog's tags, blend it with the "
                    "semantic similarity of the tag names (sentence-transformers, offline), save it, and with "
                    "--install store it in the engine's tag_relations index.")
    _connection(rel)
    rel.add_argument("action", choices=("build",), help="build (and optionally --install) the relations")
    rel.add_argument("--catalog", required=True, help="labelled catalog (.csv, .tsv, .jsonl)")
    rel.add_argument("--schema", default="fashion-product-images", help="schema file or bundled name (default %(default)s)")
    rel.add_argument("--tag-columns", nargs="*", default=None, help="tag columns (default: the schema's tags)")
    rel.add_argument("--out", default=None, help="relations file (default $VISTAG_HOME/relations/tag-relations.npz)")
    rel.add_argument("--no-semantic", action="store_true", help="co-occurrence only (no sentence-transformers)")
    rel.add_argument("--weight", type=float, default=0.7, help="co-occurrence weight in the blend (default %(default)s)")
    rel.add_argument("--top-n", type=int, default=50, help="relations kept per tag (default %(default)s)")
    rel.add_argument("--min-count", type=int, default=1, help="leave out tags on fewer items (default %(default)s)")
    rel.add_argument("--install", action="store_true", help="also store the relations in the engine")
    rel.add_argument("--index", default="tag_relations", help="relations index (default %(default)s)")
    rel.add_argument("--device", default=os.environ.get("VISTAG_DEVICE", "cpu"), help="text encoder device (default %(default)s)")

    exp = sub.add_parser("expand-tags", help="related tags for some tags (recommendations)",
                         description="Accumulate each related tag's similarity over the given tags, leave out the "
                                     "given tags, keep those above --cutoff, best first (Sahay et al.).")
    exp.add_argument("tags", nargs="+", metavar="TAG", help="tag slugs, e.g. sneakers men")
    exp.add_argument("--relations", default=None, help="relations file (default $VISTAG_HOME/relations/tag-relations.npz)")
    exp.add_argument("--cutoff", type=float, default=0.2, help="minimum accumulated similarity (default %(default)s)")
    exp.add_argument("--limit", type=int, default=20, help="most tags shown (default %(default)s)")
    exp.add_argument("--explain", action="store_true", help="show co-occurrence / semantic / blended similarity per source tag")
    exp.add_argument("--json", action="store_true", help="print JSON")


def _indexing(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``index`` and ``reindex``."""
    parser.add_argument("--images", default=None, help="image directory or .tar (references may also be URLs or absolute paths)")
    parser.add_argument("--schema", default="fashion-product-images",
                        help="schema JSON file, or the name of a bundled one (default %(default)s)")
    parser.add_argument("--reference", default=None, help="another labelled catalog to take kNN tags from (default: the catalog itself)")
    parser.add_argument("--reference-images", default=None, help="images of --reference (default: --images)")
    parser.add_argument("--tagger", choices=("knn", "heads", "ensemble"), default=None,
                        help="what writes tags: kNN over the reference set, a trained model's heads, or their average "
                             "(default: heads with a model directory, else knn)")
    parser.add_argument("--expand-relations", default=None, metavar="FILE",
                        help="index-time expansion: add related tags from this relations file (`vistag relations build`) "
                             "to tag_weights at --expand-discount x tag score x relation")
    parser.add_argument("--expand-discount", type=float, default=0.5, help="weight factor of related tags (default %(default)s)")
    parser.add_argument("--k", type=int, default=10, help="neighbours for kNN tags (default %(default)s)")
    parser.add_argument("--top-d", type=int, default=10, help="tags kept per product (default %(default)s)")
    parser.add_argument("--dead-letter", default="dead-letter.jsonl", help="JSONL file for bad rows (default %(default)s)")
    _image_loading(parser)
    parser.add_argument("--vector-quantization", choices=("none", "int8"), default=None,
                        help="HNSW over float vectors (none, the default) or int8 scalar-quantized copies (Elasticsearch "
                             "int8_hnsw, OpenSearch Lucene sq): a quarter of the vector memory; --from-index keeps the "
                             "current index's setting")
    parser.add_argument("--reference-index", default=None, metavar="INDEX",
                        help="take kNN neighbours from this labelled index with the engine's HNSW search instead of "
                             "scanning a reference catalog (for reference sets of millions of rows)")
    parser.add_argument("--knn-batch", type=int, default=256, help="rows tagged per kNN scan of the reference set (default %(default)s)")
    parser.add_argument("--bulk-threads", type=int, default=2, help="bulk requests in flight (default %(default)s)")
    parser.add_argument("--pipeline", default=None, help="ingest pipeline every document goes through")
    parser.add_argument("--chunk-size", type=int, default=500, help="documents per bulk request (default %(default)s)")
    parser.add_argument("--chunk-bytes", type=int, default=10 * 1024 * 1024, help="bytes per bulk request (default 10 MiB)")
    parser.add_argument("--max-retries", type=int, default=8, help="retries of failed bulk items and of every other call to the engine (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="read only the first N rows")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
