"""Server-side batching: concurrent requests to one model joined into one model call.

TF Serving does this with `--enable_batching` (a batch timeout and a maximum batch size).
Here, up to `num_batch_threads` model calls run at once (TF Serving's parameter of that name):
one batch is computed while the answers of another go out and its clients' next requests come in.
A request that finds no call running runs at once, so a lone client never waits for a batch.
While a call runs, the next batch waits up to `batch_timeout_micros` to fill (or until it holds
`max_batch_size` faces): fuller batches cost the model less per face, which matters most when
the machine is busiest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np

from emotion_ai.serving.metrics import BATCH_SIZES
from emotion_ai.settings import BatchSettings


class Batcher:
    """Runs `infer` on the faces of the waiting requests in batches, up to `num_batch_threads` calls
    at once, each in a worker thread."""

    def __init__(
        self,
        infer: Callable[[np.ndarray], np.ndarray],
        settings: BatchSettings,
        name: str,
        wait: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """`wait(seconds)` is how the batch timeout passes (tests hand in a clock they control)."""
        self.infer, self.settings, self.name, self.wait = infer, settings, name, wait
        self._waiting: list[tuple[np.ndarray, asyncio.Future]] = []
        self._drainers: set[asyncio.Task] = set()
        self._calls_running = 0

    async def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """The outputs for `inputs`, computed in a batch with whatever else is waiting."""
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append((inputs, answer))
        if len(self._drainers) < self.settings.num_batch_threads:
            drainer = asyncio.create_task(self._drain())
            self._drainers.add(drainer)
            drainer.add_done_callback(self._drainers.discard)
        return await answer

    async def _drain(self) -> None:
        while self._waiting:
            if (
                self._calls_running
                and self.settings.batch_timeout_micros
                and self._waiting_faces() < self.settings.max_batch_size
            ):
                await self.wait(self.settings.batch_timeout_micros / 1e6)
                if not self._waiting:
                    return
            await self._run(self._next_batch())

    def _waiting_faces(self) -> int:
        return sum(len(inputs) for inputs, _ in self._waiting)

    def _next_batch(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        """The oldest waiting requests whose faces fit in one batch (always at least one
        request)."""
        taken, faces = 1, len(self._waiting[0][0])
        while (
            taken < len(self._waiting)
            and faces + len(self._waiting[taken][0]) <= self.settings.max_batch_size
        ):
            faces += len(self._waiting[taken][0])
            taken += 1
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return batch

    async def _run(self, batch: list[tuple[np.ndarray, asyncio.Future]]) -> None:
        inputs = [request_inputs for request_inputs, _ in batch]
        BATCH_SIZES.labels(self.name).observe(sum(map(len, inputs)))
        self._calls_running += 1
        try:
            outputs = await asyncio.to_thread(self.infer, np.concatenate(inputs))
        except Exception as error:  # noqa: BLE001 - every request of the batch gets the model's error
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(error)
            return
        finally:
            self._calls_running -= 1
        for (_, answer), request_outputs in zip(
            batch, np.split(outputs, np.cumsum(list(map(len, inputs)))[:-1]), strict=False
        ):
            if not answer.done():
                answer.set_result(request_outputs)
