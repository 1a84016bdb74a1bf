"""Bulk indexing in layers, after elasticsearch-py's ``helpers/actions.py``.

1. :func:`expand_action` turns a document into its NDJSON action and source lines;
2. :func:`chunk_actions` groups them into requests bounded by count and bytes;
3. :func:`send_chunk` sends one request and pairs every response item with its document;
4. :func:`streaming_bulk` retries only the items rejected with 429/502/503/504
   (and whole requests that fail to arrive) with capped exponential backoff, and
   yields ``(ok, item)`` for every document, where ``item["doc"]`` is the original;
   :func:`parallel_bulk` does the same with several chunks in flight.

Documents are written with the ``index`` op and an explicit ``_id``, so resending an
item whose first attempt may have landed (a connection cut mid-response) never
duplicates it.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from vistag.engine.client import EngineClient
from vistag.errors import EngineError, EngineUnavailable

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass
class BulkResult:
    """Counts of one bulk run."""

    indexed: int = 0
    rejected: int = 0
    retries: int = 0
    errors: list[dict] = field(default_factory=list)


def expand_action(doc: dict, index: str) -> tuple[bytes, bytes]:
    """Return the (action line, source line) of ``doc``.

    ``doc`` carries its id under ``"_id"``; every other key is the source.
    """
    source = {k: v for k, v in doc.items() if not k.startswith("_")}
    action = {"index": {"_index": doc.get("_index", index), "_id": str(doc["_id"])}}
    return (json.dumps(action, separators=(",", ":")).encode() + b"\n",
            json.dumps(source, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")


def chunk_actions(
    docs: Iterable[dict], index: str, max_count: int = 500, max_bytes: int = 10 * 1024 * 1024
) -> Iterator[list[tuple[bytes, bytes, dict]]]:
    """Group documents into chunks of at most ``max_count`` items and ``max_bytes`` bytes.

    A single document bigger than ``max_bytes`` is sent alone.
    """
    chunk: list[tuple[bytes, bytes, dict]] = []
    size = 0
    for doc in docs:
        action, source = expand_action(doc, index)
        item_size = len(action) + len(source)
        if chunk and (len(chunk) >= max_count or size + item_size > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append((action, source, doc))
        size += item_size
    if chunk:
        yield chunk


def send_chunk(client: EngineClient, chunk: list[tuple[bytes, bytes, dict]], refresh: str | None = None) -> list[tuple[int, dict, dict]]:
    """Send one ``_bulk`` request; return ``(status, response item, doc)`` per document.

    Raises:
        EngineUnavailable: the request did not get an answer, or the whole request
            was answered with 429/502/503/504.
    """
    body = b"".join(a + s for a, s, _ in chunk)
    params = {"refresh": refresh} if refresh else None
    try:
        resp = client.request("POST", "/_bulk", ndjson=body, params=params)
    except EngineError as exc:
        if exc.status == 429:
            raise EngineUnavailable(str(exc), 429, exc.body) from None
        raise
    items = resp.get("items", [])
    if len(items) != len(chunk):
        raise EngineError(f"_bulk answered {len(items)} items for {len(chunk)} documents")
    out = []
    for item, (_, _, doc) in zip(items, chunk):
        result = next(iter(item.values()))
        out.append((int(result.get("status", 500)), result, doc))
    return out


def _bulk_chunk(
    client: EngineClient, chunk: list[tuple[bytes, bytes, dict]], *, max_retries: int, initial_backoff: float,
    max_backoff: float, refresh: str | None, sleep: Callable[[float], None],
) -> Iterator[tuple[bool, dict]]:
    """Send one chunk, resending only its retryable rejections; yield ``(ok, item)`` per document."""
    pending = chunk
    attempt = 0
    while pending:
        try:
            results = send_chunk(client, pending, refresh)
        except EngineUnavailable as exc:
            if attempt >= max_retries:
                raise EngineUnavailable(
                    f"giving up after {attempt + 1} tries: {exc}", exc.status, [d for _, _, d in pending]
                ) from None
            delay = _backoff(attempt, initial_backoff, max_backoff)
            logger.warning("bulk request failed (%s); retrying %d documents in %.1fs", exc, len(pending), delay)
            sleep(delay)
            attempt += 1
            continue
        retry = []
        for (status, result, doc), entry in zip(results, pending):
            if 200 <= status < 300:
                yield True, {"_id": doc["_id"], "status": status, "error": None, "doc": doc}
            elif status in RETRY_STATUSES and attempt < max_retries:
                retry.append(entry)
            else:
                yield False, {"_id": doc["_id"], "status": status, "error": _reason(result), "doc": doc}
        if retry:
            delay = _backoff(attempt, initial_backoff, max_backoff)
            logger.info("%d of %d documents rejected (e.g. 429); resending them in %.1fs", len(retry), len(pending), delay)
            sleep(delay)
            attempt += 1
        pending = retry


def streaming_bulk(
    client: EngineClient,
    docs: Iterable[dict],
    index: str,
    *,
    chunk_size: int = 500,
    max_chunk_bytes: int = 10 * 1024 * 1024,
    max_retries: int = 8,
    initial_backoff: float = 1.0,
    max_backoff: float = 30.0,
    refresh: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[tuple[bool, dict]]:
    """Index ``docs`` and yield ``(ok, item)`` per document, in completion order.

    ``item`` is ``{"_id", "status", "error", "doc"}``. Items rejected with a
    retryable status are resent alone (not their whole chunk) after a backoff of
    ``min(max_backoff, initial_backoff * 2**attempt)`` with jitter; other errors
    are yielded as ``ok=False`` at once.

    Raises:
        EngineUnavailable: the engine stayed unreachable for ``max_retries`` tries.
            Its ``body`` holds the documents of the chunk that was not confirmed.
    """
    for chunk in chunk_actions(docs, index, chunk_size, max_chunk_bytes):
        yield from _bulk_chunk(client, chunk, max_retries=max_retries, initial_backoff=initial_backoff,
                               max_backoff=max_backoff, refresh=refresh, sleep=sleep)


def parallel_bulk(
    client: EngineClient,
    docs: Iterable[dict],
    index: str,
    *,
    threads: int = 2,
    queue_size: int = 2,
    chunk_size: int = 500,
    max_chunk_bytes: int = 10 * 1024 * 1024,
    max_retries: int = 8,
    initial_backoff: float = 1.0,
    max_backoff: float = 30.0,
    refresh: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[tuple[bool, dict]]:
    """:func:`streaming_bulk` with ``threads`` chunks in flight at once.

    The calling thread builds chunks from ``docs`` (so producing documents overlaps
    sending them); at most ``threads + queue_size`` chunks exist at any time, which
    bounds memory and makes a slow engine slow the producer down. Every sender
    thread has its own connection. Results are yielded per chunk, in chunk order.

    Raises:
        EngineUnavailable: as :func:`streaming_bulk`, after the results of every
            other chunk in flight have been yielded; ``body`` holds the unconfirmed
            documents of every failed chunk.
    """
    if threads <= 1:
        yield from streaming_bulk(client, docs, index, chunk_size=chunk_size, max_chunk_bytes=max_chunk_bytes,
                                  max_retries=max_retries, initial_backoff=initial_backoff, max_backoff=max_backoff,
                                  refresh=refresh, sleep=sleep)
        return
    local = threading.local()

    def send(chunk: list[tuple[bytes, bytes, dict]]) -> tuple[list[tuple[bool, dict]], EngineUnavailable | None]:
        own = getattr(local, "client", None)
        if own is None:
            own = local.client = EngineClient(client.settings)
        results: list[tuple[bool, dict]] = []
        try:
            for result in _bulk_chunk(own, chunk, max_retries=max_retries, initial_backoff=initial_backoff,
                                      max_backoff=max_backoff, refresh=refresh, sleep=sleep):
                results.append(result)
        except EngineUnavailable as exc:
            return results, exc
        return results, None

    failures: list[EngineUnavailable] = []
    in_flight: deque[Future] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="vistag-bulk") as pool:
        def drain(limit: int) -> Iterator[tuple[bool, dict]]:
            while len(in_flight) > limit:
                results, failure = in_flight.popleft().result()
                yield from results
                if failure is not None:
                    failures.append(failure)

        for chunk in chunk_actions(docs, index, chunk_size, max_chunk_bytes):
            if failures:
                break
            in_flight.append(pool.submit(send, chunk))
            yield from drain(threads + queue_size - 1)
        yield from drain(0)
    if failures:
        lost = [doc for exc in failures for doc in (exc.body if isinstance(exc.body, list) else [])]
        raise EngineUnavailable(str(failures[0]), failures[0].status, lost)


def bulk(client: EngineClient, docs: Iterable[dict], index: str, **kwargs: Any) -> BulkResult:
    """Run :func:`streaming_bulk` to completion and return the counts (errors keep their docs)."""
    result = BulkResult()
    for ok, item in streaming_bulk(client, docs, index, **kwargs):
        if ok:
            result.indexed += 1
        else:
            result.rejected += 1
            result.errors.append(item)
    return result


def _backoff(attempt: int, initial: float, cap: float) -> float:
    base = min(cap, initial * (2 ** attempt))
    return base * (0.5 + random.random() / 2)


def _reason(result: dict) -> str:
    error = result.get("error")
    if isinstance(error, dict):
        reason = f"{error.get('type')}: {error.get('reason')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            reason += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return reason[:1000]
    return str(error)[:1000]
