"""One thread per model: requests for a model run one at a time, in order, from a bounded queue, with a timeout.

A model's modules are not safe to share between threads (StyleGAN3's transform is a buffer a request sets), so
all of a model's work runs on its own single thread. A full queue answers at once (`Busy`, HTTP 429) instead of
piling up; a job that does not finish in time is `JobTimeout` (HTTP 504); a job still waiting when its request
gives up is dropped before it starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Busy(RuntimeError):
    """The model's queue is full; the client should retry shortly."""


class JobTimeout(RuntimeError):
    """A job did not finish within the worker's timeout."""


class Worker:
    """Runs callables on one thread, at most `max_pending` waiting or running, each bounded by `timeout_s`."""

    def __init__(self, name: str, *, max_pending: int = 64, timeout_s: float = 30.0):
        self.name, self.max_pending, self.timeout_s = name, max_pending, timeout_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"serve-{name}")
        self._pending = 0  # touched only on the event loop's thread

    async def run(self, fn: Callable[..., T], *args) -> T:
        """fn(*args) on the worker thread; raises Busy when the queue is full and JobTimeout past the timeout."""
        if self._pending >= self.max_pending:
            raise Busy(f"model {self.name} is busy ({self._pending} requests queued); retry in a moment")
        self._pending += 1
        job = self._pool.submit(fn, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job), self.timeout_s)
        except asyncio.TimeoutError:
            raise JobTimeout(f"model {self.name}: the job took over {self.timeout_s:g} s and was dropped") from None
        finally:
            job.cancel()  # no-op once started; drops a job whose request gave up while it waited
            self._pending -= 1

    def call(self, fn: Callable[..., T], *args) -> T:
        """fn(*args) on the worker thread, waited for from another thread (not the event loop's)."""
        return self._pool.submit(fn, *args).result(timeout=self.timeout_s)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
