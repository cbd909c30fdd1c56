"""Simulated devices on pseudo-terminals speaking the serial line protocol
(``ikn sim --serial``), so the agents' real ``SerialDriver`` reads them.

A :class:`PtyLink` is one device's cable: the device writes frames
(``frame_line``, with the ``*HH`` checksum) on the pseudo-terminal's master side;
the agent opens ``path`` (the slave side). What the agent writes back (display
states, commands) is read and counted. The ``line-noise`` fault puts a garbage
line before a frame now and then: noise bytes (not ASCII) or a half frame (its
checksum cut short); each is one whole line, so the frames around it survive and
the driver counts exactly one garbage line for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import termios
import tty

from ikn_core.contract import Observation

log = logging.getLogger(__name__)

WRITE_RETRY_S = 0.01


def frame_line(obs: Observation) -> bytes:
    """The line-protocol frame for ``obs``, checksummed, ending in ``\\n``."""
    f = obs.fields
    if obs.kind == "desk_occupancy":
        body = f"D {1 if f['occupied'] else 0}"
    elif obs.kind == "badge_tap":
        body = f"B {f['card']} {'I' if f['direction'] == 'in' else 'O'}"
    elif obs.kind == "people_count":
        body = f"P {f['count']}"
    elif obs.kind == "environment":
        names = (("co2", "co2_ppm"), ("t", "temp_c"), ("h", "humidity_pct"))
        body = "E " + " ".join(f"{k}={f[n]!r}" for k, n in names if n in f)
    else:
        raise ValueError(f"no serial frame for {obs.kind!r}")
    check = 0
    for byte in body.encode("ascii"):
        check ^= byte
    return f"{body}*{check:02X}\n".encode("ascii")


def garbage_line(rng: random.Random, frame: bytes) -> bytes:
    """One line the driver must skip: noise bytes, or ``frame`` cut inside its checksum."""
    if rng.random() < 0.5:
        noise = bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randrange(1, 24)))
        return noise + b"\n"
    return frame[:-2] + b"\n"  # "D 1*4": the checksum lost a digit


class PtyLink:
    """One simulated device's end of a pseudo-terminal; the agent opens ``path``."""

    def __init__(self, device_id: str, *, noise: float = 0.0, rng: random.Random | None = None):
        self.device_id = device_id
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)  # no echo, no line editing
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self._noise = noise
        self._rng = rng or random.Random()
        self.frames = 0
        self.noise_lines = 0
        self.received_lines = 0  # what the agent wrote to the device
        self._reading = False

    def start(self) -> None:
        """Read (and count) what the agent writes to the device."""
        asyncio.get_running_loop().add_reader(self.master, self._on_readable)
        self._reading = True

    async def send(self, obs: Observation) -> None:
        """Write ``obs`` as a frame, after a garbage line when the noise fault strikes."""
        frame = frame_line(obs)
        if self._noise and self._rng.random() < self._noise:
            self.noise_lines += 1
            if self.noise_lines == 1 or self.noise_lines % 100 == 0:
                log.info(
                    "fault line-noise: %s: %d garbage lines so far",
                    self.device_id,
                    self.noise_lines,
                )
            await self._write(garbage_line(self._rng, frame))
        await self._write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._reading:
            asyncio.get_running_loop().remove_reader(self.master)
            self._reading = False
        for fd in (self.master, self._slave):
            os.close(fd)

    async def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                await asyncio.sleep(WRITE_RETRY_S)  # the agent has not read yet

    def _on_readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return
        self.received_lines += data.count(b"\n")
