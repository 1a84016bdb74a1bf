"""Writing the Ray index run: a Ray ``Datasink`` over vistag's bulk layer.

Every write task builds its own client from the run's connection (a URL, a
:class:`~vistag.config.ConnectionSettings` or a picklable function returning the user's
client), sends its documents through :func:`~vistag.indexer.bulk.parallel_bulk` (per-item
retries of 429/5xx with backoff, the one retry layer) and returns its counts and dead letters;
:meth:`BulkDatasink.on_write_complete` adds them up on the driver.

Exactly once by product id: every document is written with ``_id`` = the product id, so a write
task that Ray runs again (its worker died, its node went away) overwrites what its first attempt
wrote and never duplicates it; a row is in exactly one block, so none is missing once the run ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from ray.data import Datasink
from ray.data.block import Block, BlockAccessor

from vistag.config import ConnectionSettings
from vistag.engine.client import EngineClient, as_engine
from vistag.engine.retry import RETRY_STATUSES, RetryPolicy
from vistag.indexer.bulk import RetryCounter
from vistag.indexer.index_pass import refused, send_documents
from vistag.indexer.options import IndexOptions

logger = logging.getLogger(__name__)

#: How write tasks reach the engine: a URL, connection settings, or a picklable function that
#: returns a client (e.g. ``functools.partial(OpenSearch, hosts=[...], http_auth=...)``).
Connection = str | ConnectionSettings | Callable[[], Any]


#: One client per write process and connection: Ray runs many write tasks in one worker process, and a
#: client keeps its connection pool (and, unless told the engine, asks the engine what it is) once.
_CLIENTS: dict[tuple[Any, ...], EngineClient] = {}


def process_client(connection: Connection, retry: RetryPolicy) -> EngineClient:
    """The client of this worker process for ``connection`` (opened on first use, kept for the process)."""
    key = (connection, retry.max_retries, retry.initial_backoff, retry.max_backoff)
    try:
        client = _CLIENTS.get(key)
    except TypeError:  # an unhashable connection: a client per call
        return open_client(connection, retry)
    if client is None:
        client = _CLIENTS[key] = open_client(connection, retry)
    return client


def open_client(connection: Connection, retry: RetryPolicy | None = None) -> EngineClient:
    """An :class:`~vistag.engine.client.EngineClient` for ``connection`` (in whatever process calls it)."""
    if isinstance(connection, str):
        connection = ConnectionSettings(urls=(connection,))
    if isinstance(connection, ConnectionSettings):
        from vistag.engine.connect import connect

        return connect(connection, retry=retry)
    return as_engine(connection(), retry)


@dataclass
class WriteCounts:
    """What one write task (or, added up, the whole run) saw."""

    read: int = 0
    indexed: int = 0
    failed: int = 0
    skipped_existing: int = 0
    embedded: int = 0
    cache_hits: int = 0
    retries: int = 0
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: WriteCounts) -> None:
        """Add another task's counts."""
        for name in ("read", "indexed", "failed", "skipped_existing", "embedded", "cache_hits", "retries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.dead_letters.extend(other.dead_letters)


def _dead(line: int | None, item_id: str | None, stage: str, reason: str, row: Any) -> dict[str, Any]:
    return {"line": line, "id": item_id or None, "stage": stage, "reason": reason, "row": row}


class BulkDatasink(Datasink):
    """Index the documents of the Ray run into ``options.index``.

    Args:
        connection: how each write task reaches the engine (see :data:`Connection`).
        options: the run's :class:`~vistag.indexer.options.IndexOptions` (index, bulk threads,
            chunk sizes, retries, resume, pipeline).
    """

    def __init__(self, connection: Connection, options: IndexOptions) -> None:
        self.connection = connection
        self.options = options
        self.totals = WriteCounts()

    def get_name(self) -> str:
        """The write tasks' name in Ray's progress and dashboard."""
        return "VistagBulk"

    @property
    def min_rows_per_write(self) -> int:
        """Rows per write call: enough for ``bulk_threads`` requests in flight, twice over."""
        return self.options.chunk_size * max(1, self.options.bulk_threads) * 2

    def write(self, blocks: Iterable[Block], ctx: Any) -> WriteCounts:
        """Send the blocks' documents; return this task's counts (raises ``EngineUnavailable``)."""
        opts = self.options
        counts = WriteCounts()
        retries = RetryCounter()
        policy = RetryPolicy(opts.max_retries, opts.initial_backoff, opts.max_backoff)
        client = process_client(self.connection, policy)
        try:
            for ok, item in send_documents(client, self._documents(client, blocks, counts), opts, retries):
                if ok:
                    counts.indexed += 1
                elif item["status"] in RETRY_STATUSES:
                    counts.failed += 1
                    logger.error("document %s not indexed after retries: HTTP %s", item["_id"], item["status"])
                else:
                    counts.dead_letters.append(_dead(*refused(item)))
        finally:
            counts.retries = retries.value
        return counts

    def _documents(self, client: EngineClient, blocks: Iterable[Block], counts: WriteCounts) -> Iterator[dict]:
        for block in blocks:
            batch = BlockAccessor.for_block(block).to_numpy()
            n = len(batch["line"])
            counts.read += n
            counts.embedded += int(np.sum(batch["computed"]))
            counts.cache_hits += int(np.sum(batch["cached"] & ~_has(batch["error"])))
            good = []
            for i in range(n):
                error = str(batch["error"][i])
                if error:
                    row = orjson.loads(batch["row"][i])
                    line, item_id = int(batch["line"][i]), str(batch["id"][i])
                    counts.dead_letters.append(_dead(line, item_id, str(batch["stage"][i]), error, row))
                else:
                    good.append(i)
            if self.options.resume and good:
                done = client.existing_ids(self.options.index, [str(batch["id"][i]) for i in good])
                counts.skipped_existing += len(done)
                good = [i for i in good if str(batch["id"][i]) not in done]
            for i in good:
                doc = orjson.loads(batch["source_json"][i])
                doc["_id"] = str(batch["id"][i])
                doc["image_vector"] = np.asarray(batch["vector"][i], dtype=np.float32)
                doc["_line"] = int(batch["line"][i])
                yield doc

    def on_write_complete(self, write_result: Any) -> None:
        """Add up the counts of every write task (on the driver)."""
        for counts in write_result.write_returns:
            self.totals.add(counts)


def _has(column: np.ndarray) -> np.ndarray:
    return np.array([bool(v) for v in column], dtype=bool)
