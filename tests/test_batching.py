"""Server-side batching: concurrent requests share model calls, and each gets its own outputs
back."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from emotion_ai.serving.batching import Batcher
from emotion_ai.settings import BatchSettings


class SlowDouble:
    """A stand-in model that takes a while per call and remembers each call's batch size."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(inputs))
        time.sleep(0.05)
        return inputs * 2


async def _concurrently(batcher: Batcher, requests: list[np.ndarray]) -> list[np.ndarray]:
    return await asyncio.gather(*(batcher(request) for request in requests))


async def _one_then_the_rest(batcher: Batcher, requests: list) -> list:
    """The first request alone, the others while the model is busy with it."""
    first = asyncio.create_task(batcher(requests[0]))
    await asyncio.sleep(0.01)
    rest = await asyncio.gather(
        *(batcher(request) for request in requests[1:]), return_exceptions=True
    )
    return [await first, *rest]


def test_requests_that_arrive_while_the_model_is_busy_join_one_call_and_get_their_own_outputs():
    model = SlowDouble()
    requests = [np.full((1, 3), index, dtype=np.float32) for index in range(10)]
    outputs = asyncio.run(
        _one_then_the_rest(Batcher(model, BatchSettings(max_batch_size=32), "m"), requests)
    )
    assert model.batch_sizes == [1, 9], (
        "the first request runs at once, the rest wait and run together"
    )
    for request, output in zip(requests, outputs, strict=False):
        np.testing.assert_array_equal(output, request * 2)


def test_batches_never_exceed_the_maximum_and_keep_multi_face_requests_whole():
    model = SlowDouble()
    requests = [np.full((size, 2), size, dtype=np.float32) for size in (1, 3, 2, 2, 1, 3)]
    outputs = asyncio.run(
        _concurrently(Batcher(model, BatchSettings(max_batch_size=4), "m"), requests)
    )
    assert model.batch_sizes == [4, 4, 4]
    assert [len(output) for output in outputs] == [1, 3, 2, 2, 1, 3]
    for request, output in zip(requests, outputs, strict=False):
        np.testing.assert_array_equal(output, request * 2)


async def _one_then_three_while_it_runs(batcher: Batcher) -> None:
    """One request, then three more 10 ms apart while the model (50 ms a call) is busy with it."""
    tasks = [asyncio.create_task(batcher(np.zeros((1, 1))))]
    for _ in range(3):
        await asyncio.sleep(0.01)
        tasks.append(asyncio.create_task(batcher(np.zeros((1, 1)))))
    await asyncio.gather(*tasks)


@pytest.mark.parametrize(("timeout_micros", "batch_sizes"), [(100_000, [1, 3]), (0, [1, 1, 2])])
def test_while_a_call_runs_a_timeout_waits_for_a_fuller_batch(timeout_micros, batch_sizes):
    model = SlowDouble()
    settings = BatchSettings(batch_timeout_micros=timeout_micros, num_batch_threads=2)
    asyncio.run(_one_then_three_while_it_runs(Batcher(model, settings, "m")))
    assert model.batch_sizes == batch_sizes


def test_a_request_to_an_idle_model_never_waits_for_the_timeout():
    model = SlowDouble()
    batcher = Batcher(model, BatchSettings(batch_timeout_micros=5_000_000), "m")
    started = time.perf_counter()
    asyncio.run(batcher(np.zeros((1, 1))))
    assert time.perf_counter() - started < 2.5, (
        "the lone request ran without waiting 5 s for company"
    )


def test_a_failing_call_fails_every_request_of_its_batch_and_the_next_batch_still_runs():
    calls: list[int] = []

    def flaky(inputs: np.ndarray) -> np.ndarray:
        calls.append(len(inputs))
        failing = len(calls) == 2
        time.sleep(0.05)
        if failing:
            raise RuntimeError("out of memory")
        return inputs

    async def scenario(batcher: Batcher) -> tuple[list, np.ndarray]:
        results = await _one_then_the_rest(batcher, [np.ones((1, 1))] * 4)
        return results, await batcher(np.ones((1, 1)))

    results, later = asyncio.run(scenario(Batcher(flaky, BatchSettings(), "m")))
    assert calls == [1, 3, 1] and isinstance(results[0], np.ndarray)
    assert all(
        isinstance(result, RuntimeError) and "out of memory" in str(result)
        for result in results[1:]
    )
    np.testing.assert_array_equal(later, np.ones((1, 1)))


def test_a_batch_of_one_runs_requests_one_by_one():
    model = SlowDouble()
    asyncio.run(
        _concurrently(Batcher(model, BatchSettings(max_batch_size=1), "m"), [np.zeros((1, 1))] * 3)
    )
    assert model.batch_sizes == [1, 1, 1]


class CountingConcurrency(SlowDouble):
    """SlowDouble that also records the most calls it ever ran at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running, self.most_running, self.lock = 0, 0, threading.Lock()

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            return super().__call__(inputs)
        finally:
            with self.lock:
                self.running -= 1


async def _in_waves(batcher: Batcher, waves: int, per_wave: int) -> list[np.ndarray]:
    """`per_wave` requests at once, `waves` times, 10 ms apart, all awaited at the end."""
    tasks = []
    for wave in range(waves):
        tasks += [asyncio.create_task(batcher(np.full((1, 1), wave))) for _ in range(per_wave)]
        await asyncio.sleep(0.01)
    return await asyncio.gather(*tasks)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_up_to_num_batch_threads_calls_run_at_once_and_every_request_is_answered_once(threads):
    model = CountingConcurrency()
    outputs = asyncio.run(
        _in_waves(Batcher(model, BatchSettings(num_batch_threads=threads), "m"), 6, 3)
    )
    assert model.most_running == threads, "a new call starts while another runs, up to the limit"
    assert sum(model.batch_sizes) == 18 and len(outputs) == 18
    np.testing.assert_array_equal(np.concatenate(outputs).ravel(), np.repeat(np.arange(6) * 2, 3))
