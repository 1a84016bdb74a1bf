"""Bulk indexing in layers, after elasticsearch-py's ``helpers/actions.py``, through the user's client.

1. :func:`expand_action` turns an action dict into its NDJSON action and source lines
   (``_op_type`` ``index``/``create``/``update``/``delete``, ``_index``, ``_id``,
   ``_routing``; float32 vectors written in their shortest exact form, not as
   17-digit doubles);
2. :func:`chunk_actions` groups them into requests bounded by count and bytes;
3. :func:`send_chunk` sends one request through :meth:`EngineClient.bulk` and pairs
   every response item with its action;
4. :func:`streaming_bulk` retries only the items rejected with 429/502/503/504 (and
   whole requests that fail to arrive) with capped exponential backoff, and yields
   ``(ok, item)`` for every action, where ``item["doc"]`` is the original;
   :func:`parallel_bulk` does the same with several chunks in flight, every thread
   sending through the same client object (the official clients are thread-safe,
   so the user's auth, TLS and signer apply to every request);
5. :func:`bulk` runs either to completion and returns a :class:`BulkResult`, or
   raises :class:`~vistag.errors.BulkIndexError` when ``raise_on_error``.

Write documents with an explicit ``_id``: resending an item whose first attempt may
have landed (a connection cut mid-response) then never duplicates it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from vistag.engine.client import EngineClient
from vistag.engine.retry import RETRY_STATUSES, RetryPolicy
from vistag.errors import BulkIndexError, EngineError, EngineUnavailable

logger = logging.getLogger(__name__)

OP_TYPES = ("index", "create", "update", "delete")
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

Chunk = list[tuple[bytes, "bytes | None", dict]]


@dataclass
class BulkResult:
    """Counts of one bulk run.

    Attributes:
        indexed: actions the engine confirmed.
        rejected: actions refused for good (``errors`` holds them, each with its ``doc``).
        retries: items and requests sent again after a 429/5xx or a lost connection.
        errors: the refused items.
    """

    indexed: int = 0
    rejected: int = 0
    retries: int = 0
    errors: list[dict] = field(default_factory=list)


class RetryCounter:
    """A thread-safe count of retries, shared by every sender thread of one run."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        """Count ``n`` more retries."""
        with self._lock:
            self.value += n


def dumps(data: Any) -> bytes:
    """Compact JSON; numpy float32 arrays in their shortest exact form (``0.017687669``, not 17 digits)."""
    return orjson.dumps(data, option=_DUMPS_OPTIONS, default=str)


def expand_action(doc: dict, index: str) -> tuple[bytes, bytes | None]:
    r"""Return the (action line, source line or ``None`` for deletes) of ``doc``.

    ``doc`` carries its metadata under ``_op_type`` (default ``index``), ``_id``,
    ``_index`` and ``_routing``; every other key not starting with ``_`` is the
    source. An ``update`` sends ``{"doc": source}`` unless ``_source`` gives the
    whole update body (e.g. ``{"doc": ..., "doc_as_upsert": true}`` or a script).

    Raises:
        ValueError: an unknown ``_op_type``, or a delete/update without ``_id``.

    Examples:
        >>> expand_action({"_id": "1", "title": "x"}, "products")
        (b'{"index":{"_index":"products","_id":"1"}}\n', b'{"title":"x"}\n')
    """
    op = doc.get("_op_type", "index")
    if op not in OP_TYPES:
        raise ValueError(f"unknown _op_type {op!r}: {', '.join(OP_TYPES)}")
    meta: dict[str, Any] = {"_index": doc.get("_index", index)}
    if doc.get("_id") is not None:
        meta["_id"] = str(doc["_id"])
    elif op in ("update", "delete"):
        raise ValueError(f"a {op} action needs an _id")
    if doc.get("_routing") is not None:
        meta["routing"] = str(doc["_routing"])
    action = dumps({op: meta}) + b"\n"
    if op == "delete":
        return action, None
    source = {k: v for k, v in doc.items() if not k.startswith("_")}
    if op == "update":
        source = doc.get("_source", {"doc": source})
    return action, dumps(source) + b"\n"


def chunk_actions(
    docs: Iterable[dict], index: str, max_count: int = 500, max_bytes: int = 10 * 1024 * 1024
) -> Iterator[Chunk]:
    """Group documents into chunks of at most ``max_count`` items and ``max_bytes`` bytes.

    A single document bigger than ``max_bytes`` is sent alone. A full chunk is
    yielded at once, without waiting for the next document; when ``docs`` itself
    fails (a search behind it gave up), the documents already built are yielded as
    a last chunk before the error goes on, so that nothing finished is thrown away.
    """
    chunk: Chunk = []
    size = 0
    source = iter(docs)
    while True:
        try:
            doc = next(source)
        except StopIteration:
            break
        except Exception:
            if chunk:
                yield chunk
            raise
        action, body = expand_action(doc, index)
        item_size = len(action) + (len(body) if body else 0)
        if chunk and size + item_size > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append((action, body, doc))
        size += item_size
        if len(chunk) >= max_count:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def send_chunk(
    client: EngineClient, chunk: Chunk, refresh: str | None = None, pipeline: str | None = None
) -> list[tuple[int, dict, dict]]:
    """Send one ``_bulk`` request; return ``(status, response item, doc)`` per action.

    Raises:
        EngineUnavailable: the request got no answer, or was answered 429/502/503/504.
        EngineError: another refusal of the whole request, or a malformed answer.
    """
    body = b"".join(a + (s or b"") for a, s, _ in chunk)
    resp = client.bulk(body, refresh=refresh, pipeline=pipeline)
    items = resp.get("items", [])
    if len(items) != len(chunk):
        raise EngineError(f"_bulk answered {len(items)} items for {len(chunk)} actions")
    out = []
    for item, (_, _, doc) in zip(items, chunk):
        result = next(iter(item.values()))
        out.append((int(result.get("status", 500)), result, doc))
    return out


def _bulk_chunk(
    client: EngineClient,
    chunk: Chunk,
    *,
    policy: RetryPolicy,
    refresh: str | None,
    pipeline: str | None,
    retries: RetryCounter,
) -> Iterator[tuple[bool, dict]]:
    """Send one chunk, resending only its retryable rejections; yield ``(ok, item)`` per action."""
    pending = chunk
    attempt = 0
    while pending:
        try:
            results = send_chunk(client, pending, refresh, pipeline)
        except EngineUnavailable as exc:
            if attempt >= policy.max_retries:
                raise EngineUnavailable(
                    f"giving up after {attempt + 1} tries: {exc}", exc.status, [d for _, _, d in pending]
                ) from None
            delay = policy.delay(attempt)
            logger.warning("bulk request failed (%s); retrying %d actions in %.1fs", exc, len(pending), delay)
            retries.add(len(pending))
            policy.sleep(delay)
            attempt += 1
            continue
        retry = []
        for (status, result, doc), entry in zip(results, pending):
            if 200 <= status < 300 or (status == 404 and doc.get("_op_type") == "delete"):
                yield True, {"_id": doc.get("_id", result.get("_id")), "status": status, "error": None, "doc": doc}
            elif status in RETRY_STATUSES and attempt < policy.max_retries:
                retry.append(entry)
            else:
                yield (
                    False,
                    {"_id": doc.get("_id", result.get("_id")), "status": status, "error": _reason(result), "doc": doc},
                )
        if retry:
            delay = policy.delay(attempt)
            logger.info(
                "%d of %d actions rejected (e.g. 429); resending them in %.1fs", len(retry), len(pending), delay
            )
            retries.add(len(retry))
            policy.sleep(delay)
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
    pipeline: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retries: RetryCounter | None = None,
) -> Iterator[tuple[bool, dict]]:
    """Send ``docs`` and yield ``(ok, item)`` per action, in completion order.

    ``item`` is ``{"_id", "status", "error", "doc"}``. Items rejected with a
    retryable status are resent alone (not their whole chunk) after a backoff of
    ``min(max_backoff, initial_backoff * 2**attempt)`` with jitter; other errors
    are yielded as ``ok=False`` at once. A delete of a missing document is ok.

    Args:
        client: the engine.
        docs: actions (see :func:`expand_action`); each keeps its document in the item yielded.
        index: the index of actions that name none.
        chunk_size: most actions per request.
        max_chunk_bytes: most bytes per request.
        max_retries: retries of a rejected item or a failed request.
        initial_backoff: seconds before the first retry.
        max_backoff: cap of one pause.
        refresh: the ``refresh`` parameter of each request.
        pipeline: an ingest pipeline every document goes through.
        sleep: the pause function (tests pass a recorder).
        retries: counts every resent item or request (see :class:`BulkResult`).

    Raises:
        EngineUnavailable: the engine stayed unreachable for ``max_retries`` tries.
            Its ``body`` holds the documents of the chunk that was not confirmed.

    Examples:
        >>> for ok, item in streaming_bulk(engine, [{"_id": "1", "title": "x"}], "products"):  # doctest: +SKIP
        ...     print(ok, item["_id"])
        True 1
    """
    policy = RetryPolicy(max_retries, initial_backoff, max_backoff, sleep)
    counter = retries or RetryCounter()
    for chunk in chunk_actions(docs, index, chunk_size, max_chunk_bytes):
        yield from _bulk_chunk(client, chunk, policy=policy, refresh=refresh, pipeline=pipeline, retries=counter)


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
    pipeline: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retries: RetryCounter | None = None,
) -> Iterator[tuple[bool, dict]]:
    """:func:`streaming_bulk` with ``threads`` chunks in flight at once.

    The calling thread builds chunks from ``docs`` (so producing documents overlaps
    sending them); at most ``threads + queue_size`` chunks exist at any time, which
    bounds memory and makes a slow engine slow the producer down. Every sender
    thread uses the same client object. Results are yielded per chunk, in chunk order.

    Raises:
        EngineUnavailable: as :func:`streaming_bulk`, after the results of every
            other chunk in flight have been yielded; ``body`` holds the unconfirmed
            documents of every failed chunk.
    """
    counter = retries or RetryCounter()
    if threads <= 1:
        yield from streaming_bulk(
            client,
            docs,
            index,
            chunk_size=chunk_size,
            max_chunk_bytes=max_chunk_bytes,
            max_retries=max_retries,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            refresh=refresh,
            pipeline=pipeline,
            sleep=sleep,
            retries=counter,
        )
        return
    policy = RetryPolicy(max_retries, initial_backoff, max_backoff, sleep)

    def send(chunk: Chunk) -> tuple[list[tuple[bool, dict]], EngineUnavailable | None]:
        results: list[tuple[bool, dict]] = []
        try:
            for result in _bulk_chunk(
                client, chunk, policy=policy, refresh=refresh, pipeline=pipeline, retries=counter
            ):
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

        try:
            for chunk in chunk_actions(docs, index, chunk_size, max_chunk_bytes):
                if failures:
                    break
                in_flight.append(pool.submit(send, chunk))
                yield from drain(threads + queue_size - 1)
        except Exception:
            yield from drain(0)  # the chunks already sent still report, then the producer's error goes on
            raise
        yield from drain(0)
    if failures:
        lost = [doc for exc in failures for doc in (exc.body if isinstance(exc.body, list) else [])]
        raise EngineUnavailable(str(failures[0]), failures[0].status, lost)


def bulk(
    client: EngineClient,
    docs: Iterable[dict],
    index: str,
    *,
    threads: int = 1,
    raise_on_error: bool = False,
    **kwargs: Any,
) -> BulkResult:
    """Send every action and return the counts (refused items keep their docs).

    Args:
        client: the engine.
        docs: the actions.
        index: the index of actions that name none.
        threads: ``> 1`` sends through :func:`parallel_bulk`.
        raise_on_error: raise :class:`~vistag.errors.BulkIndexError` at the end when any
            action was refused (the result is then on the exception's ``errors``).
        **kwargs: as :func:`streaming_bulk` (``chunk_size``, ``pipeline``, ``refresh``, ...).

    Examples:
        >>> result = bulk(engine, [{"_id": "1", "_op_type": "delete"}], "products")  # doctest: +SKIP
        >>> result.indexed, result.rejected                                        # doctest: +SKIP
        (1, 0)
    """
    result = BulkResult()
    counter = RetryCounter()
    stream = (
        parallel_bulk(client, docs, index, threads=threads, retries=counter, **kwargs)
        if threads > 1
        else streaming_bulk(client, docs, index, retries=counter, **kwargs)
    )
    try:
        for ok, item in stream:
            if ok:
                result.indexed += 1
            else:
                result.rejected += 1
                result.errors.append(item)
    finally:
        result.retries = counter.value
    if raise_on_error and result.errors:
        raise BulkIndexError(
            f"{result.rejected} actions were refused, e.g. {result.errors[0]['_id']}: {result.errors[0]['error']}",
            result.errors,
        )
    return result


def _reason(result: dict) -> str:
    error = result.get("error")
    if isinstance(error, dict):
        reason = f"{error.get('type')}: {error.get('reason')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            reason += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return reason[:1000]
    return str(error)[:1000]
