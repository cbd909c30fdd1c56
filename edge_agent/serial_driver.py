"""The serial line-protocol driver: badge readers and sensor hubs on USB/RS-232.

The device writes one frame per line, ASCII, ending in ``\\n`` (a ``\\r`` before it is
ignored). A frame may end with ``*HH``, the XOR of every byte before the ``*`` as two
hex digits (as NMEA does); a frame with a wrong checksum is garbage.

==========================  ======================================================
``D 1`` / ``D 0``           desk occupied / free
``B <card> I`` / ``... O``  badge presented, in / out (the card number as read; the
                            agent turns it into the site-keyed token)
``P <count>``               people in the zone
``E co2=612 t=24.5 h=58``   environment, any of the three fields
==========================  ======================================================

The agent writes what the platform sends down to the device, one line each:

==========================  ======================================================
``C interval=<s>``          sample every ``<s>`` seconds (a ``config`` push)
``I <seconds>``             identify: blink for that long
``R``                       reboot
``S free`` / ``S occupied`` desk display; ``S booked 14:30`` (local time), and
                            ``S free 14:00`` (free until the next booking)
==========================  ======================================================

A command that cannot be written (no port open, the port's buffer full) fails and
the agent reports the failure.

The agent stamps each frame with its clock when the line arrives. Anything else on
the line (noise, a half line cut by a reset, an unknown frame, a line longer than
``MAX_LINE`` bytes) is garbage: counted in ``garbage``, logged (at WARNING for the
first and every 100th, at DEBUG otherwise), and skipped; it is never fatal. The
driver ends when the device goes away (end of file or ``EIO``, as an unplugged
USB adapter or a closed pseudo-terminal gives).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import termios
import time
import tty
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ikn_core.contract import (
    ConfigCommand,
    DisplayCommand,
    DownCommand,
    IdentifyCommand,
    Observation,
    RebootCommand,
)

log = logging.getLogger(__name__)

MAX_LINE = 256
READ_CHUNK = 4096
_KINDS = frozenset("DBPE")
_ENV_FIELDS = {"co2": "co2_ppm", "t": "temp_c", "h": "humidity_pct"}


class GarbageError(ValueError):
    """A line that is not a frame; the message says why (never the line's card number)."""


def _number(text: str) -> int | float:
    value = float(text) if any(c in text for c in ".eE") else int(text)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _checked(line: bytes) -> str:
    if not line.isascii():
        raise GarbageError("not ASCII")
    text = line.decode("ascii")
    if not text.isprintable():
        raise GarbageError("control characters")
    body, star, check = text.rpartition("*")
    if not star:
        return text
    expected = 0
    for byte in body.encode("ascii"):
        expected ^= byte
    if check.upper() != f"{expected:02X}":
        raise GarbageError("bad checksum")
    return body


def parse_frame(line: bytes, ts: int) -> Observation:
    """One line (without its end) as an observation; raise GarbageError if it is not one."""
    parts = _checked(line).split()
    if not parts:
        raise GarbageError("empty line")
    kind, args = parts[0], parts[1:]
    try:
        if kind == "D" and args in (["0"], ["1"]):
            return Observation("desk_occupancy", ts, {"occupied": args[0] == "1"})
        if kind == "B" and len(args) == 2 and args[1] in ("I", "O"):
            direction = "in" if args[1] == "I" else "out"
            return Observation("badge_tap", ts, {"card": args[0], "direction": direction})
        if kind == "P" and len(args) == 1 and args[0].isdigit():
            return Observation("people_count", ts, {"count": int(args[0])})
        if kind == "E" and args:
            fields: dict[str, Any] = {}
            for arg in args:
                name, eq, value = arg.partition("=")
                if not eq or name not in _ENV_FIELDS or _ENV_FIELDS[name] in fields:
                    raise GarbageError("bad environment field")
                fields[_ENV_FIELDS[name]] = _number(value)
            return Observation("environment", ts, fields)
    except ValueError as exc:
        raise GarbageError(f"bad {kind} frame") from exc
    raise GarbageError(f"bad {kind} frame" if kind in _KINDS else "unknown frame")


class LineSplitter:
    """Bytes in, complete lines out; a line longer than ``MAX_LINE`` is cut off and
    reported (``None``) once, and the rest up to its end is skipped."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> Iterator[bytes | None]:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    del self._buffer[:]
                    if not self._skipping:
                        self._skipping = True
                        yield None
                return
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if self._skipping:
                self._skipping = False
            elif len(line) > MAX_LINE:
                yield None
            else:
                yield line


class SerialDriver:
    """A driver (``edge_agent.Driver``) reading the line protocol from ``path``: a
    serial port (``/dev/ttyUSB0``) or a pseudo-terminal, put in raw mode."""

    def __init__(
        self, device_id: str, path: str, *, clock_ms: Callable[[], int] | None = None
    ) -> None:
        self.device_id = device_id
        self.path = path
        self.frames = 0
        self.garbage = 0
        self.open = False  # the port is open and watched
        self._fd: int | None = None
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))

    async def __aiter__(self) -> AsyncIterator[Observation]:
        fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        splitter = LineSplitter()
        try:
            if os.isatty(fd):
                tty.setraw(fd, termios.TCSANOW)
            loop.add_reader(fd, readable.set)
            self.open, self._fd = True, fd
            while True:
                await readable.wait()
                readable.clear()
                data = _read(fd)
                if data is None:
                    continue
                if not data:
                    log.info("%s: %s closed; the driver ends", self.device_id, self.path)
                    return
                for line in splitter.feed(data):
                    obs = self._frame(line)
                    if obs is not None:
                        yield obs
        finally:
            self.open, self._fd = False, None
            loop.remove_reader(fd)
            os.close(fd)

    def on_command(self, command: DownCommand) -> None:
        """Write a ``config``, ``identify`` or ``reboot`` command to the device."""
        self._write(command_line(command))

    def show(self, display: DisplayCommand) -> None:
        """Write the desk display's state to the device."""
        self._write(command_line(display))

    def _write(self, line: str) -> None:
        if self._fd is None:
            raise OSError(errno.ENODEV, f"{self.path} is not open")
        data = f"{line}\n".encode("ascii")
        if os.write(self._fd, data) != len(data):  # BlockingIOError when the buffer is full
            raise OSError(errno.EAGAIN, f"{self.path}: the line was cut short")

    def _frame(self, line: bytes | None) -> Observation | None:
        try:
            if line is None:
                raise GarbageError(f"a line longer than {MAX_LINE} bytes")
            obs = parse_frame(line, self._clock_ms())
        except GarbageError as exc:
            self.garbage += 1
            level = logging.WARNING if self.garbage % 100 == 1 else logging.DEBUG
            log.log(
                level,
                "%s: garbage on %s (%d so far): %s",
                self.device_id,
                self.path,
                self.garbage,
                exc,
            )
            return None
        self.frames += 1
        return obs


def command_line(command: DownCommand) -> str:
    """The line-protocol line for a down command (see the module docstring)."""
    if isinstance(command, ConfigCommand):
        if command.sample_interval_s is None:
            raise ValueError("a config without sample_interval_s is the agent's, not the device's")
        return f"C interval={command.sample_interval_s}"
    if isinstance(command, IdentifyCommand):
        return f"I {command.seconds}"
    if isinstance(command, RebootCommand):
        return "R"
    if isinstance(command, DisplayCommand):
        return " ".join(part for part in ("S", command.state, command.until) if part)
    raise ValueError(f"no line for {command.cmd!r}")


def _read(fd: int) -> bytes | None:
    """Bytes waiting on ``fd``; ``b""`` when the device is gone, None when nothing waits."""
    try:
        return os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno == errno.EIO:  # the other end of a pseudo-terminal closed; unplugged
            return b""
        raise
