"""api.coalesce: concurrent calls share batches; each caller gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from api.coalesce import Coalescer


class Recorder:
    """A batch function that records its batches and waits on a gate."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def run(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await self.gate.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def _queued(
    recorder: Recorder, items: Sequence[int], max_batch: int = 8
) -> tuple[asyncio.Task[int], list[asyncio.Task[int]]]:
    """The one lane busy with item 0 behind a closed gate, and ``items`` queued behind it."""
    recorder.gate.clear()
    calls = Coalescer(recorder.run, lanes=1, max_batch=max_batch)
    first = asyncio.create_task(calls(0))
    await asyncio.sleep(0)  # the one lane is now busy with [0]
    queued = [asyncio.create_task(calls(i)) for i in items]
    await asyncio.sleep(0)
    return first, queued


async def test_a_quiet_call_goes_at_once_alone() -> None:
    recorder = Recorder()
    calls = Coalescer(recorder.run, lanes=2, max_batch=10)
    assert await calls(4) == 40
    assert recorder.batches == [[4]]


async def test_calls_queued_behind_busy_lanes_share_a_batch_and_keep_their_order() -> None:
    recorder = Recorder()
    first, rest = await _queued(recorder, (2, 4, 6, 8, 10, 12), max_batch=4)
    recorder.gate.set()
    assert await first == 0
    assert [await t for t in rest] == [20, 40, 60, 80, 100, 120]
    assert recorder.batches == [[0], [2, 4, 6, 8], [10, 12]]  # at most max_batch each


async def test_an_item_refused_fails_only_its_caller() -> None:
    recorder = Recorder()
    first, (odd, even) = await _queued(recorder, (3, 2))
    recorder.gate.set()
    await first
    with pytest.raises(ValueError, match="odd 3"):
        await odd
    assert await even == 20
    assert recorder.batches[1] == [3, 2]


async def test_a_failed_batch_fails_each_of_its_callers() -> None:
    async def broken(items: Sequence[int]) -> list[int | BaseException]:
        raise ConnectionError("database gone")

    calls = Coalescer(broken, lanes=1, max_batch=8)
    results = await asyncio.gather(*(calls(i) for i in range(3)), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError] * 3


async def test_a_caller_that_gives_up_is_left_out_of_its_batch() -> None:
    recorder = Recorder()
    first, (gone, kept) = await _queued(recorder, (2, 4))
    gone.cancel()  # its client went away while it queued
    recorder.gate.set()
    await first
    assert await kept == 40
    assert recorder.batches == [[0], [4]]


async def test_close_waits_for_the_batches_in_flight() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    calls = Coalescer(recorder.run, lanes=2, max_batch=8)
    pending = asyncio.create_task(calls(6))
    await asyncio.sleep(0)
    closing = asyncio.create_task(calls.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    recorder.gate.set()
    await closing
    assert pending.done() and pending.result() == 60


def test_lanes_and_batches_are_at_least_one() -> None:
    with pytest.raises(ValueError):
        Coalescer(Recorder().run, lanes=0, max_batch=1)
