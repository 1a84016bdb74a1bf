"""``vistag index --runner ray``: the index run as a Ray Data pipeline.

Stages and their resources (:class:`RayOptions` sets them)::

    catalog file ──read tasks (one stable slice each)──► rows
      ──LoadImages (CPU tasks: read, hash, decode, resize)──► uint8 arrays
      ──EmbedImages (actor pool: one model per actor, 1 GPU each when the cluster has GPUs)──► vectors
      [reference pass: the labelled rows' vectors and tags gathered on the driver into one
       reference set; its HNSW graph built once and put into the object store]
      ──TagRows (actor pool: the tagger taken once from the object store)──► documents
      ──BulkDatasink (write tasks: vistag's bulk layer, per-item retries)──► the engine

When the catalog is its own reference set (the default, as in ``vistag index``), every row must
be embedded before the first one can be tagged: the embedded rows are materialized in Ray's
object store (it spills to local disk past its budget: about ``4 x D`` bytes per row, 7.4 kB at
1840 dimensions) and the tag stage reads them back. With ``reference=`` another catalog, only
that one is gathered first and the catalog streams through every stage at once.

Backpressure: Ray Data's streaming executor stops launching upstream tasks when the data waiting
between operators exceeds the run's object-store budget (``RayOptions.object_store_memory``; Ray's
default is a share of the object store), so a slow or 429-ing cluster slows decoding down instead
of filling memory.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceBuilder, ReferenceSet, with_neighbour_index
from vistag.analyzers.relations import TagRelations
from vistag.analyzers.taggers import KnnDocumentTagger
from vistag.catalog.deadletter import DeadLetters
from vistag.catalog.rows import CatalogSource
from vistag.catalog.schema import CatalogSchema, as_schema
from vistag.catalog.vocabulary import tags_from_labels
from vistag.documents.spec import DocumentSpec
from vistag.documents.templates import create_index
from vistag.engine.retry import RetryPolicy
from vistag.errors import ConfigError, EngineUnavailable
from vistag.indexer.options import IndexSummary
from vistag.indexer.pipeline import index_options
from vistag.ray.sink import BulkDatasink, Connection, WriteCounts, open_client

logger = logging.getLogger(__name__)


@dataclass
class RayOptions:
    """Where the run goes and what each stage asks of the cluster.

    Attributes:
        address: a running cluster (``auto``, ``ray://head:10001``, ``10.0.0.5:6379``); ``None``
            joins the Ray already initialized in this process, or starts a local one for the run
            (stopped at its end).
        num_cpus: CPUs of a local Ray started for the run (``None``: all).
        object_store_memory: bytes of the object store of a local Ray started for the run, and the
            budget of this run's data in flight between stages (the backpressure threshold).
        read_tasks: catalog slices read in parallel.
        read_cpus: CPUs each read task reserves.
        batch_rows: rows per batch of every stage.
        embed_actors: model actors (``None``: one per GPU of the cluster, else 1).
        embed_cpus: CPUs each model actor reserves.
        embed_threads: torch threads in each model actor on CPU (``None``: ``embed_cpus``, at least 1).
        tag_actors: tagger actors.
        tag_cpus: CPUs each tagger actor reserves.
        tag_threads: search threads in each tagger actor (``None``: ``tag_cpus``, at least 1).
        load_cpus: CPUs each decode task reserves.
        write_cpus: CPUs each write task reserves.
        write_tasks: write tasks at once; each keeps ``bulk_threads`` requests in flight, so the
            engine sees ``write_tasks x bulk_threads`` (raise both with the cluster's size: a small
            cluster answers more 429s, which vistag retries, but which waste its work).
    """

    address: str | None = None
    num_cpus: int | None = None
    object_store_memory: int | None = None
    read_tasks: int = 4
    read_cpus: float = 0.25
    batch_rows: int = 256
    embed_actors: int | None = None
    embed_cpus: float = 1.0
    embed_threads: int | None = None
    tag_actors: int = 1
    tag_cpus: float = 0.5
    tag_threads: int | None = None
    load_cpus: float = 0.5
    write_cpus: float = 0.25
    write_tasks: int = 2


def index_catalog(
    connection: Connection,
    catalog: CatalogSource,
    images: str | Path | None = None,
    index: str = "products",
    *,
    schema: CatalogSchema | str | Path | None = None,
    model: str | Path = "efficientnet-lite0",
    reference: CatalogSource | None = None,
    reference_images: str | Path | None = None,
    relations: TagRelations | str | Path | None = None,
    knn_method: str = "auto",
    device: str = "auto",
    batch_size: int = 64,
    input_size: int | None = None,
    cache_dir: str | Path | None = None,
    dead_letter: str | Path | None = None,
    resume: bool = False,
    max_pixels: int | None = None,
    retry: RetryPolicy | None = None,
    progress: bool = False,
    ray_options: RayOptions | None = None,
    **options: Any,
) -> IndexSummary:
    """Embed, tag and index a catalog on a Ray cluster: the documents of :func:`vistag.index_catalog`.

    Args:
        connection: how the driver and every write task reach the engine: a URL, a
            :class:`~vistag.config.ConnectionSettings`, or a picklable function returning the user's
            client (e.g. ``functools.partial(OpenSearch, hosts=[...])``); a client object itself
            cannot travel to other machines.
        catalog: a ``.csv``/``.tsv``/``.jsonl``/``.parquet`` file every node can read at this path,
            or an iterable of row dicts (read on the driver).
        images: a folder or ``.tar`` every node can read at this path (or rows with URLs).
        index: the index (created from vistag's template when missing).
        schema: the catalog's column mapping (see :func:`vistag.index_catalog`).
        model: a backbone name, or a model directory from ``vistag train`` (its backbone; tags by kNN).
        reference: another labelled catalog to take kNN tags from (default: the catalog itself).
        reference_images: the images of ``reference`` (default: ``images``).
        relations: index-time expansion (see :func:`vistag.index_catalog`).
        knn_method: ``auto``, ``exact`` or ``hnsw`` (see :func:`~vistag.analyzers.knn_tagger.with_neighbour_index`).
        device: ``auto`` (a GPU per model actor when the cluster has GPUs), ``cpu`` or ``cuda``.
        batch_size: images per forward pass.
        input_size: another input resolution (a backbone name only).
        cache_dir: an embedding cache every node can write (a local path on a one-machine cluster).
        dead_letter: a JSONL file (on the driver) for bad rows; by default they are in the summary.
        resume: skip rows whose id is already in the index.
        max_pixels: decompression-bomb guard for the images.
        retry: the backoff of every call to the engine and of bulk items.
        progress: show Ray Data's progress bars.
        ray_options: the cluster and each stage's resources.
        **options: other fields of :class:`~vistag.indexer.options.IndexOptions` (``k``, ``top_d``,
            ``bulk_threads``, ``chunk_size``, ``limit``, ``vector_quantization``, ``pipeline``, ...).

    Returns:
        The :class:`~vistag.indexer.options.IndexSummary`, counted as ``vistag index`` counts.

    Raises:
        ConfigError: contradictory or unknown options (``partition`` and ``reference_index`` belong
            to the one-process runner), or a catalog whose columns do not match the schema.
    """
    import ray

    from vistag.models.loading import load_model

    for name in ("partition", "reference_index", "tagger"):
        if options.get(name) not in (None, "knn"):
            raise ConfigError(
                f"{name}= is not an option of the Ray runner (it tags by kNN over a reference catalog); "
                "use vistag.index_catalog for it"
            )
        options.pop(name, None)
    ropts = ray_options or RayOptions()
    schema = as_schema(schema)
    policy = retry or RetryPolicy()
    if isinstance(relations, (str, Path)):
        relations = TagRelations.load(relations)
    opts = index_options(
        index,
        dead_letter,
        options,
        resume=resume,
        progress=progress,
        tagger="knn",
        knn_method=knn_method,
        batch_size=batch_size,
        max_retries=policy.max_retries,
        initial_backoff=policy.initial_backoff,
        max_backoff=policy.max_backoff,
    )
    started = time.monotonic()
    summary = IndexSummary(index=index, dead_letter_path=str(dead_letter) if dead_letter else None)
    embedder = load_model(model, device="cpu", batch_size=batch_size, input_size=input_size).embedder
    config = embedder.config
    spec = DocumentSpec(
        name=opts.template or index,
        vector_dim=config.embedding_dim,
        category_levels=max(1, len(schema.category)),
        vector_quantization=opts.vector_quantization,
    )
    model_doc: dict[str, Any] = {"name": config.name, "version": config.model_id, "embedding_dim": config.embedding_dim}
    if relations is not None:
        model_doc["expansion"] = f"relations x {opts.expand_discount}"
    cache = (str(Path(cache_dir)), embedder.model_id, int(embedder.dim)) if cache_dir else None
    client = open_client(connection, policy)
    start_ray = not ray.is_initialized()
    if start_ray:
        init: dict[str, Any] = {"logging_level": logging.WARNING}
        if ropts.address:
            init["address"] = ropts.address
        else:
            init.update(num_cpus=ropts.num_cpus, object_store_memory=ropts.object_store_memory)
            init["include_dashboard"] = False
        ray.init(**init)
    dead_letters = DeadLetters(opts.dead_letter)
    totals = WriteCounts()
    try:
        create_index(client, spec, index)
        _check_resources(ropts, float(ray.cluster_resources().get("CPU", 0)))
        gpus = float(ray.cluster_resources().get("GPU", 0))
        use_gpu = device.startswith("cuda") or (device == "auto" and gpus > 0)
        stages = _Stages(ray, schema, config, cache, max_pixels, ropts, model, batch_size, input_size, use_gpu, gpus)
        with tempfile.TemporaryDirectory(prefix="vistag-ray-") as tmp:
            t0 = time.monotonic()
            rows = stages.embedded(catalog, images, opts.limit)
            if reference is None:
                rows = rows.materialize()  # every row's vector, before the first can be tagged
                ref_set = _gather_reference(rows, schema, int(embedder.dim), Path(tmp))
            else:
                ref_rows = stages.embedded(reference, reference_images or images, None)
                ref_set = _gather_reference(ref_rows, schema, int(embedder.dim), Path(tmp))
            summary.timings["reference_s"] = round(time.monotonic() - t0, 2)
            summary.reference_size = len(ref_set)
            if summary.reference_size == 0:
                logger.warning("the reference set is empty: documents get no kNN tags")
            t1 = time.monotonic()
            knn = with_neighbour_index(KnnTagger(ref_set, k=opts.k, top_d=opts.top_d), opts.knn_method)
            summary.timings["neighbour_index_s"] = round(time.monotonic() - t1, 2)
            portable = KnnTagger(
                ref_set.portable(keep_vectors=knn.index is None), k=opts.k, top_d=opts.top_d, index=knn.index
            )
            if hasattr(ref_set.vectors, "close"):
                ref_set.vectors.close()
            tagger = KnnDocumentTagger(portable)
            summary.tagger = model_doc["tagger"] = tagger.id
            tagger_ref = ray.put(tagger)
            del knn, portable, tagger
            t2 = time.monotonic()
            sink = BulkDatasink(connection, opts)
            tagged = rows.map_batches(
                _tag_rows_class(),
                fn_constructor_kwargs={
                    "tagger": [tagger_ref],
                    "schema": schema,
                    "model_doc": model_doc,
                    "relations": relations,
                    "expand_discount": opts.expand_discount,
                    "threads": ropts.tag_threads or max(1, int(ropts.tag_cpus)),
                },
                batch_size=ropts.batch_rows,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, ropts.tag_actors)),
                num_cpus=ropts.tag_cpus,
            )
            _configure(tagged, progress, ropts.object_store_memory)
            tagged.write_datasink(
                sink, ray_remote_args={"num_cpus": ropts.write_cpus}, concurrency=max(1, ropts.write_tasks)
            )
            totals = sink.totals
            summary.timings["index_s"] = round(time.monotonic() - t2, 2)
        client.refresh(index)
    except Exception as exc:
        unavailable = _find(exc, EngineUnavailable)
        if unavailable is None:
            raise
        summary.aborted = str(unavailable)
        logger.error("indexing stopped: %s (run again with resume to continue)", unavailable)
    finally:
        for record in totals.dead_letters:
            dead_letters.write(record["line"], record["id"], record["stage"], record["reason"], record["row"])
        dead_letters.close()
        client.close()
        if start_ray:
            ray.shutdown()
    summary.read, summary.indexed, summary.failed = totals.read, totals.indexed, totals.failed
    summary.skipped_existing, summary.retries = totals.skipped_existing, totals.retries
    summary.embedded, summary.cache_hits = totals.embedded, totals.cache_hits
    summary.dead_lettered, summary.dead_letters = dead_letters.count, dead_letters.records
    summary.seconds = round(time.monotonic() - started, 2)
    return summary


class _Stages:
    """Builds the read -> load -> embed part of the pipeline for a catalog."""

    def __init__(
        self,
        ray: Any,
        schema: CatalogSchema,
        config: Any,
        cache: tuple[str, str, int] | None,
        max_pixels: int | None,
        ropts: RayOptions,
        model: Any,
        batch_size: int,
        input_size: int | None,
        use_gpu: bool,
        gpus: float,
    ) -> None:
        self.ray, self.schema, self.config, self.cache, self.max_pixels = ray, schema, config, cache, max_pixels
        self.ropts, self.model, self.batch_size, self.input_size = ropts, model, batch_size, input_size
        self.use_gpu, self.gpus = use_gpu, gpus

    def rows(self, catalog: CatalogSource, limit: int | None) -> Any:
        from vistag.ray.source import CatalogDatasource, records_of

        if isinstance(catalog, (str, Path)):
            if not Path(catalog).is_file():
                raise ConfigError(f"catalog {catalog} does not exist")
            from vistag.catalog.rows import read_catalog

            next(iter(read_catalog(catalog, self.schema)), None)  # the schema check, on the driver, at once
            source = CatalogDatasource(catalog, self.schema, self.ropts.read_tasks, limit)
            return self.ray.data.read_datasource(source, num_cpus=self.ropts.read_cpus)
        records = records_of(catalog, self.schema)
        return self.ray.data.from_items(records[:limit] if limit else records)

    def embedded(self, catalog: CatalogSource, images: str | Path | None, limit: int | None) -> Any:
        from vistag.ray.stages import EmbedImages, load_images

        ropts = self.ropts
        loaded = self.rows(catalog, limit).map_batches(
            load_images,
            fn_kwargs={
                "images": str(images) if images else None,
                "schema": self.schema,
                "config": self.config,
                "cache": self.cache,
                "max_pixels": self.max_pixels,
            },
            batch_size=ropts.batch_rows,
            batch_format="numpy",
            num_cpus=ropts.load_cpus,
        )
        actors = ropts.embed_actors or (int(self.gpus) if self.use_gpu and self.gpus >= 1 else 1)
        threads = None if self.use_gpu else (ropts.embed_threads or max(1, int(ropts.embed_cpus)))
        out = loaded.map_batches(
            EmbedImages,
            fn_constructor_kwargs={
                "model": self.model,
                "device": "cuda" if self.use_gpu else "cpu",
                "batch_size": self.batch_size,
                "cache": self.cache,
                "shape": (int(self.config.input_size), int(self.config.embedding_dim)),
                "threads": threads,
                **({"input_size": self.input_size} if self.input_size else {}),
            },
            batch_size=ropts.batch_rows,
            batch_format="numpy",
            compute=self.ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, actors)),
            num_cpus=ropts.embed_cpus,
            num_gpus=1 if self.use_gpu else 0,
        )
        _configure(out, False, ropts.object_store_memory)
        return out


def _check_resources(ropts: RayOptions, cpus: float) -> None:
    """Refuse stage sizes the cluster cannot run all at once: the actors keep their CPUs for the whole
    run, and the read, decode and write tasks must still find room beside them, or the run waits forever.

    Raises:
        ConfigError: the smallest pools plus the largest task need more CPUs than the cluster has.
    """
    fixed = ropts.embed_cpus + ropts.tag_cpus  # one model actor and one tagger actor at least
    task = max(ropts.read_cpus, ropts.load_cpus, ropts.write_cpus)
    if fixed + task > cpus + 1e-9:
        raise ConfigError(
            f"the Ray cluster has {cpus:g} CPUs: a model actor ({ropts.embed_cpus:g}), a tagger actor "
            f"({ropts.tag_cpus:g}) and a {task:g}-CPU task need {fixed + task:g}; lower embed_cpus, tag_cpus, "
            "read_cpus, load_cpus or write_cpus (RayOptions), or add CPUs"
        )


def _tag_rows_class() -> Any:
    from vistag.ray.stages import TagRows

    return TagRows


def _configure(ds: Any, progress: bool, budget: int | None) -> None:
    """Progress bars and the object-store budget of this dataset only (its context is its own copy,
    not the process's): past ``budget`` bytes waiting between stages, upstream tasks wait.
    """
    import ray

    ds.context.enable_progress_bars = progress
    ds.context.enable_operator_progress_bars = progress
    if budget:
        ds.context.execution_options.resource_limits = ray.data.ExecutionResources.for_limits(
            object_store_memory=budget
        )


def _gather_reference(rows: Any, schema: CatalogSchema, dim: int, work: Path) -> ReferenceSet:
    """The labelled rows' vectors and tags, gathered on the driver into an on-disk reference set."""
    builder = ReferenceBuilder(dim, work / f"reference-{time.monotonic_ns()}.f32", keep_ids=True)
    columns = ["id", "row", "error", "vector"]
    for batch in rows.select_columns(columns).iter_batches(batch_size=4096, batch_format="numpy"):
        keep, tags, ids = [], [], []
        for i, error in enumerate(batch["error"]):
            if error:
                continue
            row_tags = tags_from_labels(orjson.loads(batch["row"][i]), schema.tags)
            if row_tags:
                keep.append(i)
                tags.append(row_tags)
                ids.append(str(batch["id"][i]))
        if keep:
            builder.add(batch["vector"][keep], tags, ids)
    return builder.build()


def _find(exc: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """``exc`` or the first exception of type ``kind`` in its chain (Ray wraps task errors)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
