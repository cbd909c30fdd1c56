"""The hand-over from the paho thread to asyncio (ingest/mqtt.py ``Handover``): every
message arrives once and in order, and a full queue holds the network thread."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from ingest.decode import Received
from ingest.mqtt import Handover


def _message(mid: int) -> Received:
    return Received("ikn/v1/dev/x/up", b"{}", mid, 1, datetime.now(UTC), 1)


async def test_a_full_queue_holds_the_thread_and_nothing_is_lost_or_reordered() -> None:
    queue = Handover(3)
    closing = threading.Event()
    offered: list[int] = []

    def paho_thread() -> None:
        for mid in range(1, 11):
            assert queue.offer(_message(mid), closing)
            offered.append(mid)

    thread = threading.Thread(target=paho_thread)
    thread.start()
    got: list[int] = []
    while len(got) < 10:
        item = await asyncio.wait_for(queue.get(), 5)
        got.append(item.mid)
        # the thread is never more than the queue's three places ahead of us
        assert len(offered) <= len(got) + 3
    await asyncio.to_thread(thread.join, 5)
    assert got == list(range(1, 11))
    assert offered == list(range(1, 11))


async def test_a_closing_source_stops_waiting_for_room() -> None:
    queue = Handover(1)
    closing = threading.Event()
    assert queue.offer(_message(1), closing)
    closing.set()
    # no room and closing: gives up (after its one-second wait) instead of blocking
    assert not await asyncio.to_thread(queue.offer, _message(2), closing)
    assert (await asyncio.wait_for(queue.get(), 5)).mid == 1
    assert queue.empty()
