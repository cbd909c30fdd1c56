"""The periodic-job helper (ikn_core.periodic): a failure is logged and the next round
runs; ``first_after`` waits one interval first; ``stop`` and cancellation end it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ikn_core.periodic import every, periodic


async def test_a_failing_round_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ikn_core.periodic")
    calls = 0
    stop = asyncio.Event()

    async def job() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first round breaks")
        if calls == 3:
            stop.set()

    await asyncio.wait_for(every(0.01, job, what="test job", stop=stop), 10)
    assert calls == 3
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failed] == ["test job failed; trying again in 0.01 s"]
    assert failed[0].exc_info is not None  # with its traceback


async def test_first_after_waits_one_interval_and_a_set_stop_runs_nothing() -> None:
    ran: list[float] = []
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    async def job() -> None:
        ran.append(loop.time())
        stop.set()

    started = loop.time()
    await asyncio.wait_for(every(0.2, job, what="later", stop=stop, first_after=True), 10)
    assert len(ran) == 1 and ran[0] - started >= 0.2

    await asyncio.wait_for(every(0.2, job, what="never", stop=stop, first_after=True), 10)
    assert len(ran) == 1  # stop was set already: no round


async def test_periodic_runs_at_once_and_stops_with_its_block() -> None:
    rounds = 0
    ran = asyncio.Event()

    async def job() -> None:
        nonlocal rounds
        rounds += 1
        ran.set()

    async with periodic(3600, job, what="hourly"):
        await asyncio.wait_for(ran.wait(), 10)  # the first round does not wait the hour
    assert rounds == 1
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "hourly"]
