"""Group commit for the API: concurrent calls of one kind run as one batch.

Under a morning rush most of a request's cost is not its own work but the round trip
and the commit around it: a socket write that wakes a PostgreSQL backend, and a WAL
flush per transaction. A ``Coalescer`` lets calls that arrive while the database is busy
share both. A call starts a batch at once when one of the ``lanes`` is free, so a quiet
API adds no wait; when every lane is busy, calls queue, and the next free lane takes up
to ``max_batch`` of them in one statement.

The batch function answers every item: a result or the exception for that item alone.
If the batch itself fails, every item in it gets that exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

BatchFn = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class Coalescer(Generic[T, R]):
    """Runs ``run`` on batches of the items passed to ``__call__``; ``lanes`` batches at
    most are in flight at once (each holds a database connection)."""

    def __init__(self, run: BatchFn[T, R], *, lanes: int, max_batch: int) -> None:
        if lanes < 1 or max_batch < 1:
            raise ValueError("lanes and max_batch must be at least 1")
        self._run = run
        self._lanes = lanes
        self._max_batch = max_batch
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._busy = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._busy < self._lanes:
            self._busy += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = [
                    self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))
                ]
                live = [(item, future) for item, future in batch if not future.done()]
                if not live:
                    continue  # every caller gave up (client gone) before its turn
                try:
                    outcomes = await self._run([item for item, _ in live])
                except asyncio.CancelledError:
                    for _, future in live:
                        future.cancel()
                    raise
                except Exception as exc:  # the batch failed: each caller hears why
                    outcomes = [exc] * len(live)
                for (_, future), outcome in zip(live, outcomes, strict=True):
                    if future.done():
                        continue  # cancelled while its batch ran
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._busy -= 1

    async def close(self) -> None:
        """Wait for the batches in flight (the app's shutdown, before the pool closes)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
