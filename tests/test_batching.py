"""Server-side batching: concurrent requests share model calls, and each gets its own outputs
back. No test here depends on timing: the stand-in model finishes a call only when the test lets
it, and the batch timeout passes only when the test says so."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from emotion_ai.serving.batching import Batcher
from emotion_ai.settings import BatchSettings


class GatedDouble:
    """A stand-in model whose calls wait until the test opens the gate; it counts the calls begun
    and remembers each call's batch size."""

    def __init__(self, fail_call: int = 0) -> None:
        self.batch_sizes: list[int] = []
        self.gate, self.begun = threading.Event(), threading.Semaphore(0)
        self.running, self.most_running, self.lock = 0, 0, threading.Lock()
        self.fail_call = fail_call

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        with self.lock:
            self.batch_sizes.append(len(inputs))
            call = len(self.batch_sizes)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self.begun.release()
        try:
            if not self.gate.wait(timeout=60):
                raise TimeoutError("the test never opened the gate")
            if call == self.fail_call:
                raise RuntimeError("out of memory")
            return inputs * 2
        finally:
            with self.lock:
                self.running -= 1

    async def calls_begun(self, count: int) -> None:
        """Returns once `count` more calls have begun."""
        for _ in range(count):
            await asyncio.to_thread(self.begun.acquire)


class Clock:
    """The batch timeout, passing only when the test calls `advance`."""

    def __init__(self) -> None:
        self.waiting = 0
        self._passed = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        self.waiting += 1
        await self._passed.wait()

    def advance(self) -> None:
        self._passed.set()


async def _settle() -> None:
    """Lets every task that can run do so up to its next wait."""
    for _ in range(5):
        await asyncio.sleep(0)


async def _one_then_the_rest(model: GatedDouble, batcher: Batcher, requests: list) -> list:
    """The first request alone; the others arrive while the model is busy with it."""
    first = asyncio.create_task(batcher(requests[0]))
    await model.calls_begun(1)
    rest = [asyncio.create_task(batcher(request)) for request in requests[1:]]
    await _settle()
    model.gate.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_requests_that_arrive_while_the_model_is_busy_join_one_call_and_get_their_own_outputs():
    model = GatedDouble()
    requests = [np.full((1, 3), index, dtype=np.float32) for index in range(10)]
    settings = BatchSettings(max_batch_size=32, batch_timeout_micros=0, num_batch_threads=1)
    outputs = asyncio.run(_one_then_the_rest(model, Batcher(model, settings, "m"), requests))
    assert model.batch_sizes == [1, 9], "the first runs at once, the rest wait and run together"
    for request, output in zip(requests, outputs, strict=True):
        np.testing.assert_array_equal(output, request * 2)


def test_batches_never_exceed_the_maximum_and_keep_multi_face_requests_whole():
    model = GatedDouble()
    model.gate.set()
    requests = [np.full((size, 2), size, dtype=np.float32) for size in (1, 3, 2, 2, 1, 3)]
    settings = BatchSettings(max_batch_size=4, batch_timeout_micros=0, num_batch_threads=1)

    async def all_at_once() -> list:
        batcher = Batcher(model, settings, "m")
        return await asyncio.gather(*(batcher(request) for request in requests))

    outputs = asyncio.run(all_at_once())
    assert model.batch_sizes == [4, 4, 4]
    assert [len(output) for output in outputs] == [1, 3, 2, 2, 1, 3]
    for request, output in zip(requests, outputs, strict=True):
        np.testing.assert_array_equal(output, request * 2)


@pytest.mark.parametrize(("timeout_micros", "batch_sizes"), [(100_000, [1, 3]), (0, [1, 1, 2])])
def test_while_a_call_runs_a_timeout_waits_for_a_fuller_batch(timeout_micros, batch_sizes):
    """One request, then three more while the model is busy with it: with a timeout the three
    wait for each other (the clock passes only once all have come); without, the second runs at
    once beside the first and the last two go together."""

    async def scenario() -> None:
        clock = Clock()
        settings = BatchSettings(batch_timeout_micros=timeout_micros, num_batch_threads=2)
        batcher = Batcher(model, settings, "m", wait=clock.wait)
        tasks = [asyncio.create_task(batcher(np.zeros((1, 1))))]
        await model.calls_begun(1)
        for index in range(3):
            tasks.append(asyncio.create_task(batcher(np.zeros((1, 1)))))
            await _settle()
            if index == 0 and not timeout_micros:
                await model.calls_begun(1)
        clock.advance()
        model.gate.set()
        await asyncio.gather(*tasks)
        assert clock.waiting == (1 if timeout_micros else 0)

    model = GatedDouble()
    asyncio.run(scenario())
    assert model.batch_sizes == batch_sizes


def test_a_request_to_an_idle_model_never_waits_for_the_timeout():
    model = GatedDouble()
    model.gate.set()

    async def lone_request() -> Clock:
        clock = Clock()
        await Batcher(model, BatchSettings(batch_timeout_micros=5_000_000), "m", clock.wait)(
            np.zeros((1, 1))
        )
        return clock

    assert asyncio.run(lone_request()).waiting == 0, "no timeout was waited for"
    assert model.batch_sizes == [1]


def test_a_failing_call_fails_every_request_of_its_batch_and_the_next_batch_still_runs():
    model = GatedDouble(fail_call=2)
    settings = BatchSettings(batch_timeout_micros=0, num_batch_threads=1)

    async def scenario() -> tuple[list, np.ndarray]:
        batcher = Batcher(model, settings, "m")
        results = await _one_then_the_rest(model, batcher, [np.ones((1, 1))] * 4)
        return results, await batcher(np.ones((1, 1)))

    results, later = asyncio.run(scenario())
    assert model.batch_sizes == [1, 3, 1] and isinstance(results[0], np.ndarray)
    assert all(
        isinstance(result, RuntimeError) and "out of memory" in str(result)
        for result in results[1:]
    )
    np.testing.assert_array_equal(later, np.ones((1, 1)) * 2)


def test_a_batch_of_one_runs_requests_one_by_one():
    model = GatedDouble()
    model.gate.set()

    async def three_at_once() -> list:
        batcher = Batcher(model, BatchSettings(max_batch_size=1), "m")
        return await asyncio.gather(*(batcher(np.zeros((1, 1))) for _ in range(3)))

    asyncio.run(three_at_once())
    assert model.batch_sizes == [1, 1, 1]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_up_to_num_batch_threads_calls_run_at_once_and_every_request_is_answered_once(threads):
    """Requests keep coming while every call waits: exactly `threads` calls begin, no more."""

    async def scenario() -> list:
        settings = BatchSettings(batch_timeout_micros=0, num_batch_threads=threads)
        batcher = Batcher(model, settings, "m")
        tasks = []
        for wave in range(6):
            tasks += [asyncio.create_task(batcher(np.full((1, 1), wave))) for _ in range(3)]
            await _settle()
        await model.calls_begun(threads)
        await _settle()
        begun_while_closed = len(model.batch_sizes)
        model.gate.set()
        outputs = await asyncio.gather(*tasks)
        assert begun_while_closed == threads
        return outputs

    model = GatedDouble()
    outputs = asyncio.run(scenario())
    assert model.most_running == threads
    assert sum(model.batch_sizes) == 18 and len(outputs) == 18
    np.testing.assert_array_equal(np.concatenate(outputs).ravel(), np.repeat(np.arange(6) * 2, 3))
