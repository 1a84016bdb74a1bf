"""``vistag sync``: make an index equal to today's catalog, doing only the work that changed.

The index is read once (ids, ``row_hash``, ``image.sha256``; no vectors) and the
catalog once. Each catalog row is then one of:

* **added** -- not in the index: embedded, tagged and indexed;
* **re-tagged** -- its image bytes changed (another SHA-256): embedded and tagged
  again, the document rewritten;
* **updated** -- the row changed but not its image: the document is rewritten from
  the new row with its stored vector, tags and image (no embedding);
* **unchanged** -- no write at all (its ``indexed_at`` stays);

and documents whose id left the catalog are **deleted**. Rows that cannot be read
(malformed, missing image) go to the dead letters and their documents are kept.
New and re-tagged rows are tagged by kNN over the index itself (the engine's HNSW,
:class:`~vistag.search.reference_tagger.EngineKnnDocumentTagger`; the row's own
stale document never votes); an empty or missing index is indexed in full instead.

Every step is idempotent, so an interrupted sync is finished by running it again;
a second run right after a complete one changes nothing.

Examples:
    >>> client = OpenSearch("http://127.0.0.1:9200")                                       # doctest: +SKIP
    >>> summary = sync(client, "today.csv", images="images/", index="products")           # doctest: +SKIP
    >>> summary.added, summary.deleted                                                      # doctest: +SKIP
    (120, 14)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vistag.analyzers.reference import batches
from vistag.analyzers.taggers import DocumentTagger
from vistag.catalog.deadletter import DeadLetters
from vistag.catalog.rows import CatalogRow, CatalogSource, MalformedRow, catalog_rows
from vistag.catalog.schema import CatalogSchema, as_schema
from vistag.documents.build import row_fields, row_hash
from vistag.engine.client import Client, EngineClient, as_engine
from vistag.engine.retry import RetryPolicy
from vistag.errors import EngineUnavailable
from vistag.images import ImageLoadError, sha256_of
from vistag.indexer.bulk import bulk
from vistag.indexer.options import IndexOptions
from vistag.indexer.pipeline import index_options, run_index
from vistag.models.embedding import BatchEmbedder

if TYPE_CHECKING:  # pragma: no cover
    from vistag.models.loading import ModelSpec

logger = logging.getLogger(__name__)


@dataclass
class SyncSummary:
    """What a sync did (or, with ``dry_run``, would do)."""

    index: str
    read: int = 0
    added: int = 0
    retagged: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    dry_run: bool = False
    seconds: float = 0.0
    embedded: int = 0
    aborted: str | None = None
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No failed row and not stopped early."""
        return self.failed == 0 and self.aborted is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**asdict(self), "ok": self.ok}


