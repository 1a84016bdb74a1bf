"""Flag groups shared by several commands, and their values turned into the keyword arguments of vistag's functions.

Defaults come from ``VISTAG_*`` environment variables where a flag names one, read
when the parser is built (never at import).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import Any

from vistag.config import ENGINES, ConnectionSettings, default_engine
from vistag.engine.client import EngineClient
from vistag.engine.retry import RetryPolicy
from vistag.errors import ConfigError
from vistag.images.store import limits_from_env

Group = argparse.ArgumentParser | argparse._ArgumentGroup


def add_engine(parser: Group, help_text: str = "local engine to use when no --url is given") -> None:
    """``--engine`` (env ``VISTAG_ENGINE``)."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=default_engine(),
        help=f"{help_text} (env VISTAG_ENGINE, default %(default)s)",
    )


def add_connection(parser: argparse.ArgumentParser) -> None:
    """How to reach a cluster: URLs, credentials, TLS, SigV4."""
    group = parser.add_argument_group("connection (defaults from VISTAG_* environment variables)")
    add_engine(group)
    group.add_argument(
        "--url",
        action="append",
        default=None,
        metavar="URL",
        help="a node URL; repeat, or separate with commas, for several nodes (env VISTAG_URL, "
        "comma-separated); default: the local cluster or node of --engine",
    )
    group.add_argument("--cloud-id", default=None, help="Elastic Cloud deployment id (env VISTAG_CLOUD_ID)")
    group.add_argument("--api-key", default=None, help="API key, base64 id:key form (env VISTAG_API_KEY)")
    group.add_argument("--bearer-token", default=None, help="bearer token (env VISTAG_BEARER_TOKEN)")
    group.add_argument("--user", default=None, help="basic-auth user (env VISTAG_USER)")
    group.add_argument(
        "--password",
        default=None,
        help="basic-auth password (env VISTAG_PASSWORD); write --password=VALUE when it starts with '-'",
    )
    group.add_argument("--ca-cert", default=None, help="CA bundle to verify TLS (env VISTAG_CA_CERT)")
    group.add_argument("--client-cert", default=None, help="client certificate (PEM) for mutual TLS")
    group.add_argument("--client-key", default=None, help="private key (PEM) of --client-cert")
    group.add_argument(
        "--no-verify-tls",
        action="store_true",
        help="do NOT verify the server certificate (throwaway test clusters only; logged as a warning)",
    )
    group.add_argument(
        "--aws-sigv4",
        choices=("es", "aoss"),
        default=None,
        help="sign requests with AWS SigV4 for Amazon OpenSearch Service (es) or Serverless (aoss); "
        "credentials from the AWS environment",
    )
    group.add_argument("--aws-region", default=None, help="AWS region for --aws-sigv4 (env AWS_REGION)")
    group.add_argument("--http-compress", action="store_true", help="gzip request bodies (bulk requests shrink ~3x)")


def connection_settings(args: argparse.Namespace) -> ConnectionSettings:
    """The connection flags (and ``VISTAG_*`` variables) as settings."""
    return ConnectionSettings.from_env(
        urls=tuple(u.strip() for arg in (getattr(args, "url", None) or ()) for u in arg.split(",") if u.strip()),
        api_key=getattr(args, "api_key", None),
        username=getattr(args, "user", None),
        password=getattr(args, "password", None),
        ca_cert=getattr(args, "ca_cert", None),
        cloud_id=getattr(args, "cloud_id", None),
        bearer_token=getattr(args, "bearer_token", None),
        client_cert=getattr(args, "client_cert", None),
        client_key=getattr(args, "client_key", None),
        aws_sigv4=getattr(args, "aws_sigv4", None),
        aws_region=getattr(args, "aws_region", None),
        verify_tls=False if getattr(args, "no_verify_tls", False) else None,
        http_compress=True if getattr(args, "http_compress", False) else None,
    )


def retry_policy(args: argparse.Namespace) -> RetryPolicy | None:
    """``--max-retries`` as the policy of every call to the engine (``None``: the default)."""
    retries = getattr(args, "max_retries", None)
    return RetryPolicy(max_retries=retries) if retries is not None else None


