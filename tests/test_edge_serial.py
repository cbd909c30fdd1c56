"""The serial line-protocol driver, over a real pseudo-terminal: frames become
observations, garbage is counted and skipped, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent import EdgeAgent
from edge_agent.serial_driver import MAX_LINE, GarbageError, LineSplitter, SerialDriver, parse_frame
from ikn.brokers import BrokerProcess
from ikn_core.contract import BadgeTap, Observation
from tests.test_edge_agent import flushed, mqtt_settings, subscribed
from tests.test_edge_badge import KNOWN_TOKEN, SITE_KEY

TS = 1_795_424_990_000
DEADLINE_S = 15.0


def checksum(body: bytes) -> bytes:
    value = 0
    for byte in body:
        value ^= byte
    return body + b"*%02X" % value


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    """A pseudo-terminal: the device's end (master fd) and the path the driver opens."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    yield master, path
    with contextlib.suppress(OSError):  # the test closed it: the device went away
        os.close(master)


def test_frames_of_every_kind() -> None:
    assert parse_frame(b"D 1", TS) == Observation("desk_occupancy", TS, {"occupied": True})
    assert parse_frame(b"B 0004829001 O", TS) == Observation(
        "badge_tap", TS, {"card": "0004829001", "direction": "out"}
    )
    assert parse_frame(b"P 14", TS) == Observation("people_count", TS, {"count": 14})
    assert parse_frame(b"E co2=612 t=24.5 h=58", TS) == Observation(
        "environment", TS, {"co2_ppm": 612, "temp_c": 24.5, "humidity_pct": 58}
    )
    assert parse_frame(checksum(b"D 0"), TS).fields == {"occupied": False}


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"X 1",
        b"D 2",
        b"D",
        b"B 123",
        b"B 123 X",
        b"P -1",
        b"E",
        b"E co2=",
        b"E t=1 t=2",
        b"E q=1",
        b"E t=nan",
        b"D 1*00",
        b"\xffD 1",
        b"D\x001",
        b"0004829001 I",
    ],
)
def test_garbage_is_named_without_the_line(line: bytes) -> None:
    with pytest.raises(GarbageError) as err:
        parse_frame(line, TS)
    assert "0004829001" not in str(err.value)


@given(st.binary(max_size=2 * MAX_LINE))
def test_any_bytes_are_a_frame_or_garbage(line: bytes) -> None:
    with contextlib.suppress(GarbageError):
        parse_frame(line, TS)


@given(st.lists(st.binary(max_size=64), max_size=20), st.integers(1, 17))
def test_splitting_keeps_every_line_whatever_the_chunks(lines: list[bytes], chunk: int) -> None:
    lines = [line.replace(b"\n", b"") for line in lines]
    data = b"".join(line + b"\n" for line in lines)
    splitter = LineSplitter()
    out = [line for i in range(0, len(data), chunk) for line in splitter.feed(data[i : i + chunk])]
    assert out == [line.rstrip(b"\r") for line in lines]


def test_an_overlong_line_is_one_garbage_and_the_next_line_survives() -> None:
    splitter = LineSplitter()
    out = list(splitter.feed(b"x" * (MAX_LINE + 10)))
    out += list(splitter.feed(b"yyy\nD 1\n"))
    assert out == [None, b"D 1"]


async def until(ready: Callable[[], bool]) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while not ready():  # noqa: ASYNC110 - a driver's counters have no event
            await asyncio.sleep(0.01)


async def collect(driver: SerialDriver) -> list[Observation]:
    async with asyncio.timeout(DEADLINE_S):
        return [obs async for obs in driver]


async def test_reads_a_pseudo_terminal_and_counts_garbage(
    pty: tuple[int, str], caplog: pytest.LogCaptureFixture
) -> None:
    master, path = pty
    driver = SerialDriver("hub-1", path, clock_ms=lambda: TS)
    task = asyncio.create_task(collect(driver))
    await until(lambda: driver.open)  # raw mode from the first byte on
    os.write(master, b"\x00\xfe\x13noise\r\nD 1\r\nP 1")  # noise, a frame, a half frame...
    os.write(master, b"4\n" + b"Z" * 1000 + b"\nB 0004829001 I\n" + checksum(b"E t=21.5") + b"\n")
    os.write(master, b"D 1*00\nunknown frame\n")
    caplog.set_level(logging.DEBUG, logger="edge_agent.serial_driver")
    await until(lambda: driver.frames == 4 and driver.garbage == 4)
    os.close(master)  # the device goes away: the driver ends
    observations = await task
    assert [(o.kind, dict(o.fields)) for o in observations] == [
        ("desk_occupancy", {"occupied": True}),
        ("people_count", {"count": 14}),
        ("badge_tap", {"card": "0004829001", "direction": "in"}),
        ("environment", {"temp_c": 21.5}),
    ]
    assert (driver.frames, driver.garbage) == (4, 4)
    assert "garbage on" in caplog.text
    assert "0004829001" not in caplog.text


async def test_a_badge_read_on_the_serial_line_is_published_as_its_token(
    mosquitto: BrokerProcess, pty: tuple[int, str]
) -> None:
    master, path = pty
    driver = SerialDriver("reader-7", path)
    agent = EdgeAgent("reader-7", mqtt_settings(mosquitto), site_key=SITE_KEY)
    async with subscribed(mosquitto) as sub, agent:
        pump = asyncio.create_task(agent.pump(driver))
        await until(lambda: driver.open)
        os.write(master, b"garbage\nB 0004829001 I\n")
        await sub.wait_until(lambda: len(sub.readings()) == 1, "the tap")
        os.close(master)
        async with asyncio.timeout(DEADLINE_S):
            await pump
        await flushed(agent)
    (tap,) = sub.readings()
    assert isinstance(tap, BadgeTap) and (tap.badge, tap.direction) == (KNOWN_TOKEN, "in")
    assert all(b"0004829001" not in m.payload for m in sub.messages)
    assert driver.garbage == 1
