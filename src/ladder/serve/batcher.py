"""Dynamic batching for one model: requests wait in a bounded queue and run merged, up to
`max_batch_size` rows or until the oldest has waited `max_batch_delay` seconds (0: run what
is queued at once, adding no latency). Batches run in worker threads, so the event loop keeps
accepting requests meanwhile; a request whose deadline passes before its batch starts is
answered with a timeout and never run, and one whose caller went away (a client that
disconnected, cancelling its wait) leaves the queue at once."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The queue holds `max_queue` requests already."""


class Expired(Exception):
    """The request's deadline passed before its batch ran."""


class Closed(Exception):
    """The batcher is draining and takes no new requests."""


@dataclass
class BatchSettings:
    """How a model's requests are merged and bounded."""

    max_batch_size: int = 64  # rows
    max_batch_delay: float = 0.0  # seconds the oldest request may wait for more
    max_queue: int = 100  # requests waiting
    timeout: float = 30.0  # seconds from arrival until a request is answered
    workers: int = 1  # batches running at once
    max_request_rows: int | None = None  # rows of one request; None: max_batch_size

    def __post_init__(self) -> None:
        # a request never needs more than one batch (Triton refuses one over max_batch_size)
        if self.max_request_rows is None:
            self.max_request_rows = self.max_batch_size


@dataclass(eq=False)  # compared by identity: a queue removes this very item
class _Item:
    raw: Any
    rows: int
    future: asyncio.Future[Any]
    arrived: float
    deadline: float


@dataclass
class BatchStats:
    """What one executed batch reports to the metrics."""

    rows: int
    queue_seconds: list[float] = field(default_factory=list)
    inference_seconds: float = 0.0


class Batcher:
    """Queues requests for `predict(list of raw inputs) -> list of results` and runs them in
    merged batches; `submit` is awaited by each request."""

    def __init__(
        self,
        predict: Callable[[list[Any]], list[Any]],
        settings: BatchSettings,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self.predict, self.settings = predict, settings
        self.on_batch, self.on_depth = on_batch, on_depth
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._running = 0
        self._closing = False
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the worker tasks (in the running event loop)."""
        self._workers = [
            asyncio.get_running_loop().create_task(self._work())
            for _ in range(self.settings.workers)
        ]

    @property
    def depth(self) -> int:
        """Requests waiting in the queue."""
        return len(self._queue)

    async def submit(self, raw: Any, rows: int, timeout: float | None = None) -> Any:
        """The result of `raw` (of `rows` rows) once its batch ran. QueueFull when the queue is
        full, Expired when the timeout (the settings' or `timeout` seconds, whichever is
        shorter) passes first, Closed while draining. Cancelling the wait withdraws the
        request: it is never run."""
        if self._closing:
            raise Closed("the server is shutting down")
        if len(self._queue) >= self.settings.max_queue:
            raise QueueFull(f"the queue holds {self.settings.max_queue} requests")
        wait = self.settings.timeout if timeout is None else min(timeout, self.settings.timeout)
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        item = _Item(raw, rows, loop.create_future(), now, now + wait)
        self._queue.append(item)
        self._depth_changed()
        self._wake.set()
        timer = loop.call_later(wait, self._expire, item, wait)
        try:
            return await item.future
        finally:
            timer.cancel()
            if item.future.cancelled() and item in self._queue:  # its caller went away
                self._queue.remove(item)
                self._depth_changed()

    def _expire(self, item: _Item, wait: float) -> None:
        """The request's timeout passed: answer it (a worker skips it if it has not started)."""
        if not item.future.done():
            item.future.set_exception(Expired(f"no answer within {wait:g} s"))

    async def drain(self) -> None:
        """Refuse new requests and return once every queued and running one is answered."""
        self._closing = True
        self._wake.set()
        while self._queue or self._running:
            await asyncio.sleep(0.01)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def _depth_changed(self) -> None:
        if self.on_depth is not None:
            self.on_depth(len(self._queue))

    async def _work(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            await self._wait_for_more()
            batch = self._take()
            if batch:
                await self._run(batch)

    async def _wait_for_more(self) -> None:
        """Wait until the queue fills a batch or its oldest request has waited long enough."""
        delay = self.settings.max_batch_delay
        while delay > 0 and self._queue:  # also while draining: batches stay whole
            if sum(i.rows for i in self._queue) >= self.settings.max_batch_size:
                return
            remaining = self._queue[0].arrived + delay - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[_Item]:
        """The next batch: queued requests in order, up to max_batch_size rows (a bigger
        request runs alone); answered (expired, cancelled) ones are dropped."""
        batch: list[_Item] = []
        rows = 0
        now = time.monotonic()
        while self._queue:
            item = self._queue[0]
            if item.future.done() or now >= item.deadline:
                self._queue.popleft()
                _fail(item, Expired("the request expired in the queue"))
                continue
            if batch and rows + item.rows > self.settings.max_batch_size:
                break
            self._queue.popleft()
            batch.append(item)
            rows += item.rows
        self._depth_changed()
        return batch

    async def _run(self, batch: list[_Item]) -> None:
        started = time.monotonic()
        stats = BatchStats(sum(i.rows for i in batch), [started - i.arrived for i in batch])
        self._running += 1
        try:
            results = await asyncio.to_thread(self.predict, [i.raw for i in batch])
        except Exception as exc:  # every request of the batch gets the error
            for item in batch:
                _fail(item, exc)
        else:
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)
        finally:
            self._running -= 1
            stats.inference_seconds = time.monotonic() - started
            if self.on_batch is not None:
                self.on_batch(stats)


def _fail(item: _Item, exc: BaseException) -> None:
    """Answer `item` with `exc`, unless it is answered already (expired or cancelled)."""
    if not item.future.done():
        item.future.set_exception(exc)