def sync(
    client: Client,
    catalog: CatalogSource,
    images: str | Path | None = None,
    index: str = "products",
    *,
    schema: CatalogSchema | str | Path | None = None,
    model: ModelSpec = "efficientnet-lite0",
    device: str = "auto",
    batch_size: int = 64,
    workers: int = 4,
    decode_processes: int | None = None,
    cache_dir: str | Path | None = None,
    dead_letter: str | Path | None = None,
    max_pixels: int | None = None,
    retry: RetryPolicy | None = None,
    dry_run: bool = False,
    **options: Any,
) -> SyncSummary:
    """Make ``index`` equal to ``catalog``, doing only what changed (see the module docstring).

    New rows are indexed, rows with a new image re-embedded and re-tagged, other
    changed rows rewritten without embedding, rows that left the catalog deleted,
    unchanged rows not touched. New and re-tagged rows get kNN tags from the index
    itself (the engine's HNSW).

    Args:
        client: an ``Elasticsearch`` or ``OpenSearch`` client (or an :class:`~vistag.engine.client.EngineClient`).
        catalog: today's catalog: a ``.csv``/``.tsv``/``.jsonl`` file or an iterable of row dicts.
        images: where relative image references are found (a folder or a ``.tar``).
        index: the index or alias to sync.
        schema: the catalog's schema.
        model: the backbone the index was built with (a name, or a model directory).
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: images per forward pass.
        workers: image loading threads.
        decode_processes: image decode processes.
        cache_dir: the embedding cache (default: a temporary one).
        dead_letter: a JSONL file for bad rows (default: ``summary.dead_letters``).
        max_pixels: decompression-bomb guard.
        retry: the backoff of every engine call and bulk item (default 8 retries).
        dry_run: count what would change; write nothing.
        **options: other :class:`~vistag.indexer.options.IndexOptions` fields.

    Returns:
        The :class:`SyncSummary`.
    """
    from vistag.models.embedding import open_batch_embedder
    from vistag.models.loading import load_model
    from vistag.search.reference_tagger import reference_index_tagger

    engine = as_engine(client, retry)
    schema = as_schema(schema)
    policy = retry or engine.retry
    opts = index_options(
        index,
        dead_letter,
        options,
        batch_size=batch_size,
        progress=False,
        max_retries=policy.max_retries,
        initial_backoff=policy.initial_backoff,
        max_backoff=policy.max_backoff,
    )
    embedder = load_model(model, device=device, batch_size=batch_size).embedder

    def make_tagger() -> DocumentTagger:
        return reference_index_tagger(
            engine, index, schema, embedder.dim, k=opts.k, top_d=opts.top_d, model_id=embedder.model_id
        )

    with open_batch_embedder(
        embedder, images, cache_dir, workers=workers, processes=decode_processes, max_pixels=max_pixels
    ) as batch:
        return sync_catalog(engine, catalog, schema, batch, opts, make_tagger, dry_run=dry_run)


def sync_catalog(
    client: EngineClient,
    catalog: CatalogSource,
    schema: CatalogSchema,
    embedder: BatchEmbedder,
    options: IndexOptions,
    make_tagger: Callable[[], DocumentTagger],
    dry_run: bool = False,
) -> SyncSummary:
    """Bring ``options.index`` in line with ``catalog``; see the module docstring.

    Args:
        client: the engine.
        catalog: a CSV/JSONL path or an iterable of row dicts.
        schema: the catalog's column mapping.
        embedder: images -> vectors (its store reads the images).
        options: the index and bulk tuning (``resume`` is ignored).
        make_tagger: builds the tagger of new and changed images, called only when
            there are some: kNN over the index itself
            (:class:`~vistag.search.reference_tagger.EngineKnnDocumentTagger`, built by
            the caller so that ``indexer`` does not import ``search``).
        dry_run: count what would change; write nothing.
    """
    started = time.monotonic()
    summary = SyncSummary(index=options.index, dry_run=dry_run)
    if not isinstance(catalog, (str, Path, Sequence)):
        catalog = list(catalog)  # read more than once below
    rows = catalog_rows(catalog, schema, options.limit)
    if not client.index_exists(options.index) or client.count(options.index) == 0:
        return _full_index(client, catalog, rows, schema, embedder, options, summary, dry_run, started)
    stored = {
        hit["_id"]: (
            (hit.get("_source") or {}).get("row_hash"),
            ((hit.get("_source") or {}).get("image") or {}).get("sha256"),
        )
        for hit in client.scan(options.index, {"_source": ["row_hash", "image.sha256"], "query": {"match_all": {}}})
    }
    dead = DeadLetters(options.dead_letter)
    new: list[dict] = []
    changed_image: list[dict] = []
    changed_row: list[CatalogRow] = []
    seen: set[str] = set()
    existing = []
    for row in rows():
        summary.read += 1
        if isinstance(row, MalformedRow):
            dead.write(row.line, row.id, "read", row.reason, row.raw)
            if row.id:
                seen.add(row.id)  # a bad row never deletes its product
            continue
        seen.add(row.id)
        if row.id not in stored:
            new.append(row.fields)
        else:
            existing.append(row)
    # Image digests of the rows already indexed: reading bytes, no decoding, no embedding.
    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(lambda r: _digest(embedder, schema, r), existing))
    for row, (digest, error) in zip(existing, digests):
        old_hash, old_sha = stored[row.id]
        if error is not None:
            dead.write(row.line, row.id, "image", error, row.fields)
        elif digest != old_sha:
            changed_image.append(row.fields)
        elif row_hash(row.fields) != old_hash:
            changed_row.append(row)
        else:
            summary.unchanged += 1
    gone = sorted(set(stored) - seen)
    summary.added, summary.retagged, summary.updated, summary.deleted = (
        len(new),
        len(changed_image),
        len(changed_row),
        len(gone),
    )
    logger.info(
        "sync %s: %d new, %d new images, %d changed rows, %d unchanged, %d gone",
        options.index,
        len(new),
        len(changed_image),
        len(changed_row),
        summary.unchanged,
        len(gone),
    )
    try:
        if not dry_run:
            _write_changes(client, options, schema, changed_row, gone, dead)
            if new or changed_image:
                tagger = make_tagger()
                sub = replace(
                    options, resume=False, dead_letter=None, progress=False, limit=None, reference_index=options.index
                )
                result = run_index(client, new + changed_image, schema, embedder, sub, tagger=tagger)
                summary.embedded = result.embedded
                summary.failed += result.failed
                for record in result.dead_letters:
                    dead.write(
                        record.get("line"),
                        record.get("id"),
                        record.get("stage", "index"),
                        record.get("reason", ""),
                        record.get("row"),
                    )
                if result.aborted:
                    summary.aborted = result.aborted
                client.refresh(options.index)
    except EngineUnavailable as exc:
        summary.aborted = str(exc)
        logger.error("sync stopped: %s (run it again to finish)", exc)
    finally:
        dead.close()
        summary.failed += dead.count
        summary.dead_letters = dead.records
        summary.seconds = round(time.monotonic() - started, 2)
    return summary


