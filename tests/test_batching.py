"""Server-side batching: concurrent requests share model calls, and each gets its own outputs back."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from emotion_ai.batching import Batcher, BatchSettings


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
    rest = await asyncio.gather(*(batcher(request) for request in requests[1:]), return_exceptions=True)
    return [await first, *rest]


def test_requests_that_arrive_while_the_model_is_busy_join_one_call_and_get_their_own_outputs():
    model = SlowDouble()
    requests = [np.full((1, 3), index, dtype=np.float32) for index in range(10)]
    outputs = asyncio.run(_one_then_the_rest(Batcher(model, BatchSettings(max_batch_size=32), "m"), requests))
    assert model.batch_sizes == [1, 9], "the first request runs at once, the rest wait and run together"
    for request, output in zip(requests, outputs):
        np.testing.assert_array_equal(output, request * 2)


def test_batches_never_exceed_the_maximum_and_keep_multi_face_requests_whole():
    model = SlowDouble()
    requests = [np.full((size, 2), size, dtype=np.float32) for size in (1, 3, 2, 2, 1, 3)]
    outputs = asyncio.run(_concurrently(Batcher(model, BatchSettings(max_batch_size=4), "m"), requests))
    assert model.batch_sizes == [4, 4, 4]
    assert [len(output) for output in outputs] == [1, 3, 2, 2, 1, 3]
    for request, output in zip(requests, outputs):
        np.testing.assert_array_equal(output, request * 2)


def test_a_timeout_waits_for_a_fuller_batch():
    model = SlowDouble()

    async def staggered(batcher: Batcher) -> None:
        first = asyncio.create_task(batcher(np.zeros((1, 1))))
        await asyncio.sleep(0.01)
        await asyncio.gather(first, batcher(np.zeros((1, 1))))

    asyncio.run(staggered(Batcher(model, BatchSettings(batch_timeout_micros=100_000), "m")))
    assert model.batch_sizes == [2]


def test_a_failing_call_fails_every_request_of_its_batch_and_the_next_batch_still_runs():
    calls: list[int] = []

    def flaky(inputs: np.ndarray) -> np.ndarray:
        calls.append(len(inputs))
        time.sleep(0.05)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return inputs

    async def scenario(batcher: Batcher) -> tuple[list, np.ndarray]:
        results = await _one_then_the_rest(batcher, [np.ones((1, 1))] * 4)
        return results, await batcher(np.ones((1, 1)))

    results, later = asyncio.run(scenario(Batcher(flaky, BatchSettings(), "m")))
    assert calls == [1, 3, 1] and isinstance(results[0], np.ndarray)
    assert all(isinstance(result, RuntimeError) and "out of memory" in str(result) for result in results[1:])
    np.testing.assert_array_equal(later, np.ones((1, 1)))


def test_a_batch_of_one_runs_requests_one_by_one():
    model = SlowDouble()
    asyncio.run(_concurrently(Batcher(model, BatchSettings(max_batch_size=1), "m"), [np.zeros((1, 1))] * 3))
    assert model.batch_sizes == [1, 1, 1]
