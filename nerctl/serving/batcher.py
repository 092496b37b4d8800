"""Dynamic batching: concurrent requests' texts tagged together, off the event loop.

A model call costs nearly the same for 1 text as for dozens (the forward pass
is matrix work over the batch), so the server gathers whatever requests arrive
within `max_wait` of the first one, up to `max_batch` texts, and tags them in
one call on a single tagging thread. Requests are never split, so each gets its
results from one call; a request larger than `max_batch` is tagged alone.
"""
from __future__ import annotations

import asyncio
import collections
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence


class QueueFull(Exception):
    """More texts are waiting than the queue may hold: the caller should retry later."""


@dataclass
class _Job:
    texts: Sequence[str]
    future: asyncio.Future


class Batcher:
    """Gathers texts from concurrent callers into batches for `tag` (run on one worker thread).

    `tag(texts) -> list` returns one result per text. `on_batch(size)` and
    `on_queue(depth)` report batch sizes and the number of texts waiting.
    """

    def __init__(self, tag: Callable[[list[str]], list[Any]], max_batch: int = 64, max_wait_s: float = 0.005,
                 max_queue: int = 1024, on_batch: Callable[[int], None] | None = None,
                 on_queue: Callable[[int], None] | None = None):
        self._tag, self.max_batch, self.max_wait_s, self.max_queue = tag, max_batch, max_wait_s, max_queue
        self._on_batch, self._on_queue = on_batch or (lambda size: None), on_queue or (lambda depth: None)
        self._jobs: collections.deque[_Job] = collections.deque()
        self._waiting = 0  # texts queued, not yet in a batch
        self._arrived: asyncio.Event | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="nerctl-tagger")  # the model is not thread-safe
        self._task: asyncio.Task | None = None

    def retarget(self, tag: Callable[[list[str]], list[Any]]) -> None:
        """Tag the next batches with `tag` (a new model): the batch in flight finishes on the old one."""
        self._tag = tag

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop (after in-flight requests have their results) and the tagging thread."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def tag(self, texts: Sequence[str]) -> list[Any]:
        """The results for `texts`, tagged in a batch with whatever else is waiting. Raises QueueFull."""
        if self._waiting + len(texts) > self.max_queue:
            raise QueueFull(f"{self._waiting} texts are waiting (the queue holds {self.max_queue})")
        job = _Job(texts, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._waiting += len(texts)
        self._on_queue(self._waiting)
        self._arrived.set()
        return await job.future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            await self._gather_for(self.max_wait_s)
            jobs = self._take_batch()
            if self._jobs:  # more than one batch was waiting: go round again at once
                self._arrived.set()
            else:
                self._arrived.clear()
            if not jobs:
                continue
            texts = [text for job in jobs for text in job.texts]
            self._on_batch(len(texts))
            try:
                results = await loop.run_in_executor(self._executor, self._tag, texts)
            except Exception as err:  # noqa: BLE001 - each caller gets the error, the loop lives on
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(err)
                continue
            start = 0
            for job in jobs:
                if not job.future.done():  # a caller that went away has a cancelled future
                    job.future.set_result(results[start : start + len(job.texts)])
                start += len(job.texts)

    async def _gather_for(self, seconds: float) -> None:
        """Wait up to `seconds` for more texts, unless a full batch is waiting already."""
        deadline = asyncio.get_running_loop().time() + seconds
        while self._waiting < self.max_batch:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take_batch(self) -> list[_Job]:
        """Whole jobs from the front of the queue, up to max_batch texts (at least one job)."""
        jobs, size = [], 0
        while self._jobs and (not jobs or size + len(self._jobs[0].texts) <= self.max_batch):
            job = self._jobs.popleft()
            jobs.append(job)
            size += len(job.texts)
        self._waiting -= size
        self._on_queue(self._waiting)
        return jobs
