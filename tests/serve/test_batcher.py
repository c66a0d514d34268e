"""The dynamic batcher with a fake predict that records each batch: merging, waiting, the
bounded queue, deadlines, errors, draining and concurrent workers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ladder.serve.batcher import Batcher, BatchSettings, BatchStats, Closed, Expired, QueueFull


class FakePredict:
    """predict(raws) -> [raw * 10 ...]; records every batch; can block or fail."""

    def __init__(self, fail: Exception | None = None, block: bool = False) -> None:
        self.batches: list[list[Any]] = []
        self.fail = fail
        self.release = threading.Event()
        if not block:
            self.release.set()
        self.started = threading.Event()  # set when a batch begins
        self.barrier: threading.Barrier | None = None

    def __call__(self, raws: list[Any]) -> list[Any]:
        self.batches.append(list(raws))
        self.started.set()
        if self.barrier is not None:
            self.barrier.wait()
        if not self.release.wait(10):
            raise RuntimeError("the test never released the batch")
        if self.fail is not None:
            raise self.fail
        return [raw * 10 for raw in raws]


def run(
    predict: FakePredict,
    body: Callable[[Batcher], Awaitable[Any]],
    stats: list[BatchStats] | None = None,
    **settings: Any,
) -> Any:
    """Run `body(batcher)` in a fresh event loop with a started batcher; drain it after."""

    async def main() -> Any:
        on_batch = stats.append if stats is not None else None
        batcher = Batcher(predict, BatchSettings(**settings), on_batch=on_batch)
        batcher.start()
        try:
            return await body(batcher)
        finally:
            predict.release.set()  # never leave a worker thread blocked
            await batcher.drain()

    return asyncio.run(main())


async def wait_started(predict: FakePredict) -> None:
    """Until the fake predict has begun a batch (in its worker thread)."""
    await asyncio.to_thread(predict.started.wait, 5)
    predict.started.clear()


def test_requests_merge_up_to_max_batch_size():
    predict = FakePredict()
    stats: list[BatchStats] = []

    async def body(batcher: Batcher) -> list[Any]:
        return await asyncio.gather(*(batcher.submit(i, 1) for i in range(6)))

    results = run(predict, body, stats, max_batch_size=4, max_batch_delay=0.2)
    assert results == [0, 10, 20, 30, 40, 50]  # each request gets its own answer, in order
    assert predict.batches == [[0, 1, 2, 3], [4, 5]]
    assert [s.rows for s in stats] == [4, 2]
    assert all(len(s.queue_seconds) == len(b) for s, b in zip(stats, predict.batches, strict=True))


def test_rows_not_requests_bound_a_batch_and_a_big_request_runs_alone():
    predict = FakePredict()

    async def body(batcher: Batcher) -> list[Any]:
        sizes = [("a", 3), ("b", 2), ("c", 9), ("d", 1)]
        return await asyncio.gather(*(batcher.submit(raw, rows) for raw, rows in sizes))

    results = run(predict, body, max_batch_size=4, max_batch_delay=0.2)
    assert results == ["a" * 10, "b" * 10, "c" * 10, "d" * 10]
    assert predict.batches == [["a"], ["b"], ["c"], ["d"]]  # 3+2 > 4; 9 > 4 alone; 9+1 > 4


def test_max_batch_delay_waits_for_more_requests():
    predict = FakePredict()

    async def body(batcher: Batcher) -> float:
        started = time.monotonic()
        first = asyncio.create_task(batcher.submit(1, 1))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(batcher.submit(2, 1))
        assert await asyncio.gather(first, second) == [10, 20]
        return time.monotonic() - started

    elapsed = run(predict, body, max_batch_size=8, max_batch_delay=0.4)
    assert predict.batches == [[1, 2]]
    assert 0.35 <= elapsed < 3  # the oldest request waited its delay for more


def test_a_full_batch_does_not_wait_for_the_delay():
    predict = FakePredict()

    async def body(batcher: Batcher) -> float:
        started = time.monotonic()
        await asyncio.gather(*(batcher.submit(i, 1) for i in range(4)))
        return time.monotonic() - started

    elapsed = run(predict, body, max_batch_size=4, max_batch_delay=5.0)
    assert predict.batches == [[0, 1, 2, 3]]
    assert elapsed < 2


def test_zero_delay_adds_no_wait():
    predict = FakePredict()

    async def body(batcher: Batcher) -> float:
        started = time.monotonic()
        assert await batcher.submit(7, 1) == 70
        return time.monotonic() - started

    elapsed = run(predict, body, max_batch_size=64, max_batch_delay=0.0)
    assert predict.batches == [[7]]
    assert elapsed < 0.5  # nothing waited for company (a thread hop only)


def test_a_full_queue_raises_queue_full():
    predict = FakePredict(block=True)

    async def body(batcher: Batcher) -> list[Any]:
        running = asyncio.create_task(batcher.submit("a", 1))
        await wait_started(predict)  # "a" left the queue and runs
        queued = [asyncio.create_task(batcher.submit(x, 1)) for x in ("b", "c")]
        await asyncio.sleep(0.05)
        assert batcher.depth == 2
        with pytest.raises(QueueFull, match="2 requests"):
            await batcher.submit("d", 1)
        predict.release.set()
        return await asyncio.gather(running, *queued)

    assert run(predict, body, max_batch_size=1, max_queue=2) == ["a" * 10, "b" * 10, "c" * 10]
    assert ["d"] not in predict.batches


def test_an_expired_request_is_answered_and_never_predicted():
    predict = FakePredict(block=True)

    async def body(batcher: Batcher) -> list[Any]:
        running = asyncio.create_task(batcher.submit("slow", 1))
        await wait_started(predict)
        waited = time.monotonic()
        with pytest.raises(Expired, match=r"0\.3 s"):
            await batcher.submit("late", 1)  # waits behind "slow" past its deadline
        assert time.monotonic() - waited < 2
        predict.release.set()
        after = await batcher.submit("fresh", 1)  # the worker moves on past "late"
        return [await asyncio.gather(running, return_exceptions=True), after]

    (slow,), fresh = run(predict, body, max_batch_size=8, timeout=0.3)
    assert isinstance(slow, Expired)  # it ran, but answered after its deadline
    assert fresh == "fresh" * 10
    assert predict.batches == [["slow"], ["fresh"]]  # "late" never reached predict


def test_a_request_expiring_in_the_queue_under_a_long_delay_is_not_predicted():
    predict = FakePredict()

    async def body(batcher: Batcher) -> Any:
        with pytest.raises(Expired):
            await batcher.submit("late", 1)  # the delay is longer than the timeout
        await asyncio.sleep(0.5)  # the worker wakes from its delay and finds it expired
        return None

    run(predict, body, max_batch_size=8, max_batch_delay=0.4, timeout=0.1)
    assert predict.batches == []


def test_a_predict_error_reaches_every_request_of_the_batch():
    predict = FakePredict(fail=RuntimeError("model exploded"))

    async def body(batcher: Batcher) -> list[Any]:
        results = await asyncio.gather(
            *(batcher.submit(i, 1) for i in range(3)), return_exceptions=True
        )
        predict.fail = None
        results.append(await batcher.submit(9, 1))  # the batcher keeps working afterwards
        return results

    results = run(predict, body, max_batch_size=8, max_batch_delay=0.2)
    assert predict.batches == [[0, 1, 2], [9]]
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results[:3])
    assert results[3] == 90


def test_drain_answers_queued_requests_and_refuses_new_ones():
    predict = FakePredict(block=True)

    async def body(batcher: Batcher) -> list[Any]:
        running = asyncio.create_task(batcher.submit("a", 1))
        await wait_started(predict)
        queued = [asyncio.create_task(batcher.submit(x, 1)) for x in ("b", "c")]
        await asyncio.sleep(0.05)
        drain = asyncio.create_task(batcher.drain())
        await asyncio.sleep(0.05)
        with pytest.raises(Closed, match="shutting down"):
            await batcher.submit("d", 1)
        assert not drain.done()  # still waiting on "a", "b", "c"
        predict.release.set()
        answers = await asyncio.gather(running, *queued)
        await asyncio.wait_for(drain, 5)
        return answers

    assert run(predict, body, max_batch_size=1, max_batch_delay=1.0) == [
        "a" * 10,
        "b" * 10,
        "c" * 10,
    ]
    assert ["d"] not in predict.batches


def test_two_workers_run_two_batches_at_once():
    predict = FakePredict()
    predict.barrier = threading.Barrier(2, timeout=5)  # broken unless both batches run together

    async def body(batcher: Batcher) -> list[Any]:
        return await asyncio.gather(batcher.submit(1, 1), batcher.submit(2, 1))

    assert run(predict, body, max_batch_size=1, workers=2) == [10, 20]
    assert sorted(predict.batches) == [[1], [2]]


def test_one_worker_runs_batches_one_at_a_time():
    predict = FakePredict()
    predict.barrier = threading.Barrier(2, timeout=0.5)

    async def body(batcher: Batcher) -> list[Any]:
        return await asyncio.gather(
            batcher.submit(1, 1), batcher.submit(2, 1), return_exceptions=True
        )

    results = run(predict, body, max_batch_size=1, workers=1)
    assert all(isinstance(r, threading.BrokenBarrierError) for r in results)
    assert predict.batches == [[1], [2]]


def test_a_cancelled_request_leaves_the_queue_at_once_and_is_never_predicted():
    """A client that disconnects cancels its wait: the request frees its queue slot at once
    and no batch runs it."""
    predict = FakePredict()
    depths: list[int] = []

    async def body(batcher: Batcher) -> Any:
        waiting = asyncio.create_task(batcher.submit("gone", 1))
        await asyncio.sleep(0.05)
        depths.append(batcher.depth)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        depths.append(batcher.depth)
        await asyncio.sleep(0.4)  # past the batch delay
        return await batcher.submit("kept", 1)

    assert run(predict, body, max_batch_size=8, max_batch_delay=0.3) == "kept" * 10
    assert depths == [1, 0]
    assert predict.batches == [["kept"]]


def test_a_caller_deadline_shorter_than_the_timeout_expires_the_request():
    predict = FakePredict()

    async def body(batcher: Batcher) -> float:
        started = time.monotonic()
        with pytest.raises(Expired, match=r"0\.1 s"):
            await batcher.submit("late", 1, timeout=0.1)  # a gRPC client's own deadline
        return time.monotonic() - started

    assert run(predict, body, max_batch_size=8, max_batch_delay=1.0, timeout=30) < 0.9
    assert predict.batches == []