def _full_index(
    client: EngineClient,
    catalog: CatalogSource,
    rows: Callable[[], Iterator[CatalogRow | MalformedRow]],
    schema: CatalogSchema,
    embedder: BatchEmbedder,
    options: IndexOptions,
    summary: SyncSummary,
    dry_run: bool,
    started: float,
) -> SyncSummary:
    """An empty or missing index: everything is new; a plain index run (tags from the catalog itself)."""
    if dry_run:
        summary.read = summary.added = sum(1 for r in rows() if not isinstance(r, MalformedRow))
    else:
        result = run_index(client, catalog, schema, embedder, replace(options, resume=False))
        summary.read, summary.added, summary.failed = result.read, result.indexed, result.failed + result.dead_lettered
        summary.embedded, summary.aborted, summary.dead_letters = result.embedded, result.aborted, result.dead_letters
    summary.seconds = round(time.monotonic() - started, 2)
    return summary


def _digest(embedder: BatchEmbedder, schema: CatalogSchema, row: CatalogRow) -> tuple[str | None, str | None]:
    ref = schema.image_ref(row.fields)
    if ref is None:
        return None, "the row names no image"
    try:
        return sha256_of(embedder.store.read(ref)), None
    except ImageLoadError as exc:
        return None, str(exc)


def _write_changes(
    client: EngineClient,
    options: IndexOptions,
    schema: CatalogSchema,
    changed_row: list[CatalogRow],
    gone: list[str],
    dead: DeadLetters,
) -> None:
    """Rewrite changed rows around their stored vector, tags and image; delete what left the catalog."""

    def actions() -> Iterator[dict[str, Any]]:
        for batch in batches(changed_row, 200):
            stored = client.sources(options.index, [r.id for r in batch])
            for row in batch:
                doc = {**stored.get(row.id, {}), **row_fields(row.id, row.fields, schema), "_id": row.id}
                if doc.get("extra") is None:
                    doc.pop("extra", None)
                yield doc
        for doc_id in gone:
            yield {"_op_type": "delete", "_id": doc_id}

    result = bulk(
        client,
        actions(),
        options.index,
        threads=options.bulk_threads,
        chunk_size=options.chunk_size,
        max_retries=options.max_retries,
        initial_backoff=options.initial_backoff,
        max_backoff=options.max_backoff,
    )
    for item in result.errors:
        dead.write(None, item.get("_id"), "engine", str(item.get("error")), None)