def connect(args: argparse.Namespace) -> EngineClient:
    """A client for ``--url``/``--cloud-id``/``VISTAG_URL``, else for the running local cluster or node of ``--engine``.

    Raises:
        ConfigError: no URL and no local node runs.
    """
    from vistag.engine.connect import connect as connect_settings

    return connect_settings(resolved_settings(args), retry=retry_policy(args))


def resolved_settings(args: argparse.Namespace) -> ConnectionSettings:
    """:func:`connection_settings`, with the running local cluster or node of ``--engine`` when no URL is given.

    Raises:
        ConfigError: no URL and no local node runs.
    """
    settings = connection_settings(args)
    if not settings.urls and not settings.cloud_id:
        from vistag.local.manage import local_urls

        urls = local_urls(args.engine)
        if not urls:
            raise ConfigError(
                f"no engine URL: pass --url or set VISTAG_URL, or start a local node with "
                f"`vistag engine start --engine {args.engine}`"
            )
        settings = replace(settings, urls=tuple(urls), engine=args.engine)
    return settings


def add_model(parser: argparse.ArgumentParser, *, backbone_only: bool = False) -> None:
    """``--model`` and the runtime flags of the network."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        default=os.environ.get("VISTAG_MODEL", "efficientnet-lite0"),
        help="backbone name"
        + ("" if backbone_only else ", or a model directory from `vistag train`")
        + " (env VISTAG_MODEL, default %(default)s)",
    )
    add_runtime(group, input_size=True)


def add_runtime(group: Group, *, input_size: bool = False, loading: bool = False) -> None:
    """``--weights``, ``--device``, ``--batch-size``, ``--compile`` (and ``--input-size``, the loading flags)."""
    group.add_argument("--weights", default=None, help="local backbone weights file (needed for resnet50/vgg16/vgg19)")
    if input_size:
        group.add_argument(
            "--input-size", type=int, default=None, help="input resolution in pixels (default: the model's)"
        )
    group.add_argument(
        "--device",
        default=os.environ.get("VISTAG_DEVICE", "auto"),
        help="auto, cpu or cuda (env VISTAG_DEVICE, default %(default)s)",
    )
    group.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default %(default)s)")
    group.add_argument(
        "--compile",
        action="store_true",
        help="run the backbone through torch.compile (a one-off 10-40 s; about 2.7x the CPU forward)",
    )
    if loading:
        add_image_loading(group)


def add_image_loading(group: Group) -> None:
    """``--workers`` and ``--decode-processes`` (the embedding pipeline's loading stages)."""
    group.add_argument("--workers", type=int, default=4, help="image loading threads (default %(default)s)")
    group.add_argument(
        "--decode-processes",
        type=int,
        default=None,
        help="image decode processes (default: a quarter of the cores on CPU, none below 4 cores; all "
        "but two with CUDA; 0: decode in the loading threads)",
    )


def add_catalog(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--catalog``, ``--images``, ``--schema``, ``--limit``."""
    parser.add_argument("--catalog", required=required, default=None, help="catalog file (.csv, .tsv, .jsonl)")
    parser.add_argument(
        "--images", default=None, help="image directory or .tar (references may also be URLs or absolute paths)"
    )
    parser.add_argument(
        "--schema",
        default="fashion-product-images",
        help="schema JSON file, or the name of a bundled one (default %(default)s)",
    )
    parser.add_argument("--limit", type=int, default=None, help="read only the first N rows")


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The runtime flags as keyword arguments of :func:`~vistag.models.loading.load_model`."""
    out = {"device": args.device, "batch_size": args.batch_size, "weights": args.weights, "compile": args.compile}
    if getattr(args, "input_size", None) is not None:
        out["input_size"] = args.input_size
    return out


def loading_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The image-loading flags, and the image limits of ``VISTAG_MAX_IMAGE_PIXELS``/``VISTAG_MAX_IMAGE_BYTES``."""
    max_pixels, _ = limits_from_env()
    return {"workers": args.workers, "decode_processes": args.decode_processes, "max_pixels": max_pixels}


def progress(args: argparse.Namespace) -> bool:
    """Progress bars: on a terminal, unless ``-q``."""
    return not args.quiet and sys.stderr.isatty()


def add_indexing(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``index``, ``sync`` and ``reindex``."""
    parser.add_argument(
        "--images", default=None, help="image directory or .tar (references may also be URLs or absolute paths)"
    )
    parser.add_argument(
        "--schema",
        default="fashion-product-images",
        help="schema JSON file, or the name of a bundled one (default %(default)s)",
    )
    parser.add_argument(
        "--reference", default=None, help="another labelled catalog to take kNN tags from (default: the catalog itself)"
    )
    parser.add_argument("--reference-images", default=None, help="images of --reference (default: --images)")
    from vistag.analyzers.taggers import TAGGERS

    parser.add_argument(
        "--tagger",
        choices=TAGGERS,
        default=None,
        help="what writes tags: kNN over the reference set, a trained model's heads, or their average "
        "(default: heads with a model directory, else knn)",
    )
    parser.add_argument(
        "--expand-relations",
        default=None,
        metavar="FILE",
        help="index-time expansion: add related tags from this relations file (`vistag relations "
        "build`) to tag_weights at --expand-discount x tag score x relation",
    )
    parser.add_argument(
        "--expand-discount", type=float, default=0.5, help="weight factor of related tags (default %(default)s)"
    )
    parser.add_argument("--k", type=int, default=10, help="neighbours for kNN tags (default %(default)s)")
    parser.add_argument("--top-d", type=int, default=10, help="tags kept per product (default %(default)s)")
    parser.add_argument(
        "--dead-letter", default="dead-letter.jsonl", help="JSONL file for bad rows (default %(default)s)"
    )
    add_image_loading(parser)
    parser.add_argument(
        "--vector-quantization",
        choices=("none", "int8"),
        default=None,
        help="HNSW over float vectors (none, the default) or int8 scalar-quantized copies "
        "(Elasticsearch int8_hnsw, OpenSearch Lucene sq): a quarter of the vector memory; "
        "--from-index keeps the current index's setting",
    )
    parser.add_argument(
        "--reference-index",
        default=None,
        metavar="INDEX",
        help="take kNN neighbours from this labelled index with the engine's HNSW search instead of "
        "scanning a reference catalog (for reference sets of millions of rows)",
    )
    parser.add_argument(
        "--knn-batch", type=int, default=256, help="rows tagged per kNN scan of the reference set (default %(default)s)"
    )
    parser.add_argument(
        "--knn-method",
        choices=("auto", "exact", "hnsw"),
        default="auto",
        help="how kNN neighbours are found: exact scan, or an approximate HNSW graph (faiss-cpu) whose cost per "
        "row does not grow with the reference set; auto: HNSW from 20,000 reference rows on CPU (default %(default)s)",
    )
    parser.add_argument("--bulk-threads", type=int, default=2, help="bulk requests in flight (default %(default)s)")
    parser.add_argument("--pipeline", default=None, help="ingest pipeline every document goes through")
    parser.add_argument("--chunk-size", type=int, default=500, help="documents per bulk request (default %(default)s)")
    parser.add_argument(
        "--chunk-bytes", type=int, default=10 * 1024 * 1024, help="bytes per bulk request (default 10 MiB)"
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=8,
        help="retries of every call to the engine and of each bulk item (default %(default)s)",
    )
    parser.add_argument("--limit", type=int, default=None, help="read only the first N rows")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def index_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The indexing flags as keyword arguments of :func:`~vistag.indexer.pipeline.index_catalog`."""
    from vistag.config import embedding_cache_dir

    return {
        "schema": args.schema,
        "model": args.model,
        "tagger": args.tagger,
        "reference": args.reference,
        "reference_images": args.reference_images,
        "reference_index": args.reference_index,
        "relations": args.expand_relations,
        "expand_discount": args.expand_discount,
        "k": args.k,
        "top_d": args.top_d,
        "dead_letter": args.dead_letter,
        "knn_batch": args.knn_batch,
        "knn_method": args.knn_method,
        "bulk_threads": args.bulk_threads,
        "pipeline": args.pipeline,
        "chunk_size": args.chunk_size,
        "max_chunk_bytes": args.chunk_bytes,
        "limit": args.limit,
        "cache_dir": embedding_cache_dir(),
        "progress": progress(args),
        "retry": retry_policy(args),
        **model_kwargs(args),
        **loading_kwargs(args),
    }
