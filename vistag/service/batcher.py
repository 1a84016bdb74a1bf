"""Micro-batching: concurrent requests share one model forward.

Each image is queued with a future. One collector task takes the first waiting
image, then keeps taking more until ``max_batch`` images or ``max_wait`` seconds
have passed, and runs the batch function once on a single worker thread (so the
event loop stays free and forwards never overlap). While a batch runs, the next
one fills up. Requests announce the images they are still decoding
(:meth:`MicroBatcher.incoming`); when none is on its way the batch leaves at once,
so a lone request does not pay the wait. The queue is bounded: when it is full the request is refused at
once (:class:`Busy`, HTTP 503) instead of piling up latency.

Examples:
    >>> import asyncio
    >>> async def demo():
    ...     batcher = MicroBatcher(lambda xs: [x * 2 for x in xs], max_batch=8, max_wait=0.002)
    ...     await batcher.start()
    ...     out = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
    ...     await batcher.stop()
    ...     return out
    >>> asyncio.run(demo())
    [0, 2, 4, 6, 8]
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Busy(RuntimeError):
    """The batch queue is full; try again shortly."""


class MicroBatcher(Generic[T, R]):
    """Run ``fn`` on batches of items submitted concurrently.

    Args:
        fn: items -> one result per item, in order (runs on the worker thread).
        max_batch: most items per call of ``fn`` (1: no batching).
        max_wait: seconds the first item of a batch waits for company.
        max_queue: items waiting at most; more are refused with :class:`Busy`.
        observe: called with each batch size (metrics).
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        max_batch: int = 32,
        max_wait: float = 0.005,
        max_queue: int = 256,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.fn, self.max_batch, self.max_wait, self.max_queue = fn, max_batch, max_wait, max_queue
        self.observe = observe or (lambda n: None)
        self._queue: asyncio.Queue[tuple[T, asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="vistag-forward")
        self._incoming = 0

    async def start(self) -> None:
        """Start the collector on the running event loop."""
        self._queue = asyncio.Queue(self.max_queue)
        self._task = asyncio.get_running_loop().create_task(self._collect(), name="vistag-batcher")

    async def stop(self) -> None:
        """Stop collecting; waiting requests fail with :class:`Busy`."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(Busy("the service is shutting down"))
        self._executor.shutdown(wait=True)

    @contextmanager
    def incoming(self, count: int) -> Iterator[None]:
        """Announce ``count`` images that will be submitted when the block ends (call on the event loop)."""
        self._incoming += count
        try:
            yield
        finally:
            self._incoming -= count

    def enqueue(self, item: T) -> asyncio.Future:
        """Queue ``item`` now and return the future of its result (call on the event loop).

        Raises:
            Busy: the queue is full (or the batcher is not running).
        """
        if self._queue is None or self._task is None:
            raise Busy("the model is not running")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((item, future))
        except asyncio.QueueFull:
            raise Busy(f"more than {self.max_queue} images are waiting for the model") from None
        return future

    async def submit(self, item: T) -> R:
        """The result for ``item``, computed in a batch with whatever else is waiting.

        Raises:
            Busy: the queue is full (or the batcher is not running).
            Exception: whatever ``fn`` raised for the batch.
        """
        return await self.enqueue(item)

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                if self._incoming <= 0:  # nobody else is on the way: do not wait
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            live = [(item, future) for item, future in batch if not future.cancelled()]
            if not live:
                continue
            self.observe(len(live))
            try:
                results: Any = await loop.run_in_executor(self._executor, self.fn, [item for item, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"the batch function returned {len(results)} results for {len(live)} items")
            except Exception as exc:
                logger.exception("batch of %d failed", len(live))
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(live, results):
                if not future.done():
                    future.set_result(result)
